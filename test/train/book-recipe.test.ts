// The book's recipe is unchanged: the default spec (timemachine, d2l-chars, 10,000 characters,
// no held-out part) trains on exactly the minibatches, and to the perplexities, that the code before
// corpora and tokenizers (issue 17) produced. The pinned figures are that code's: commit d01b656
// (with its own native build, CPU/OpenBLAS), this file run there with PRINT=1:
//   PRINT=1 node --import tsx --test test/train/book-recipe.test.ts
// Cross-checked with the CLI at d01b656 and after the merge (7d15b73): 30 epochs, every perplexity
// and sample bit-identical:
//   node bin/lstm-trainer.js train --engine native --epochs 30 --seed 7 --json
process.env.DEVICE ??= 'cpu'; // the CPU build: the pinned perplexities are the CPU engine's

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { EngineFactory, LstmModel } from '../../src/model/engine.js';
import { selectEngine } from '../../src/model/engines.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { Trainer } from '../../src/train/trainer.js';

const EPOCHS = 3;
const SEED = 7;

/** SHA-256 of every minibatch (X then Y, int32 little-endian) the three epochs trained on, in order. */
const PINNED_BATCHES_SHA256 = '870b880e9a8d5fdb026ad99a1771425097af62494e5a9d1fea707c34fa9e6e1b';
const PINNED_VOCAB = JSON.stringify(['<unk>', ' ', ...'etainoshrdlmucfwgypbvkxzjq']);
/** Per-epoch training perplexity on the native engine (CPU, OpenBLAS), as d01b656 printed it. */
const PINNED_NATIVE_PERPLEXITY = [25.0094116966339, 21.197853592873138, 19.714921198275064];

async function run(engine: EngineFactory): Promise<{ perplexity: number[]; batches: string; vocab: string }> {
  // the spec as a user leaves it: every data field at its default
  const trainer = await Trainer.create(parseJobSpec({ train: { epochs: EPOCHS, seed: SEED } }), engine);
  const hash = createHash('sha256');
  const model = trainer.model as LstmModel;
  const step = model.trainStep.bind(model);
  model.trainStep = (b, o) => {
    hash.update(Buffer.from(b.X.buffer, b.X.byteOffset, b.X.byteLength));
    hash.update(Buffer.from(b.Y.buffer, b.Y.byteOffset, b.Y.byteLength));
    return step(b, o);
  };
  const perplexity: number[] = [];
  for await (const e of trainer.run()) perplexity.push(e.perplexity);
  const vocab = JSON.stringify(trainer.vocab.idxToToken);
  trainer.dispose();
  return { perplexity, batches: hash.digest('hex'), vocab };
}

function engineOrSkip(name: string): Promise<EngineFactory | string> {
  return selectEngine(name, () => {}).catch((e: Error) => `${name} engine unavailable: ${e.message}`);
}

/** Equal to 1e-9 relative: a change to the recipe moves these from the 3rd digit; another BLAS build may move the 15th. */
function assertCurve(actual: number[], pinned: number[], tol: number, what: string): void {
  assert.equal(actual.length, pinned.length);
  for (let i = 0; i < pinned.length; i++) {
    assert.ok(Math.abs(actual[i] - pinned[i]) <= tol * pinned[i], `${what}: epoch ${i + 1} perplexity ${actual[i]}, before issue 17 ${pinned[i]}`);
  }
}

const native = await engineOrSkip('native');

test('native: the default spec trains on the same minibatches to the same perplexities as before issue 17', {
  skip: typeof native === 'string' && native,
}, async () => {
  const r = await run(native as EngineFactory);
  if (process.env.PRINT) console.log(JSON.stringify(r));
  assert.equal(r.vocab, PINNED_VOCAB, 'the vocabulary (index order) of the cleaned Time Machine');
  assert.equal(r.batches, PINNED_BATCHES_SHA256, 'the minibatches (seed 7, sequential partitioning) of the three epochs');
  assertCurve(r.perplexity, PINNED_NATIVE_PERPLEXITY, 1e-9, 'native');
});
