// The contract between the training loop and a compute engine (tfjs or native).
// Both engines train both model kinds; weights cross the boundary as named float32 arrays,
// so checkpoints are engine-independent.
import type { Batch } from '../text/data.js';

export type ModelKind = 'scratch' | 'concise';
export type EngineName = 'tfjs' | 'native';

export interface ModelConfig {
  kind: ModelKind;
  vocabSize: number;
  numHiddens: number;
  /** Stacked LSTM layers; the scratch kind has exactly 1. */
  numLayers: number;
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

/** Parameters by name, in a fixed order (the order of `paramNames(config)`). */
export type Weights = Record<string, NamedTensor>;

export interface StepOptions {
  lr: number;
  clipTheta: number;
  /** Start this minibatch from zero state (first minibatch of an epoch, or random sampling). */
  resetState: boolean;
}

/** Several minibatches in one call (LstmModel.trainBatches). */
export interface BatchesOptions {
  lr: number;
  clipTheta: number;
  /** The first minibatch starts from zero state (the first of an epoch). */
  resetFirst: boolean;
  /** Every later minibatch starts from zero state (random sampling). */
  resetEach: boolean;
}

export interface StepResult {
  /** Mean cross-entropy over the batchSize·numSteps predictions, before the update. */
  loss: number;
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
}

export interface LossAndGrads {
  loss: number;
  /** Raw gradients (not clipped), same names and shapes as the weights. */
  grads: Weights;
}

/** Batch-1 recurrent stepping, for predict_ch8 and sampling. */
export interface Generator {
  /** Consume one token; return the logits (vocabSize) of the next token. */
  feed(token: number): Promise<Float32Array>;
  dispose(): void;
}

export interface LstmModel {
  readonly config: ModelConfig;
  readonly engine: EngineName;
  /** What the engine computes on, e.g. 'wasm', 'cpu', 'tensorflow', 'openblas'. */
  readonly backend: string;
  /**
   * One step of d2l's train_epoch_ch8 on a minibatch: forward from the carried (detached) state,
   * or from zeros if opts.resetState or the batch size changed; mean CE; backward through time;
   * global-norm clipping; SGD. The final (H, C) is kept as the next step's state.
   */
  trainStep(batch: Batch, opts: StepOptions): Promise<StepResult>;
  /**
   * Optional: trainStep over several minibatches of one shape in one call, returning their mean
   * loss. A GPU engine offers it so that the loss is read back once per call, not per minibatch
   * (each read is a host–device synchronisation).
   */
  trainBatches?(batches: Batch[], opts: BatchesOptions): Promise<{ loss: number }>;
  /** As trainStep, but returns the raw gradients and does not update the weights (the state does advance). */
  lossAndGrads(batch: Batch, opts: { resetState: boolean }): Promise<LossAndGrads>;
  /**
   * The forward pass alone, for the held-out perplexity: from the carried state (or zeros if
   * opts.resetState or the batch size changed), the mean cross-entropy of the minibatch — no
   * backward, no gradient, no update. The final (H, C) becomes the carried state exactly as in
   * lossAndGrads, so `loss` and `lossAndGrads(…).loss` agree call for call, in any mix.
   * Resolves to `{ loss }`, as trainBatches does.
   */
  loss(batch: Batch, opts: { resetState: boolean }): Promise<{ loss: number }>;
  generator(): Generator;
  /** A copy of the current weights. */
  getWeights(): Weights;
  setWeights(weights: Weights): void;
  dispose(): void;
}

export interface EngineFactory {
  readonly name: EngineName;
  readonly backend: string;
  /** A model with the given weights (see model/params.ts for initialisation). */
  createModel(config: ModelConfig, weights: Weights): Promise<LstmModel>;
}
