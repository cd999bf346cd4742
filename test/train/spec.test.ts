import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIMITS, parseJobSpec, SpecError } from '../../src/train/spec.js';
import { corpusForSpec } from '../../src/train/trainer.js';

function issues(input: unknown) {
  try {
    parseJobSpec(input);
  } catch (e) {
    assert.ok(e instanceof SpecError);
    return e.issues;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

test('{} is the d2l recipe', () => {
  const s = parseJobSpec({});
  assert.deepEqual(s.model, { kind: 'scratch', numHiddens: 256, numLayers: 1 });
  assert.deepEqual(s.data, {
    corpus: 'timemachine',
    maxTokens: 10000,
    tokenizer: 'd2l-chars',
    minFreq: 0,
    validFraction: 0,
    batchSize: 32,
    numSteps: 35,
    sampling: 'sequential',
  });
  assert.deepEqual(s.train, { epochs: 500, lr: 1, clipTheta: 1 });
  assert.deepEqual(s.report, { predictEvery: 10, prefixes: ['time traveller', 'traveller'], numPreds: 50 });
  assert.equal(parseJobSpec({ model: { kind: 'concise' } }).model.numHiddens, 256);
});

test('every bound is enforced and the error names the field and the bound', () => {
  const cases: [unknown, string, RegExp][] = [
    [{ model: { numHiddens: LIMITS.numHiddens + 1 } }, 'model.numHiddens', /≤ 1024/],
    [{ model: { numHiddens: 0 } }, 'model.numHiddens', /≥ 1/],
    [{ model: { kind: 'concise', numLayers: 5 } }, 'model.numLayers', /≤ 4/],
    [{ model: { numLayers: 2 } }, 'model.numLayers', /scratch/],
    [{ train: { epochs: LIMITS.epochs + 1 } }, 'train.epochs', /≤/],
    [{ train: { epochs: 2.5 } }, 'train.epochs', /integer/],
    [{ train: { lr: 0 } }, 'train.lr', /> 0/],
    [{ train: { lr: Number.NaN } }, 'train.lr', /number/],
    [{ train: { clipTheta: -1 } }, 'train.clipTheta', /> 0/],
    [{ data: { batchSize: 513 } }, 'data.batchSize', /≤ 512/],
    [{ data: { numSteps: 0 } }, 'data.numSteps', /≥ 1/],
    [{ data: { maxTokens: 1e12 } }, 'data.maxTokens', /≤/],
    [{ data: { sampling: 'shuffled' } }, 'data.sampling', /sequential/],
    [{ data: { corpus: { text: 'x'.repeat(LIMITS.corpusTextBytes + 1) } } }, 'data.corpus.text', /bytes/],
    [{ data: { corpus: 'wikipedia' } }, 'data.corpus', /timemachine/],
    [{ report: { prefixes: ['123'] } }, 'report.prefixes.0', /letter/],
    [{ report: { numPreds: -1 } }, 'report.numPreds', /≥ 0/],
    [{ model: { kind: 'gru' } }, 'model.kind', /scratch/],
    [{ model: { numHiddens: '256' } }, 'model.numHiddens', /number/],
    [{ unknown: 1 }, 'unknown', /unknown field/],
    [{ model: { kind: 'scratch', dropout: 0.1 } }, 'model.dropout', /unknown field/],
  ];
  for (const [input, field, message] of cases) {
    const found = issues(input);
    assert.ok(
      found.some((i) => i.field === field && message.test(i.message)),
      `${JSON.stringify(input).slice(0, 80)} → ${JSON.stringify(found)}`,
    );
  }
  for (const bad of [null, [], 'x', 5]) assert.equal(issues(bad)[0].message, 'the job spec must be a JSON object');
});

test('a corpus too short for one minibatch is rejected naming the field', () => {
  assert.throws(
    () => corpusForSpec(parseJobSpec({ data: { maxTokens: 100 } })),
    (e: SpecError) => e.issues[0].field === 'data.maxTokens' && /needs at least 1156/.test(e.message),
  );
  assert.throws(
    () => corpusForSpec(parseJobSpec({ data: { corpus: { text: 'tiny text' } } })),
    (e: SpecError) => e.issues[0].field === 'data.corpus.text',
  );
  assert.throws(
    () => corpusForSpec(parseJobSpec({ data: { corpus: { text: '!!!' } } })),
    (e: SpecError) => e.issues[0].field === 'data.corpus' && /empty/.test(e.message),
  );
  assert.equal(corpusForSpec(parseJobSpec({})).tokens.length, 10000);
});
