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

/** Yields the numPreds characters that follow the (cleaned) prefix, one at a time. */
export async function* generateChars(
  prefix: string,
  numPreds: number,
  model: LstmModel,
  vocab: Vocab,
  opts: SamplingOptions = {},
): AsyncGenerator<string> {
  const warm = vocab.encode(cleanPrefix(prefix));
  const rng = new Rng(opts.seed ?? 0);
  const gen = model.generator();
  try {
    let logits: Float32Array = new Float32Array(0);
    for (const token of warm) logits = await gen.feed(token); // warm-up: outputs before the last are ignored
    for (let i = 0; i < numPreds; i++) {
      const next = pickToken(logits, opts, rng);
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

export function pickToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  const greedy = !opts.temperature || opts.temperature <= 0;
  if (greedy) return argmax(logits);
  let order = Array.from(logits.keys());
  if (opts.topK && opts.topK > 0 && opts.topK < logits.length) {
    order = order.sort((a, b) => logits[b] - logits[a]).slice(0, opts.topK);
  }
  let max = -Infinity;
  for (const i of order) max = Math.max(max, logits[i]);
  const weights = order.map((i) => Math.exp((logits[i] - max) / opts.temperature!));
  const total = weights.reduce((a, b) => a + b, 0);
  let r = rng.random() * total;
  for (let j = 0; j < order.length; j++) {
    r -= weights[j];
    if (r <= 0) return order[j];
  }
  return order[order.length - 1];
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
