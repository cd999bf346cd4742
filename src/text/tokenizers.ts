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
  const counter = new TokenCounter();
  counter.push(text);
  counter.end();
  return counter.result(tokenizer);
}

/**
 * The three tokenizers' counts of a text given in pieces (an upload's chunks as they are decoded),
 * in one pass: code points by index into a table (no string per character), d2l-chars by the same
 * scan as the book's rule (a letter, or one space between two letters of a line), words with the
 * last unfinished word carried to the next piece. A piece never splits a surrogate pair (a streaming
 * TextDecoder completes code points).
 */
export class TokenCounter {
  private readonly cp = new Int32Array(0x110000);
  private readonly cpOrder: number[] = [];
  private cpTotal = 0;
  private readonly d2l = new Array<number>(27).fill(0);
  private readonly d2lOrder: number[] = [];
  private d2lTotal = 0;
  private inLine = false;
  private gap = false;
  private readonly words = new Map<string, number>();
  private wordsTotal = 0;
  private carry = '';

  push(text: string): void {
    const { cp, cpOrder, d2l, d2lOrder } = this;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
        }
      }
      if (cp[c]++ === 0) cpOrder.push(c);
      let k = -1;
      if (c >= 97 && c <= 122) k = c - 97;
      else if (c >= 65 && c <= 90) k = c - 65;
      if (k < 0) {
        if (c === 10 || c === 13) this.inLine = this.gap = false;
        else if (this.inLine) this.gap = true;
        continue;
      }
      if (this.gap) {
        if (d2l[26]++ === 0) d2lOrder.push(26);
        this.gap = false;
        this.d2lTotal++;
      }
      if (d2l[k]++ === 0) d2lOrder.push(k);
      this.d2lTotal++;
      this.inLine = true;
    }
    this.cpTotal += countCodePoints(text);
    // words: whole words of carry + text; a last word touching the end may go on in the next piece
    const s = this.carry + text;
    let end = s.length;
    while (end > 0 && /\S/u.test(s[end - 1])) end--;
    this.carry = s.slice(end);
    for (const m of s.slice(0, end).matchAll(/\S+/gu)) this.countWord(m[0]);
  }

  end(): void {
    if (this.carry) this.countWord(this.carry);
    this.carry = '';
  }

  private countWord(w: string): void {
    this.words.set(w, (this.words.get(w) ?? 0) + 1);
    this.wordsTotal++;
  }

  /** One tokenizer's counts (first-seen order) and total. */
  result(tokenizer: TokenizerName): { counts: Map<string, number>; total: number } {
    if (tokenizer === 'words') return { counts: this.words, total: this.wordsTotal };
    if (tokenizer === 'chars') return { counts: new Map(this.cpOrder.map((c) => [String.fromCodePoint(c), this.cp[c]])), total: this.cpTotal };
    return { counts: new Map(this.d2lOrder.map((k) => [k === 26 ? ' ' : String.fromCharCode(97 + k), this.d2l[k]])), total: this.d2lTotal };
  }
}

/** Code points of a string: UTF-16 units less the low halves of surrogate pairs. */
export function countCodePoints(text: string): number {
  let pairs = 0;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        pairs++;
        i++;
      }
    }
  }
  return text.length - pairs;
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
  return figuresFromCounts(countTokens(text, tokenizer), minFreq, topN);
}

export function figuresFromCounts({ counts, total }: { counts: Map<string, number>; total: number }, minFreq: number, topN = 20): CorpusFigures {
  const vocab = vocabFromCounts(counts, minFreq);
  const top = vocab.idxToToken.slice(1, 1 + topN).map((t) => [t, counts.get(t) ?? 0] as [string, number]);
  return { totalTokens: total, vocabSize: vocab.size, top };
}

/**
 * d2l's load_corpus for any text and tokenizer: the vocabulary of the whole text (min_freq), its
 * tokens cut to maxTokens (0: all of them) and encoded.
 */
export function loadTextCorpus(text: string, tokenizer: TokenizerName, opts: { maxTokens?: number; minFreq?: number; vocab?: Vocab } = {}): Corpus {
  const { counts, total } = countTokens(text, tokenizer);
  if (total === 0) throw new CorpusError(emptyMessage(tokenizer));
  // a given vocabulary (a trained model's) is kept as it is: tokens it lacks become <unk> (index 0)
  const vocab = opts.vocab ?? vocabFromCounts(counts, opts.minFreq ?? 0);
  const n = opts.maxTokens && opts.maxTokens > 0 ? Math.min(opts.maxTokens, total) : total;
  const ids = new Int32Array(n);
  let i = 0;
  if (tokenizer === 'chars') {
    // a table from code point to index: no string per character (a corpus may be tens of millions)
    const index = new Int32Array(0x110000);
    vocab.idxToToken.forEach((t, id) => (index[t.codePointAt(0)!] = [...t].length === 1 ? id : index[t.codePointAt(0)!]));
    for (let j = 0; j < text.length && i < n; j++) {
      let c = text.charCodeAt(j);
      if (c >= 0xd800 && c <= 0xdbff && j + 1 < text.length) {
        const d = text.charCodeAt(j + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          j++;
        }
      }
      ids[i++] = index[c];
    }
    return { tokens: ids, vocab };
  }
  for (const t of tokenize(text, tokenizer)) {
    if (i >= n) break;
    ids[i++] = vocab.indexOf(t);
  }
  return { tokens: ids, vocab };
}
