import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cleanLine, loadCorpus, readTimeMachine, tokenizeChars, TIME_MACHINE_PATH, Vocab } from '../../src/text/corpus.js';
import { loadTextCorpus } from '../../src/text/tokenizers.js';

test('the shipped book is the d2l Time Machine text', () => {
  const sha1 = createHash('sha1').update(readFileSync(TIME_MACHINE_PATH)).digest('hex');
  assert.equal(sha1, '090b5e7e70c295757f55df93cb0a180b9691891a');
});

test('line cleaning follows re.sub("[^A-Za-z]+", " ", line).strip().lower()', () => {
  assert.equal(cleanLine("  The Time-Traveller (for so it'll be) 42x! "), 'the time traveller for so it ll be x');
  assert.equal(cleanLine('***'), '');
  assert.equal(cleanLine('Ünïcödé café'), 'n c d caf');
});

test("vocabulary of the book equals d2l's: 28 tokens, <unk> then by descending frequency", () => {
  const { vocab, tokens } = loadCorpus('timemachine', 0);
  console.log(`vocabulary (${vocab.size}): ${JSON.stringify(vocab.idxToToken)}`);
  assert.deepEqual(vocab.idxToToken, [
    '<unk>',
    ' ',
    'e',
    't',
    'a',
    'i',
    'n',
    'o',
    's',
    'h',
    'r',
    'd',
    'l',
    'm',
    'u',
    'c',
    'f',
    'w',
    'g',
    'y',
    'p',
    'b',
    'v',
    'k',
    'x',
    'z',
    'j',
    'q',
  ]);
  assert.equal(tokens.length, 170580);
});

test('lines are joined with no separator and the default corpus is the first 10,000 tokens', () => {
  const lines = readTimeMachine();
  const all = tokenizeChars(lines).join('');
  assert.ok(all.includes('himwas'), 'd2l joins lines without a space');
  const { tokens, vocab } = loadCorpus('timemachine', 10000);
  assert.equal(tokens.length, 10000);
  assert.equal(vocab.decode(tokens.subarray(0, 22)), 'the time machine by h ');
});

test('vocabulary ties keep first-seen order; unknown tokens map to <unk>', () => {
  const v = new Vocab([...'abcabd']);
  assert.deepEqual(v.idxToToken, ['<unk>', 'a', 'b', 'c', 'd']);
  assert.equal(v.indexOf('z'), 0);
  assert.deepEqual(Vocab.fromTokens(v.idxToToken).encode('dcba'), [4, 3, 2, 1]);
});

test('a user corpus goes through the same pipeline; an empty one is a clear error', () => {
  const { vocab, tokens } = loadCorpus({ text: 'Hello, World!\nHELLO again' }, 10000);
  assert.equal(vocab.decode(tokens), 'hello worldhello again');
  assert.throws(() => loadCorpus({ text: '123 !!! \n ...' }), /corpus is empty/);
});

test("loadTextCorpus with a given vocabulary (a model's): characters it lacks are <unk> (0)", () => {
  const vocab = Vocab.fromTokens(['<unk>', ' ', 'a', 'b']);
  const c = loadTextCorpus('Ab, ca!\nbad', 'd2l-chars', { vocab, maxTokens: 100 });
  assert.equal(c.vocab, vocab);
  // cleaned as d2l: "ab ca" + "bad" (lines joined without a separator)
  assert.deepEqual([...c.tokens], [2, 3, 1, 0, 2, 3, 2, 0]);
  assert.equal(loadTextCorpus('ab ab ab', 'd2l-chars', { vocab, maxTokens: 4 }).tokens.length, 4, 'cut to maxTokens');
  assert.throws(() => loadTextCorpus('123', 'd2l-chars', { vocab }), /empty/);
  // every tokenizer keeps the given vocabulary: chars maps the unknown "Z" and "!" to <unk>
  assert.deepEqual([...loadTextCorpus('ab Z!', 'chars', { vocab }).tokens], [2, 3, 1, 0, 0]);
});
