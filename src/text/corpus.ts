// The d2l text pipeline: read_time_machine → tokenize('char') → Vocab → load_corpus_time_machine.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TIME_MACHINE_PATH = fileURLToPath(new URL('../../data/timemachine.txt', import.meta.url));

/** d2l: re.sub('[^A-Za-z]+', ' ', line).strip().lower(), one entry per line. */
export function cleanLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/).map(cleanLine);
}

export function cleanLine(line: string): string {
  return line
    .replace(/[^A-Za-z]+/g, ' ')
    .trim()
    .toLowerCase();
}

export function readTimeMachine(): string[] {
  return cleanLines(readFileSync(TIME_MACHINE_PATH, 'utf8'));
}

/** Character tokens; lines are joined with no separator, as d2l's corpus does. */
export function tokenizeChars(lines: string[]): string[] {
  const tokens: string[] = [];
  for (const line of lines) for (const ch of line) tokens.push(ch);
  return tokens;
}

/** d2l's Vocab with min_freq 0 and reserved `<unk>` first; ties in first-seen order (a stable sort). */
export class Vocab {
  readonly idxToToken: string[];
  private readonly tokenToIdx: Map<string, number>;

  constructor(tokens: string[]) {
    const counts = new Map<string, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    const byFreq = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    this.idxToToken = ['<unk>', ...byFreq.map(([t]) => t)];
    this.tokenToIdx = new Map(this.idxToToken.map((t, i) => [t, i]));
  }

  /** d2l's Vocab(min_freq) from token counts in first-seen order: tokens seen fewer than minFreq times are left out (they become `<unk>`). */
  static fromCounts(counts: Map<string, number>, minFreq = 0): Vocab {
    const byFreq = [...counts.entries()].filter(([t, n]) => n >= minFreq && t !== '<unk>').sort((a, b) => b[1] - a[1]);
    return Vocab.fromTokens(['<unk>', ...byFreq.map(([t]) => t)]);
  }

  static fromTokens(idxToToken: string[]): Vocab {
    const v = Object.create(Vocab.prototype) as Vocab;
    Object.assign(v, { idxToToken: [...idxToToken], tokenToIdx: new Map(idxToToken.map((t, i) => [t, i])) });
    return v;
  }

  get size(): number {
    return this.idxToToken.length;
  }

  /** Unknown tokens map to `<unk>` (index 0). */
  indexOf(token: string): number {
    return this.tokenToIdx.get(token) ?? 0;
  }

  encode(tokens: Iterable<string>): number[] {
    const out: number[] = [];
    for (const t of tokens) out.push(this.indexOf(t));
    return out;
  }

  decode(indices: Iterable<number>): string {
    let s = '';
    for (const i of indices) s += this.idxToToken[i] ?? '';
    return s;
  }
}

export interface Corpus {
  /** Token indices, cut to maxTokens. */
  tokens: Int32Array;
  vocab: Vocab;
}

export class CorpusError extends Error {}

/** d2l load_corpus_time_machine(max_tokens): from the book, or from a user's text through the same pipeline. */
export function loadCorpus(source: 'timemachine' | { text: string }, maxTokens = 10000): Corpus {
  const lines = source === 'timemachine' ? readTimeMachine() : cleanLines(source.text);
  const tokens = tokenizeChars(lines);
  if (tokens.length === 0) throw new CorpusError('corpus is empty after cleaning (only letters A-Z/a-z and spaces are kept)');
  const vocab = new Vocab(tokens);
  const cut = maxTokens > 0 ? tokens.slice(0, maxTokens) : tokens;
  return { tokens: Int32Array.from(vocab.encode(cut)), vocab };
}
