// What one job costs (estimated from its spec) and the per-worker caps that refuse a job at
// submission instead of letting it exhaust a worker later. The figures are estimates, kept simple
// and conservative, documented in docs/service.md ("Resource limits").
import { SpecError, type JobSpec, type SpecIssue } from '../train/spec.js';
import type { CostEstimate } from './types.js';

/**
 * Tokens (after the maxTokens cut) and vocabulary size of a pasted corpus, exactly as the d2l
 * pipeline (src/text/corpus.ts loadCorpus: clean each line to a-z and single inner spaces, join the
 * lines, character tokens, vocabulary of the whole text + `<unk>`) would give them — by one scan over
 * the text's UTF-16 units with no allocation, so a 2 MB text costs a few milliseconds of the api's
 * event loop, not the 0.3–0.5 s of building its token list and vocabulary. The scan stops once the
 * cut is reached and all 27 symbols were seen. test/jobs/corpus-figures.test.ts checks it against
 * loadCorpus. Throws a SpecError (field data.corpus) for a text with no letters.
 */
export function textCorpusFigures(text: string, maxTokens: number): { tokens: number; vocabSize: number } {
  const ALL = (1 << 27) - 1; // a-z and space
  let tokens = 0;
  let seen = 0;
  let inLine = false; // a letter was seen in this line
  let gap = false; // non-letters since the last letter of this line (a space if another letter follows)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let k: number;
    if (c >= 97 && c <= 122) k = c - 97;
    else if (c >= 65 && c <= 90) k = c - 65;
    else {
      if (c === 10 || c === 13) inLine = gap = false;
      else if (inLine) gap = true;
      continue;
    }
    if (gap) {
      tokens++;
      seen |= 1 << 26;
      gap = false;
    }
    tokens++;
    seen |= 1 << k;
    inLine = true;
    if (tokens >= maxTokens && seen === ALL) break;
  }
  if (tokens === 0) throw new SpecError([{ field: 'data.corpus', message: 'corpus is empty after cleaning (only letters A-Z/a-z and spaces are kept)' }]);
  let vocab = 1; // <unk>
  for (let b = seen; b; b &= b - 1) vocab++;
  return { tokens: Math.min(tokens, maxTokens), vocabSize: vocab };
}

export interface JobEstimate {
  /** Trainable parameters (all layers + the output layer). */
  params: number;
  /** Tokens of the corpus after the maxTokens cut. */
  tokens: number;
  /** tokens × epochs: how much text the job reads. */
  tokenEpochs: number;
  /** Training FLOPs per token (forward + backward ≈ 3 × 2 × the multiply-adds). */
  flopsPerToken: number;
  /** tokenEpochs × flopsPerToken, in TFLOP. */
  teraflops: number;
  /** Peak worker memory for the job, MiB (weights, gradients, checkpoint copy, activations, corpus). */
  memoryMb: number;
}

export function estimateJob(spec: JobSpec, tokens: number, vocabSize: number): JobEstimate {
  const H = spec.model.numHiddens;
  const L = spec.model.kind === 'concise' ? spec.model.numLayers : 1;
  const V = vocabSize;
  // per layer: 4 gates × (input × H + H × H + bias); the first layer's input is the one-hot V
  let lstmParams = 0;
  for (let l = 0; l < L; l++) lstmParams += 4 * H * ((l === 0 ? V : H) + H + 1) + (spec.model.kind === 'concise' ? 4 * H : 0);
  const params = lstmParams + H * V + V;
  const macsPerToken = lstmParams + H * V; // one multiply-add per weight per token
  const flopsPerToken = 6 * macsPerToken;
  const tokenEpochs = tokens * spec.train.epochs;
  const B = spec.data.batchSize;
  const T = spec.data.numSteps;
  const floats =
    4 * params + // weights, gradients, optimiser scratch, checkpoint copy
    B * T * L * H * 12 + // kept activations per step: gates (4H), C, tanh(C), H, their gradients
    3 * B * T * V + // inputs (one-hot), logits, softmax
    tokens; // the corpus as token ids
  const memoryMb = (floats * 4) / (1024 * 1024) + 64; // + a fixed allowance for the runtime
  return { params, tokens, tokenEpochs, flopsPerToken, teraflops: (tokenEpochs * flopsPerToken) / 1e12, memoryMb };
}

/** The figures a job view and the submit answer show. */
export function costEstimate(e: JobEstimate): CostEstimate {
  return { params: e.params, tokens: e.tokens, tokenEpochs: e.tokenEpochs, teraflops: Number(e.teraflops.toPrecision(3)), memoryMb: Math.ceil(e.memoryMb) };
}

export interface JobCaps {
  /** MiB; 0 = no cap. */
  maxMemoryMb: number;
  /** tokens × epochs; 0 = no cap. */
  maxTokenEpochs: number;
  /** TFLOP of training; 0 = no cap. */
  maxTeraflops: number;
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

/** Throws a SpecError naming the fields that drive each exceeded estimate. */
export function checkJobCaps(spec: JobSpec, est: JobEstimate, caps: JobCaps): void {
  const issues: SpecIssue[] = [];
  const corpusField = spec.data.corpus === 'timemachine' || est.tokens === spec.data.maxTokens ? 'data.maxTokens' : 'data.corpus.text';
  if (caps.maxMemoryMb > 0 && est.memoryMb > caps.maxMemoryMb) {
    const why = `the job needs about ${fmt(est.memoryMb)} MiB of worker memory (MAX_JOB_MEMORY_MB = ${caps.maxMemoryMb})`;
    const fields = ['model.numHiddens', ...(spec.model.numLayers > 1 ? ['model.numLayers'] : []), 'data.batchSize', 'data.numSteps'];
    for (const f of fields) issues.push({ field: f, message: `${f}: ${why}; lower it` });
  }
  if (caps.maxTokenEpochs > 0 && est.tokenEpochs > caps.maxTokenEpochs) {
    const why = `${est.tokens} tokens × ${spec.train.epochs} epochs = ${fmt(est.tokenEpochs)} exceeds MAX_JOB_TOKEN_EPOCHS = ${fmt(caps.maxTokenEpochs)}`;
    for (const f of [corpusField, 'train.epochs']) issues.push({ field: f, message: `${f}: ${why}; lower it` });
  }
  if (caps.maxTeraflops > 0 && est.teraflops > caps.maxTeraflops) {
    const why = `training needs about ${fmt(est.teraflops)} TFLOP (MAX_JOB_TFLOP = ${caps.maxTeraflops})`;
    const fields = ['model.numHiddens', ...(spec.model.numLayers > 1 ? ['model.numLayers'] : []), corpusField, 'train.epochs'];
    for (const f of fields) if (!issues.some((i) => i.field === f)) issues.push({ field: f, message: `${f}: ${why}; lower it` });
  }
  if (issues.length) throw new SpecError(issues);
}
