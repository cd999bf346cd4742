// d2l's predict_ch8 (warm up on the prefix, then greedy), plus temperature / top-k sampling.
import { cleanLine, type Vocab } from '../text/corpus.js';
import { Rng } from '../text/rng.js';
import type { LstmModel } from '../model/engine.js';
import { prefixTokens, type TokenizerName } from '../text/tokenizers.js';

export interface SamplingOptions {
  /** 0 or undefined: greedy argmax (predict_ch8). Otherwise softmax(logits / temperature). */
  temperature?: number;
  /** Sample only among the k most likely characters. */
  topK?: number;
  seed?: number;
  /** The job's tokenizer (data.tokenizer): how the prefix is read and the output put together. */
  tokenizer?: TokenizerName;
}

export class PrefixError extends Error {}

/** Prefixes go through the corpus's cleaning rules; one letter at least is needed to warm up. */
export function cleanPrefix(prefix: string, tokenizer: TokenizerName = 'd2l-chars'): string {
  if (tokenizer === 'd2l-chars') {
    const cleaned = cleanLine(prefix);
    if (cleaned.length === 0) throw new PrefixError('prefix must contain at least one letter (A-Z, a-z)');
    return cleaned;
  }
  const tokens = prefixTokens(prefix, tokenizer);
  if (tokens.length === 0) throw new PrefixError(tokenizer === 'words' ? 'prefix must contain at least one word' : 'prefix must not be empty');
  // chars: the prefix as it is; words: its words, one space apart (as the output joins them)
  return tokenizer === 'words' ? tokens.join(' ') : prefix;
}

/**
 * Token ids that generation never emits: the reserved `<unk>` (d2l's Vocab puts it first), and any
 * other token that is not exactly one character, so every generated token is one character and
 * `numPreds` characters are exactly what comes out.
 */
export function reservedTokens(vocab: Vocab, tokenizer: TokenizerName = 'd2l-chars'): Set<number> {
  const out = new Set<number>();
  vocab.idxToToken.forEach((t, i) => {
    // words: only `<unk>`; characters: anything that is not one code point (an astral one is two UTF-16 units)
    if (tokenizer === 'words' ? i === 0 && t === '<unk>' : [...t].length !== 1) out.add(i);
  });
  return out;
}

/**
 * Yields the numPreds tokens that follow the (cleaned) prefix, one at a time (never `<unk>`): a
 * character each, or for the words tokenizer a space and a word.
 */
export async function* generateChars(prefix: string, numPreds: number, model: LstmModel, vocab: Vocab, opts: SamplingOptions = {}): AsyncGenerator<string> {
  const tokenizer = opts.tokenizer ?? 'd2l-chars';
  const cleaned = cleanPrefix(prefix, tokenizer);
  const warm = vocab.encode(tokenizer === 'd2l-chars' ? cleaned : prefixTokens(cleaned, tokenizer));
  const rng = new Rng(opts.seed ?? 0);
  const excluded = reservedTokens(vocab, tokenizer);
  const gen = model.generator();
  try {
    let logits: Float32Array = new Float32Array(0);
    for (const token of warm) logits = await gen.feed(token); // warm-up: outputs before the last are ignored
    for (let i = 0; i < numPreds; i++) {
      const next = pickToken(logits, opts, rng, excluded);
      yield tokenizer === 'words' ? ` ${vocab.idxToToken[next]}` : vocab.idxToToken[next];
      if (i + 1 < numPreds) logits = await gen.feed(next);
    }
  } finally {
    gen.dispose();
  }
}

/** predict_ch8: the prefix followed by numPreds generated characters. */
export async function predict(prefix: string, numPreds: number, model: LstmModel, vocab: Vocab, opts: SamplingOptions = {}): Promise<string> {
  let out = cleanPrefix(prefix, opts.tokenizer);
  for await (const ch of generateChars(prefix, numPreds, model, vocab, opts)) out += ch;
  return out;
}

/**
 * The next token: argmax (greedy), or a draw from softmax(logits / temperature) over the topK most
 * likely. Tokens in `excluded` are never picked, whatever their logits; a NaN logit (a diverged
 * model) counts as -Infinity, so the pick is always an allowed token.
 */
export function pickToken(logits: Float32Array, opts: SamplingOptions, rng: Rng, excluded: ReadonlySet<number> = new Set()): number {
  const value = (i: number) => (Number.isNaN(logits[i]) ? -Infinity : logits[i]);
  let order: number[] = [];
  for (let i = 0; i < logits.length; i++) if (!excluded.has(i)) order.push(i);
  if (order.length === 0) throw new Error('no token may be generated: every token of the vocabulary is reserved');
  const greedy = !opts.temperature || opts.temperature <= 0;
  if (greedy) return argmax(order, value);
  if (opts.topK && opts.topK > 0 && opts.topK < order.length) {
    order = order.sort((a, b) => value(b) - value(a) || a - b).slice(0, opts.topK);
  }
  let max = -Infinity;
  for (const i of order) max = Math.max(max, value(i));
  if (max === -Infinity || max === Infinity) return argmax(order, value); // nothing to weigh: the first best
  const weights = order.map((i) => Math.exp((value(i) - max) / opts.temperature!));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng.random() * total;
  for (let j = 0; j < order.length; j++) {
    r -= weights[j];
    if (r <= 0) return order[j];
  }
  return order[order.length - 1];
}

function argmax(order: readonly number[], value: (i: number) => number): number {
  let best = order[0];
  for (const i of order) if (value(i) > value(best)) best = i;
  return best;
}
