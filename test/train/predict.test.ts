// Generation never emits the reserved `<unk>` token (greedy or sampled, whatever the model's
// logits), and numPreds is exactly the number of characters generated. A scripted model stands in
// for an engine, so each case can put `<unk>` where a real model rarely would: on top.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LstmModel } from '../../src/model/engine.js';
import { Vocab } from '../../src/text/corpus.js';
import { Rng } from '../../src/text/rng.js';
import { generateChars, pickToken, predict, reservedTokens } from '../../src/train/predict.js';

const vocab = new Vocab([...'time traveller']);
const UNK = 0;

/** A model whose every step answers `logits(step)`. */
function scripted(logits: (step: number) => Float32Array): LstmModel {
  return {
    generator() {
      let step = 0;
      return { feed: async () => logits(step++), dispose() {} };
    },
  } as unknown as LstmModel;
}

/** `<unk>` far above everything else; the other tokens equal or as given. */
const unkOnTop =
  (others = 0) =>
  () => {
    const l = new Float32Array(vocab.size).fill(others);
    l[UNK] = 50;
    return l;
  };

async function generate(model: LstmModel, n: number, opts = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const ch of generateChars('time', n, model, vocab, opts)) out.push(ch);
  return out;
}

test('the reserved tokens are `<unk>` alone for a character vocabulary', () => {
  assert.deepEqual([...reservedTokens(vocab)], [UNK]);
});

test('greedy never picks `<unk>`, even when it has the largest logit', async () => {
  const chars = await generate(scripted(unkOnTop()), 50);
  assert.equal(chars.length, 50);
  assert.ok(
    chars.every((c) => c.length === 1 && c !== '<unk>'),
    chars.join('|'),
  );
  assert.ok(!(await predict('time', 50, scripted(unkOnTop()), vocab)).includes('<unk>'));
});

test('sampling (temperature 5, any topK) never picks `<unk>`; numChars is exact', async () => {
  for (const topK of [undefined, 1, 2, 5, 1000]) {
    for (const seed of [0, 1, 7]) {
      const chars = await generate(scripted(unkOnTop()), 2000, { temperature: 5, topK, seed });
      assert.equal(chars.length, 2000, `topK ${topK} seed ${seed}`);
      assert.equal(chars.join('').length, 2000, `topK ${topK} seed ${seed}: one character per token`);
      assert.ok(!chars.join('').includes('<unk>'), `topK ${topK} seed ${seed}`);
    }
  }
  // a flat distribution over the rest: every allowed character shows up, `<unk>` never
  const seen = new Set(await generate(scripted(unkOnTop()), 2000, { temperature: 100, seed: 3 }));
  assert.equal(seen.size, vocab.size - 1);
});

test('diverged logits (NaN, ±Infinity) still give an allowed token', () => {
  const rng = new Rng(1);
  const excluded = reservedTokens(vocab);
  for (const fill of [NaN, Infinity, -Infinity]) {
    const l = new Float32Array(vocab.size).fill(fill);
    for (const opts of [{}, { temperature: 1 }, { temperature: 1, topK: 2 }]) {
      const t = pickToken(l, opts, rng, excluded);
      assert.ok(t > 0 && t < vocab.size, `${fill} ${JSON.stringify(opts)} → ${t}`);
    }
  }
});

test('without `<unk>` on top, sampling is unchanged in kind: deterministic per seed', async () => {
  const ramp = () => Float32Array.from({ length: vocab.size }, (_, i) => i / 3);
  const a = await generate(scripted(ramp), 200, { temperature: 1, seed: 9 });
  const b = await generate(scripted(ramp), 200, { temperature: 1, seed: 9 });
  assert.deepEqual(a, b);
  assert.equal((await generate(scripted(ramp), 5)).join(''), vocab.idxToToken[vocab.size - 1].repeat(5), 'greedy = the largest logit');
});
