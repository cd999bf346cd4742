// The three tokenizers (src/text/tokenizers.ts) and the corpus they make of a text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadCorpus, TIME_MACHINE_PATH } from '../../src/text/corpus.js';
import { corpusFigures, loadTextCorpus, TokenCounter, tokenize, tokenizeCodePoints, tokenizeD2lChars, tokenizeWords } from '../../src/text/tokenizers.js';
import { cleanPrefix } from '../../src/train/predict.js';
import { parseJobSpec } from '../../src/train/spec.js';

test("d2l-chars is today's rule: the book's corpus and vocabulary are exactly loadCorpus's", () => {
  const book = readFileSync(TIME_MACHINE_PATH, 'utf8');
  const a = loadCorpus('timemachine', 10000);
  const b = loadTextCorpus(book, 'd2l-chars', { maxTokens: 10000 });
  assert.deepEqual(b.vocab.idxToToken, a.vocab.idxToToken);
  assert.deepEqual([...b.tokens], [...a.tokens]);
  assert.deepEqual([...tokenizeD2lChars('Café 42!\nÜber')], [...'cafber']); // lines joined with no separator, as d2l's corpus
});

test('chars keeps every code point: case, digits, punctuation, newlines, any script, astral characters as one token', () => {
  const text = 'Café «Ёж» 42!\n日本 😀x';
  const tokens = [...tokenizeCodePoints(text)];
  assert.equal(tokens.length, [...text].length);
  assert.ok(tokens.includes('😀') && tokens.includes('Ё') && tokens.includes('\n') && tokens.includes('4') && tokens.includes('«'));
  const c = loadTextCorpus(text, 'chars');
  assert.equal(c.vocab.decode(c.tokens), text); // nothing lost
});

test("words is d2l's line.split(): white-space separated tokens as they are; minFreq turns rare ones into <unk>", () => {
  assert.deepEqual([...tokenizeWords('Der  Hund,\n bellt. der Hund')], ['Der', 'Hund,', 'bellt.', 'der', 'Hund']);
  const c = loadTextCorpus('a b a c a b', 'words', { minFreq: 2 });
  assert.deepEqual(c.vocab.idxToToken, ['<unk>', 'a', 'b']);
  assert.deepEqual([...c.tokens], [1, 2, 1, 0, 1, 2]);
  const f = corpusFigures('a b a c a b', 'words', 2);
  assert.deepEqual(f, {
    totalTokens: 6,
    vocabSize: 3,
    top: [
      ['a', 3],
      ['b', 2],
    ],
  });
});

test('maxTokens cuts the encoded tokens, the vocabulary is the whole text; empty after tokenization is an error naming the tokenizer', () => {
  const c = loadTextCorpus('abcdef', 'chars', { maxTokens: 3 });
  assert.equal(c.tokens.length, 3);
  assert.equal(c.vocab.size, 7);
  assert.throws(() => loadTextCorpus('Привет', 'd2l-chars'), /empty after cleaning.*tokenizer chars/);
  assert.throws(() => loadTextCorpus(' \n\t ', 'words'), /no words/);
  assert.equal([...tokenize('', 'chars')].length, 0);
});

test('prefixes follow the tokenizer: a Cyrillic prefix is fine for chars and words, refused for d2l-chars', () => {
  assert.equal(cleanPrefix('Время, вперёд', 'chars'), 'Время, вперёд');
  assert.equal(cleanPrefix('  Время   вперёд ', 'words'), 'Время вперёд');
  assert.throws(() => cleanPrefix('Время'), /at least one letter/);
  const ok = parseJobSpec({ data: { tokenizer: 'chars' }, report: { prefixes: ['Время'] } });
  assert.deepEqual(ok.report.prefixes, ['Время']);
  assert.throws(() => parseJobSpec({ report: { prefixes: ['Время'] } }), /at least one letter/);
  assert.throws(() => parseJobSpec({ data: { tokenizer: 'words' }, report: { prefixes: ['  '] } }), /blank/);
  assert.throws(() => parseJobSpec({ data: { tokenizer: 'bytes' } }), /data.tokenizer must be one of 'd2l-chars', 'chars', 'words'/);
  assert.throws(() => parseJobSpec({ data: { corpus: { id: 'abc' } } }), /data.corpus.id must be a corpus id/);
  assert.equal(parseJobSpec({ data: { corpus: { id: 'a'.repeat(64) } } }).data.maxTokens, undefined); // filled in at submission
});

test('TokenCounter over pieces (as an upload streams) counts exactly what the tokenizers give, for all three at once', () => {
  const text = 'Der Zeit-Reisende sagte:\r\n«Время — 4-е измерение!» 😀😀 ok\n\nend  word'.repeat(3);
  const counter = new TokenCounter();
  // pieces that cut words and lines anywhere (never a surrogate pair, as a streaming decoder)
  const cuts = [0, 5, 6, 17, 30, 31, 44, 70, 101, 150, text.length];
  for (let i = 0; i + 1 < cuts.length; i++) {
    let a = cuts[i];
    let b = cuts[i + 1];
    if (/[\uDC00-\uDFFF]/.test(text[a] ?? '')) a--;
    if (/[\uDC00-\uDFFF]/.test(text[b] ?? '')) b--;
    counter.push(text.slice(a, b));
  }
  counter.end();
  for (const t of ['d2l-chars', 'chars', 'words'] as const) {
    const want = new Map<string, number>();
    let total = 0;
    for (const tok of tokenize(text, t)) {
      want.set(tok, (want.get(tok) ?? 0) + 1);
      total++;
    }
    const got = counter.result(t);
    assert.equal(got.total, total, t);
    assert.deepEqual([...got.counts], [...want], t); // same counts, same first-seen order
  }
});
