// d2l's train_ch8 / train_epoch_ch8 over an engine's LstmModel, as an async iterator of epoch
// events, resumable from a checkpoint at an epoch boundary.
import { loadCorpus, loadCorpusWithVocab, Vocab, type Corpus } from '../text/corpus.js';
import { minCorpusTokens, seqDataIter, type Batch } from '../text/data.js';
import { Rng } from '../text/rng.js';
import type { EngineFactory, LstmModel, ModelConfig } from '../model/engine.js';
import { initParams } from '../model/params.js';
import type { Checkpoint } from './checkpoint.js';
import type { InitModel } from './import.js';
import { predict } from './predict.js';
import { SpecError, type JobSpec } from './spec.js';

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
  samples?: Sample[];
}

/**
 * Corpus of a spec, or a SpecError naming the field when it cannot give one minibatch. With
 * `vocab` (a model's, when the job starts from one) the text is tokenised with it instead of its own.
 */
export function corpusForSpec(spec: JobSpec, vocab?: readonly string[]): Corpus {
  let corpus: Corpus;
  try {
    corpus = vocab ? loadCorpusWithVocab(spec.data.corpus, Vocab.fromTokens([...vocab]), spec.data.maxTokens) : loadCorpus(spec.data.corpus, spec.data.maxTokens);
  } catch (e) {
    throw new SpecError([{ field: 'data.corpus', message: (e as Error).message }]);
  }
  const need = minCorpusTokens(spec.data.batchSize, spec.data.numSteps);
  if (corpus.tokens.length < need) {
    const field = spec.data.corpus === 'timemachine' || corpus.tokens.length === spec.data.maxTokens ? 'data.maxTokens' : 'data.corpus.text';
    throw new SpecError([
      {
        field,
        message: `corpus has ${corpus.tokens.length} tokens; batchSize ${spec.data.batchSize} × numSteps ${spec.data.numSteps} needs at least ${need} for one minibatch`,
      },
    ]);
  }
  return corpus;
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
    private rng: Rng,
    /** Completed epochs. */
    public epoch: number,
    public elapsedMs: number,
    public perplexity: number,
  ) {}

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
    opts: { vocab?: readonly string[] } = {},
  ): Promise<Trainer> {
    const corpus = corpusForSpec(spec, resume?.vocab ?? opts.vocab);
    const config = modelConfig(spec, corpus.vocab.size);
    if (resume) {
      const model = await engine.createModel(resume.config, resume.weights);
      return new Trainer(spec, model, Vocab.fromTokens(resume.vocab), corpus.tokens, new Rng(resume.rngState), resume.epoch, resume.elapsedMs, resume.perplexity);
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
    return new Trainer(spec, model, corpus.vocab, corpus.tokens, new Rng((seed ^ 0x5bd1e995) >>> 0), 0, 0, NaN);
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

  /** The remaining epochs, one event each; samples every predictEvery epochs and at the last. */
  async *run(signal?: AbortSignal): AsyncGenerator<EpochEvent> {
    const { epochs } = this.spec.train;
    const { predictEvery, prefixes, numPreds } = this.spec.report;
    while (this.epoch < epochs) {
      const { perplexity, tokensPerSec, ms } = await this.trainEpoch(signal);
      this.epoch += 1;
      this.elapsedMs += ms;
      this.perplexity = perplexity;
      const event: EpochEvent = { epoch: this.epoch, epochs, perplexity, tokensPerSec, elapsedMs: Math.round(this.elapsedMs) };
      if (prefixes.length > 0 && (this.epoch % predictEvery === 0 || this.epoch === epochs)) {
        event.samples = await this.samples();
      }
      yield event;
    }
  }

  async samples(): Promise<Sample[]> {
    const out: Sample[] = [];
    for (const prefix of this.spec.report.prefixes) {
      out.push({ prefix, text: await predict(prefix, this.spec.report.numPreds, this.model, this.vocab) });
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
      engine: this.model.engine,
      backend: this.model.backend,
      weights: this.model.getWeights(),
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}
