// d2l's predict_ch8 (warm up on the prefix, then greedy), plus temperature / top-k sampling.
import { cleanLine, type Vocab } from '../text/corpus.js';
import { Rng } from '../text/rng.js';
import type { LstmModel } from '../model/engine.js';

export interface SamplingOptions {
  /** 0 or undefined: greedy argmax (predict_ch8). Otherwise softmax(logits / temperature). */
  temperature?: number;
  /** Sample only among the k most likely characters. */
  topK?: number;
  seed?: number;
}

export class PrefixError extends Error {}

/** Prefixes go through the corpus's cleaning rules; one letter at least is needed to warm up. */
export function cleanPrefix(prefix: string): string {
  const cleaned = cleanLine(prefix);
  if (cleaned.length === 0) throw new PrefixError('prefix must contain at least one letter (A-Z, a-z)');
  return cleaned;
}

/**
 * Token ids that generation never emits: the reserved `<unk>` (d2l's Vocab puts it first), and any
 * other token that is not exactly one character, so every generated token is one character and
 * `numPreds` characters are exactly what comes out.
 */
export function reservedTokens(vocab: Vocab): Set<number> {
  const out = new Set<number>();
  vocab.idxToToken.forEach((t, i) => {
    if (t.length !== 1) out.add(i);
  });
  return out;
}

/** Yields the numPreds characters that follow the (cleaned) prefix, one at a time (never `<unk>`). */
export async function* generateChars(
  prefix: string,
  numPreds: number,
  model: LstmModel,
  vocab: Vocab,
  opts: SamplingOptions = {},
): AsyncGenerator<string> {
  const warm = vocab.encode(cleanPrefix(prefix));
  const rng = new Rng(opts.seed ?? 0);
  const excluded = reservedTokens(vocab);
  const gen = model.generator();
  try {
    let logits: Float32Array = new Float32Array(0);
    for (const token of warm) logits = await gen.feed(token); // warm-up: outputs before the last are ignored
    for (let i = 0; i < numPreds; i++) {
      const next = pickToken(logits, opts, rng, excluded);
      yield vocab.idxToToken[next];
      if (i + 1 < numPreds) logits = await gen.feed(next);
    }
  } finally {
    gen.dispose();
  }
}

/** predict_ch8: the prefix followed by numPreds generated characters. */
export async function predict(prefix: string, numPreds: number, model: LstmModel, vocab: Vocab, opts: SamplingOptions = {}): Promise<string> {
  let out = cleanPrefix(prefix);
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
