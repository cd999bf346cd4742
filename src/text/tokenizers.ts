// The three tokenizers a job may choose (data.tokenizer), and the corpus they make of a text:
//   d2l-chars  d2l's rule for The Time Machine: letters A–Z only, lower-cased, runs of anything else
//              one space, character tokens (src/text/corpus.ts; the book's default)
//   chars      every Unicode code point as it is: case, digits, punctuation, newlines, any script
//   words      d2l's tokenize(lines, 'word'): each line split on white space, tokens as they are;
//              tokens seen fewer than minFreq times become `<unk>` (d2l's Vocab(min_freq))
// Tokens are produced lazily (generators), so a 50 MB corpus is counted and encoded without a
// 50-million-entry array of strings.
import { cleanLines, Vocab, CorpusError, type Corpus } from './corpus.js';

export const TOKENIZERS = ['d2l-chars', 'chars', 'words'] as const;
export type TokenizerName = (typeof TOKENIZERS)[number];

/** d2l-chars: the cleaned lines' characters, lines joined with no separator (d2l's corpus). */
export function* tokenizeD2lChars(text: string): Generator<string> {
  for (const line of cleanLines(text)) yield* line;
}

/** chars: every code point (a string iterates by code point, so an astral character is one token). */
export function* tokenizeCodePoints(text: string): Generator<string> {
  yield* text;
}

/** words: d2l's `line.split()` per line, the lines' tokens in order. */
export function* tokenizeWords(text: string): Generator<string> {
  for (const m of text.matchAll(/\S+/gu)) yield m[0];
}

export function tokenize(text: string, tokenizer: TokenizerName): Generator<string> {
  if (tokenizer === 'chars') return tokenizeCodePoints(text);
  if (tokenizer === 'words') return tokenizeWords(text);
  return tokenizeD2lChars(text);
}

/** What a tokenizer found empty, in words a user can act on. */
export function emptyMessage(tokenizer: TokenizerName): string {
  if (tokenizer === 'd2l-chars') return 'corpus is empty after cleaning (only letters A-Z/a-z and spaces are kept; tokenizer chars keeps every character)';
  if (tokenizer === 'words') return 'corpus has no words (tokenizer words splits on white space)';
  return 'corpus is empty';
}

/** How generated tokens are put together: words with a space between them, characters as they are. */
export function joinTokens(tokens: string[], tokenizer: TokenizerName): string {
  return tokenizer === 'words' ? tokens.join(' ') : tokens.join('');
}

/**
 * A text's prefix as tokens of the tokenizer (d2l-chars cleans it as the corpus was cleaned).
 * Empty when nothing is left to warm the model up on.
 */
export function prefixTokens(prefix: string, tokenizer: TokenizerName): string[] {
  return [...tokenize(prefix, tokenizer)];
}

/** Token counts of a text, in first-seen order (d2l's Counter), and the total. */
export function countTokens(text: string, tokenizer: TokenizerName): { counts: Map<string, number>; total: number } {
  const counts = new Map<string, number>();
  let total = 0;
  for (const t of tokenize(text, tokenizer)) {
    counts.set(t, (counts.get(t) ?? 0) + 1);
    total++;
  }
  return { counts, total };
}

export interface CorpusFigures {
  /** Tokens of the whole text. */
  totalTokens: number;
  /** Vocabulary size (with `<unk>`). */
  vocabSize: number;
  /** The most frequent tokens with their counts, most frequent first. */
  top: [string, number][];
}

export function vocabFromCounts(counts: Map<string, number>, minFreq: number): Vocab {
  return Vocab.fromCounts(counts, minFreq);
}

/** A text's figures under a tokenizer (the vocabulary is the whole text's, as the trainer builds it). */
export function corpusFigures(text: string, tokenizer: TokenizerName, minFreq: number, topN = 20): CorpusFigures {
  const { counts, total } = countTokens(text, tokenizer);
  const vocab = vocabFromCounts(counts, minFreq);
  const top = vocab.idxToToken.slice(1, 1 + topN).map((t) => [t, counts.get(t) ?? 0] as [string, number]);
  return { totalTokens: total, vocabSize: vocab.size, top };
}

/**
 * d2l's load_corpus for any text and tokenizer: the vocabulary of the whole text (min_freq), its
 * tokens cut to maxTokens (0: all of them) and encoded.
 */
export function loadTextCorpus(text: string, tokenizer: TokenizerName, opts: { maxTokens?: number; minFreq?: number } = {}): Corpus {
  const { counts, total } = countTokens(text, tokenizer);
  if (total === 0) throw new CorpusError(emptyMessage(tokenizer));
  const vocab = vocabFromCounts(counts, opts.minFreq ?? 0);
  const n = opts.maxTokens && opts.maxTokens > 0 ? Math.min(opts.maxTokens, total) : total;
  const ids = new Int32Array(n);
  let i = 0;
  for (const t of tokenize(text, tokenizer)) {
    if (i >= n) break;
    ids[i++] = vocab.indexOf(t);
  }
  return { tokens: ids, vocab };
}
