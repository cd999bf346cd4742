// The submit path measures a pasted corpus without tokenising it (src/jobs/limits.ts
// textCorpusFigures); its figures must be exactly those of the d2l pipeline the worker runs
// (src/text/corpus.ts loadCorpus), or the cost caps and the "one minibatch" check would judge
// another corpus than the one trained. Seeded random texts with every kind of character, line
// ending and cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { textCorpusFigures } from '../../src/jobs/limits.js';
import { loadCorpus } from '../../src/text/corpus.js';
import { SpecError } from '../../src/train/spec.js';
import { rng } from '../support/faults.js';

const PIECES = [
  'a',
  'Z',
  'q',
  'the time ',
  'Traveller',
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\n\n',
  '--',
  '1',
  '9 ',
  'é',
  'ß',
  '時',
  '🦀',
  '\u0000',
  '.',
  "'",
  'x\ny',
  ' \r\n ',
];

function reference(text: string, maxTokens: number): { tokens: number; vocabSize: number } | 'empty' {
  try {
    const c = loadCorpus({ text }, maxTokens);
    return { tokens: c.tokens.length, vocabSize: c.vocab.size };
  } catch {
    return 'empty';
  }
}

function figures(text: string, maxTokens: number): { tokens: number; vocabSize: number } | 'empty' {
  try {
    return textCorpusFigures(text, maxTokens);
  } catch (e) {
    assert.ok(e instanceof SpecError);
    assert.equal(e.issues[0].field, 'data.corpus');
    return 'empty';
  }
}

test('textCorpusFigures = loadCorpus (tokens after the cut, vocabulary of the whole text) on 2,000 seeded texts', () => {
  const r = rng(1234);
  for (let i = 0; i < 2000; i++) {
    let text = '';
    const n = Math.floor(r() * 60);
    for (let k = 0; k < n; k++) text += PIECES[Math.floor(r() * PIECES.length)];
    const maxTokens = 1 + Math.floor(r() * 80);
    assert.deepEqual(figures(text, maxTokens), reference(text, maxTokens), `case ${i}: ${JSON.stringify(text)} maxTokens ${maxTokens}`);
  }
});

test('a 2 MB pasted text: the same figures, measured in milliseconds without blocking the event loop', () => {
  const text = 'The Time Traveller (for so it will be convenient to speak of him)\r\nwas expounding, 42 times!\n'.repeat(22_000).slice(0, 2_000_000);
  for (const maxTokens of [10_000, 2_000_000]) assert.deepEqual(textCorpusFigures(text, maxTokens), reference(text, maxTokens));
  // the scan against the d2l pipeline (what the submit path used to run) on this machine, now:
  // a ratio, not a time, so a loaded machine does not fail it (measured ≈ 0.3–0.5 s vs a few ms)
  const time = (fn: () => unknown) => {
    const t = performance.now();
    for (let i = 0; i < 3; i++) fn();
    return (performance.now() - t) / 3;
  };
  const scan = time(() => textCorpusFigures(text, 2_000_000));
  const pipeline = time(() => loadCorpus({ text }, 2_000_000));
  assert.ok(scan * 5 < pipeline, `one 2 MB scan took ${scan.toFixed(1)} ms, the d2l pipeline ${pipeline.toFixed(1)} ms: not 5× faster`);
});
