// d2l's train_ch8 / train_epoch_ch8 over an engine's LstmModel, as an async iterator of epoch
// events, resumable from a checkpoint at an epoch boundary.
import { loadCorpus, Vocab, type Corpus } from '../text/corpus.js';
import { emptyMessage, loadTextCorpus } from '../text/tokenizers.js';
import { readFileSync } from 'node:fs';
import { TIME_MACHINE_PATH } from '../text/corpus.js';
import { minCorpusTokens, seqDataIter, type Batch } from '../text/data.js';
import { Rng } from '../text/rng.js';
import type { EngineFactory, LstmModel, ModelConfig } from '../model/engine.js';
import { initParams } from '../model/params.js';
import type { Checkpoint, EarlyStoppingState } from './checkpoint.js';
import type { InitModel } from './import.js';
import { predict } from './predict.js';
import { LIMITS, SpecError, type JobSpec } from './spec.js';
import type { Weights } from '../model/engine.js';

export interface Sample {
  prefix: string;
  /** predict_ch8's output: the cleaned prefix followed by the generated characters. */
  text: string;
}

export interface EpochEvent {
  epoch: number;
  epochs: number;
  perplexity: number;
  tokensPerSec: number;
  /** Training time since epoch 1, across resumes (prediction excluded, as d2l's timer). */
  elapsedMs: number;
  /** Perplexity on the held-out tail (data.validFraction > 0): the engine's forward pass only, no gradient, no update. */
  validPerplexity?: number;
  /** Set on the last event of a job that early stopping ended (the weights are then the best epoch's). */
  stopReason?: string;
  samples?: Sample[];
}

/**
 * Corpus of a spec, or a SpecError naming the field when it cannot give one minibatch.
 * `uploadedText` is an uploaded corpus's text (data.corpus {id}); with `vocab` (a model's, when the
 * job starts from one) the text is tokenised with it instead of its own (unknown tokens: `<unk>`).
 */
export function corpusForSpec(spec: JobSpec, o: { uploadedText?: string; vocab?: readonly string[] } = {}): Corpus {
  let corpus: Corpus;
  const { corpus: source, tokenizer, minFreq, maxTokens } = spec.data;
  try {
    if (!o.vocab && source === 'timemachine' && tokenizer === 'd2l-chars' && minFreq === 0) {
      corpus = loadCorpus('timemachine', maxTokens ?? 0); // the book's recipe, exactly as before
    } else {
      let text: string;
      if (source === 'timemachine') text = readFileSync(TIME_MACHINE_PATH, 'utf8');
      else if ('text' in source) text = source.text;
      else if (o.uploadedText !== undefined) text = o.uploadedText;
      else throw new Error(`corpus ${source.id} was not loaded`);
      corpus = loadTextCorpus(text, tokenizer, { maxTokens, minFreq, vocab: o.vocab ? Vocab.fromTokens([...o.vocab]) : undefined });
    }
  } catch (e) {
    throw new SpecError([{ field: 'data.corpus', message: (e as Error).message }]);
  }
  if (corpus.tokens.length === 0) throw new SpecError([{ field: 'data.corpus', message: emptyMessage(tokenizer) }]);
  if (corpus.vocab.size > LIMITS.vocabSize) {
    throw new SpecError([
      {
        field: tokenizer === 'words' ? 'data.minFreq' : 'data.tokenizer',
        message: `the vocabulary has ${corpus.vocab.size} tokens; at most ${LIMITS.vocabSize} (the model's limit)${tokenizer === 'words' ? ': raise data.minFreq so rare words become <unk>' : ''}`,
      },
    ]);
  }
  const need = minCorpusTokens(spec.data.batchSize, spec.data.numSteps);
  const { train, valid } = splitCorpus(corpus.tokens, spec.data.validFraction);
  if (valid.length > 0 && valid.length < spec.data.numSteps + 1) {
    throw new SpecError([
      {
        field: 'data.validFraction',
        message: `the held-out part has ${valid.length} tokens; numSteps ${spec.data.numSteps} needs at least ${spec.data.numSteps + 1}`,
      },
    ]);
  }
  if (train.length < need) {
    const field =
      source === 'timemachine' || corpus.tokens.length === spec.data.maxTokens
        ? 'data.maxTokens'
        : typeof source === 'object' && 'id' in source
          ? 'data.corpus'
          : 'data.corpus.text';
    throw new SpecError([
      {
        field,
        message: `corpus has ${train.length} tokens${valid.length ? ' for training (after the held-out part)' : ''}; batchSize ${spec.data.batchSize} × numSteps ${spec.data.numSteps} needs at least ${need} for one minibatch`,
      },
    ]);
  }
  return corpus;
}

/** The corpus's head for training and its tail (validFraction of it) held out. */
export function splitCorpus(tokens: Int32Array, validFraction: number): { train: Int32Array; valid: Int32Array } {
  const nValid = Math.floor(tokens.length * validFraction);
  return { train: tokens.subarray(0, tokens.length - nValid), valid: tokens.subarray(tokens.length - nValid) };
}

export function modelConfig(spec: JobSpec, vocabSize: number): ModelConfig {
  return { kind: spec.model.kind, vocabSize, numHiddens: spec.model.numHiddens, numLayers: spec.model.numLayers };
}

/**
 * Minibatches per trainBatches call on engines that offer it (GPU): the d2l recipe's 8 per epoch
 * are one call; a cancel waits for at most this many minibatches (milliseconds on a GPU).
 */
export const BATCHES_PER_CALL = 64;

export class AbortedError extends Error {
  constructor(readonly reason: unknown) {
    super('training aborted');
  }
}

export class Trainer {
  private constructor(
    readonly spec: JobSpec,
    readonly model: LstmModel,
    readonly vocab: Vocab,
    private readonly corpus: Int32Array,
    private readonly valid: Int32Array,
    private rng: Rng,
    /** Completed epochs. */
    public epoch: number,
    public elapsedMs: number,
    public perplexity: number,
    public early: EarlyStoppingState = { bestValidPerplexity: null, bestEpoch: 0 },
    /** The weights of the best validation epoch so far (early stopping returns to them). */
    private bestWeights?: Weights,
  ) {}

  /** Why the run ended before train.epochs (early stopping). */
  stopReason?: string;

  /**
   * A fresh run (weights from the seed), one resumed from a checkpoint of the same spec, or a fresh
   * run that starts from another model's weights (`init`: fine-tuning; given the job's model
   * config, it returns the weights — import.ts — whose vocabulary must be the corpus's).
   * `opts.vocab` tokenises the corpus with that vocabulary (the init model's: a job that fine-tunes
   * a model on another text); a resumed run always uses its checkpoint's.
   */
  static async create(
    spec: JobSpec,
    engine: EngineFactory,
    resume?: Checkpoint,
    init?: (config: ModelConfig) => InitModel,
    opts: { vocab?: readonly string[]; uploadedText?: string } = {},
  ): Promise<Trainer> {
    const corpus = corpusForSpec(spec, { uploadedText: opts.uploadedText, vocab: resume?.vocab ?? opts.vocab });
    const { train, valid } = splitCorpus(corpus.tokens, spec.data.validFraction);
    const config = modelConfig(spec, corpus.vocab.size);
    if (resume) {
      const model = await engine.createModel(resume.config, resume.weights);
      const early = resume.earlyStopping ?? { bestValidPerplexity: null, bestEpoch: 0 };
      // the best epoch's weights: kept beside the weights while they differ, else they are the weights
      const atBest = early.bestValidPerplexity !== null && early.bestEpoch === resume.epoch;
      const bestWeights = resume.bestWeights ?? (atBest ? resume.weights : undefined);
      return new Trainer(
        spec,
        model,
        Vocab.fromTokens(resume.vocab),
        train,
        valid,
        new Rng(resume.rngState),
        resume.epoch,
        resume.elapsedMs,
        resume.perplexity,
        early,
        bestWeights,
      );
    }
    const seed = spec.train.seed ?? (Math.random() * 2 ** 32) >>> 0;
    const initRng = new Rng(seed);
    let weights = initParams(config, initRng);
    if (init) {
      const from = init(config);
      const want = corpus.vocab.idxToToken;
      if (from.vocab && (from.vocab.length !== want.length || from.vocab.some((t, i) => t !== want[i]))) {
        throw new SpecError([
          {
            field: 'init',
            message: `the model's vocabulary (${from.vocab.length} tokens: ${JSON.stringify(from.vocab.slice(0, 8).join(''))}…) is not the corpus's (${want.length} tokens: ${JSON.stringify(want.slice(0, 8).join(''))}…); a model can only continue on text with the same tokens`,
          },
        ]);
      }
      weights = from.weights;
    }
    const model = await engine.createModel(config, weights);
    // the data stream has its own generator so it is independent of the parameter count
    return new Trainer(spec, model, corpus.vocab, train, valid, new Rng((seed ^ 0x5bd1e995) >>> 0), 0, 0, NaN);
  }

  get done(): boolean {
    return this.epoch >= this.spec.train.epochs;
  }

  /** train_epoch_ch8: one pass over the minibatches; returns perplexity and tokens/s. */
  async trainEpoch(signal?: AbortSignal): Promise<{ perplexity: number; tokensPerSec: number; ms: number }> {
    const { batchSize, numSteps, sampling } = this.spec.data;
    const { lr, clipTheta } = this.spec.train;
    const start = performance.now();
    const n = batchSize * numSteps;
    let lossSum = 0;
    let tokens = 0;
    // state: zeros at the first minibatch of an epoch, and at every minibatch when sampling randomly
    let first = true;
    const random = sampling === 'random';
    const batches = seqDataIter(sampling, this.corpus, batchSize, numSteps, this.rng);
    if (this.model.trainBatches) {
      // a GPU engine: up to BATCHES_PER_CALL minibatches per call, the loss read back once per call
      let chunk: Batch[] = [];
      const trainChunk = async () => {
        if (signal?.aborted) throw new AbortedError(signal.reason);
        const { loss } = await this.model.trainBatches!(chunk, { lr, clipTheta, resetFirst: first || random, resetEach: random });
        first = false;
        lossSum += loss * n * chunk.length;
        tokens += n * chunk.length;
        chunk = [];
      };
      for (const batch of batches) {
        chunk.push(batch);
        if (chunk.length === BATCHES_PER_CALL) await trainChunk();
      }
      if (chunk.length > 0) await trainChunk();
    } else {
      for (const batch of batches) {
        if (signal?.aborted) throw new AbortedError(signal.reason);
        const { loss } = await this.model.trainStep(batch, { lr, clipTheta, resetState: first || random });
        first = false;
        lossSum += loss * n;
        tokens += n;
        // let lock renewal, cancellation and event publishing run between minibatches
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    const ms = performance.now() - start;
    return { perplexity: Math.exp(lossSum / tokens), tokensPerSec: tokens / (ms / 1000), ms };
  }

  /**
   * Perplexity on the held-out tail: sequential minibatches from offset 0 (no random draw, so the
   * data stream of training is untouched), the state carried between them. Through the engine's
   * forward-only `loss` (no backward, no gradient, weights untouched), so it is the same engine's figure.
   */
  async validPerplexity(signal?: AbortSignal): Promise<number> {
    const { numSteps } = this.spec.data;
    const rows = Math.max(1, Math.min(this.spec.data.batchSize, Math.floor((this.valid.length - 1) / numSteps)));
    const rowLen = Math.floor((this.valid.length - 1) / rows);
    const numBatches = Math.floor(rowLen / numSteps);
    let lossSum = 0;
    for (let i = 0; i < numBatches; i++) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      const X = new Int32Array(rows * numSteps);
      const Y = new Int32Array(rows * numSteps);
      for (let b = 0; b < rows; b++) {
        const at = b * rowLen + i * numSteps;
        X.set(this.valid.subarray(at, at + numSteps), b * numSteps);
        Y.set(this.valid.subarray(at + 1, at + 1 + numSteps), b * numSteps);
      }
      const { loss } = await this.model.loss({ X, Y, batchSize: rows, numSteps }, { resetState: i === 0 });
      lossSum += loss;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return Math.exp(lossSum / numBatches);
  }

  /** The remaining epochs, one event each; samples every predictEvery epochs and at the last. */
  async *run(signal?: AbortSignal): AsyncGenerator<EpochEvent> {
    const { epochs, earlyStopping } = this.spec.train;
    const { predictEvery, prefixes } = this.spec.report;
    while (this.epoch < epochs) {
      const { perplexity, tokensPerSec, ms } = await this.trainEpoch(signal);
      this.epoch += 1;
      this.elapsedMs += ms;
      this.perplexity = perplexity;
      const event: EpochEvent = { epoch: this.epoch, epochs, perplexity, tokensPerSec, elapsedMs: Math.round(this.elapsedMs) };
      if (this.valid.length > 0) {
        const v = await this.validPerplexity(signal);
        event.validPerplexity = v;
        if (earlyStopping) this.watchEarlyStopping(v, event);
      }
      if (prefixes.length > 0 && (this.epoch % predictEvery === 0 || this.epoch === epochs || event.stopReason)) {
        event.samples = await this.samples();
      }
      yield event;
      if (event.stopReason) return;
    }
  }

  /** Early stopping after an epoch whose validation perplexity is v: remember the best, or stop. */
  private watchEarlyStopping(v: number, event: EpochEvent): void {
    const { patience, minDelta } = this.spec.train.earlyStopping!;
    const best = this.early.bestValidPerplexity;
    if (Number.isFinite(v) && (best === null || v < best - minDelta)) {
      this.early = { bestValidPerplexity: v, bestEpoch: this.epoch };
      this.bestWeights = this.model.getWeights();
      return;
    }
    if (this.epoch - this.early.bestEpoch < patience || this.epoch >= this.spec.train.epochs) return;
    this.stopReason = `early stopping: validation perplexity ${best === null ? 'never finite' : `did not improve on ${best.toFixed(4)} (epoch ${this.early.bestEpoch}) by more than ${minDelta}`} for ${patience} epochs; the model is epoch ${this.early.bestEpoch}'s`;
    // the job's model is the best epoch's: its weights (this attempt's, or from the checkpoint it
    // resumed from) go into the final checkpoint; only a checkpoint written before best weights were
    // kept in checkpoints lacks them
    if (this.bestWeights) this.model.setWeights(this.bestWeights);
    else
      this.stopReason = this.stopReason.replace(
        /; the model is .*$/,
        `; the best epoch (${this.early.bestEpoch}) was before a resume, so the model is the last epoch's`,
      );
    event.stopReason = this.stopReason;
  }

  async samples(): Promise<Sample[]> {
    const out: Sample[] = [];
    for (const prefix of this.spec.report.prefixes) {
      out.push({ prefix, text: await predict(prefix, this.spec.report.numPreds, this.model, this.vocab, { tokenizer: this.spec.data.tokenizer }) });
    }
    return out;
  }

  /** The state after the last completed epoch; resuming from it continues exactly. */
  checkpoint(): Checkpoint {
    return {
      spec: this.spec,
      config: this.model.config,
      vocab: this.vocab.idxToToken,
      epoch: this.epoch,
      rngState: this.rng.state,
      elapsedMs: this.elapsedMs,
      perplexity: this.perplexity,
      ...(this.spec.train.earlyStopping ? { earlyStopping: this.early } : {}),
      engine: this.model.engine,
      backend: this.model.backend,
      weights: this.model.getWeights(),
      // while the job may still stop early and its best epoch is behind it, the weights to return to
      ...(this.bestWeights && this.early.bestEpoch !== this.epoch && !this.done && !this.stopReason ? { bestWeights: this.bestWeights } : {}),
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}
