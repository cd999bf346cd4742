// LstmModel on the fused sequence op, for both kinds. The model holds its parameters in the fused
// layout (fusedLayout.ts): the concise kind's own, and for the scratch kind its 14 tensors with the
// gate blocks concatenated; weights and gradients are mapped back at the boundary.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../text/data.js';
import type { Generator, LossAndGrads, LstmModel, ModelConfig, StepOptions, StepResult, Weights } from '../engine.js';
import {
  checkBatch,
  checkWeights,
  gradClipping,
  needsFreshState,
  paramNames,
  readWeights,
  sgd,
  stepGenerator,
  tensorsToWeights,
  timeMajor,
  weightsToTensors,
} from './common.js';
import { fromFusedLayout, fusedConfig, toFusedLayout } from './fusedLayout.js';
import {
  denseCrossEntropy,
  denseLoss,
  disposeGateConstants,
  gateConstants,
  lstmCell,
  lstmSequence,
  lstmSequenceForward,
  newTape,
  releaseTape,
  scaleLayer,
  type SequenceTape,
  type FusedLstmParams,
  type GateConstants,
  type LayerInput,
  type LayerState,
  type ScaledLayer,
} from './fusedLstm.js';

export interface FusedView {
  layers: FusedLstmParams[];
  /** (H, V) */
  Wq: tf.Tensor2D;
  /** (V) */
  bq: tf.Tensor1D;
}

/** Parameters in the fused layout (`paramNames(fusedConfig(…))` order) by role. */
export function fusedView(params: tf.Tensor[]): FusedView {
  const n = params.length;
  const layers: FusedLstmParams[] = [];
  for (let l = 0; 3 * l + 3 <= n - 2; l++) {
    const [Wx, Wh, b] = params.slice(3 * l, 3 * l + 3);
    layers.push({ Wx: Wx as tf.Tensor2D, Wh: Wh as tf.Tensor2D, b: b as tf.Tensor1D });
  }
  return { layers, Wq: params[n - 2] as tf.Tensor2D, bq: params[n - 1] as tf.Tensor1D };
}

/** Mean CE of one minibatch through the fused ops; each layer's final (H, C) goes to its tape. */
export function fusedLoss(params: tf.Tensor[], batch: Batch, state: LayerState[], k: GateConstants, tapes: SequenceTape[]): tf.Scalar {
  const { batchSize, numSteps } = batch;
  const { layers, Wq, bq } = fusedView(params);
  let input: LayerInput = { tokens: timeMajor(batch.X, batchSize, numSteps), vocabSize: Wq.shape[1] };
  let Hs: tf.Tensor2D | undefined;
  layers.forEach((layer, l) => {
    Hs = lstmSequence(input, layer, state[l], numSteps, k, tapes[l]);
    input = { X: Hs };
  });
  return denseCrossEntropy(Hs!, Wq, bq, timeMajor(batch.Y, batchSize, numSteps));
}

/**
 * The same mean CE by the forward ops alone (call it inside tf.tidy): no gradient functions, nothing
 * kept for a backward. Returns the loss and every layer's final (H, C), as fusedLoss's tapes hold them.
 */
export function fusedForwardLoss(params: tf.Tensor[], batch: Batch, state: LayerState[], k: GateConstants): [tf.Scalar, LayerState[]] {
  const { batchSize, numSteps } = batch;
  const { layers, Wq, bq } = fusedView(params);
  let input: LayerInput = { tokens: timeMajor(batch.X, batchSize, numSteps), vocabSize: Wq.shape[1] };
  let Hs: tf.Tensor2D | undefined;
  const final: LayerState[] = layers.map((layer, l) => {
    const r = lstmSequenceForward(input, layer, state[l], numSteps, k);
    Hs = r.Hs;
    input = { X: Hs };
    return r.state;
  });
  return [denseLoss(Hs!, Wq, bq, timeMajor(batch.Y, batchSize, numSteps)), final];
}

export class FusedLstmModel implements LstmModel {
  readonly engine = 'tfjs' as const;
  readonly config: ModelConfig;
  /** The fused layout's config and parameter names (see fusedLayout.ts). */
  private readonly fused: ModelConfig;
  private readonly names: string[];
  private params: tf.Tensor[];
  private state: LayerState[] | null = null;
  private readonly k: GateConstants;
  /** Scaled layers for the generator, rebuilt after the weights change. */
  private inference: ScaledLayer[] | null = null;

  constructor(
    config: ModelConfig,
    weights: Weights,
    readonly backend: string,
  ) {
    checkWeights(config, weights);
    this.config = { ...config };
    this.fused = fusedConfig(config);
    this.names = paramNames(this.fused);
    this.params = weightsToTensors(this.fused, toFusedLayout(config, weights));
    this.k = gateConstants(config.numHiddens);
  }

  async trainStep(batch: Batch, opts: StepOptions): Promise<StepResult> {
    checkBatch(batch, this.config.vocabSize);
    const state = this.stateFor(batch.batchSize, opts.resetState);
    const tapes = state.map(newTape);
    let stats: tf.Tensor1D;
    let updated: tf.Tensor[];
    try {
      [stats, updated] = tf.tidy(() => {
        const f = (...params: tf.Tensor[]) => fusedLoss(params, batch, state, this.k, tapes);
        const { value, grads } = tf.valueAndGrads(f)(this.params);
        const { grads: clipped, norm } = gradClipping(grads, opts.clipTheta);
        return [tf.stack([value, norm]) as tf.Tensor1D, sgd(this.params, clipped, opts.lr)];
      });
    } catch (e) {
      tapes.forEach(releaseTape);
      tf.dispose(tapes.map((t) => t.state ?? []));
      throw e;
    }
    tapes.forEach(releaseTape);
    this.replaceParams(updated);
    this.replaceState(tapes.map((t) => t.state!));
    const [loss, gradNorm] = await stats.data();
    stats.dispose();
    return { loss, gradNorm };
  }

  async lossAndGrads(batch: Batch, opts: { resetState: boolean }): Promise<LossAndGrads> {
    checkBatch(batch, this.config.vocabSize);
    const state = this.stateFor(batch.batchSize, opts.resetState);
    const tapes = state.map(newTape);
    let value: tf.Scalar;
    let grads: tf.Tensor[];
    try {
      ({ value, grads } = tf.valueAndGrads((...params: tf.Tensor[]) => fusedLoss(params, batch, state, this.k, tapes))(this.params));
    } catch (e) {
      tapes.forEach(releaseTape);
      tf.dispose(tapes.map((t) => t.state ?? []));
      throw e;
    }
    tapes.forEach(releaseTape);
    this.replaceState(tapes.map((t) => t.state!));
    try {
      const [loss] = await value.data();
      return { loss, grads: fromFusedLayout(this.config, await readWeights(this.names, grads)) };
    } finally {
      tf.dispose([value, grads]);
    }
  }

  async loss(batch: Batch, opts: { resetState: boolean }): Promise<{ loss: number }> {
    checkBatch(batch, this.config.vocabSize);
    const state = this.stateFor(batch.batchSize, opts.resetState);
    // no valueAndGrads: no gradient tape, and no tensors kept for a backward
    const [value, final] = tf.tidy(() => fusedForwardLoss(this.params, batch, state, this.k));
    this.replaceState(final);
    try {
      const [loss] = await value.data();
      return { loss };
    } finally {
      value.dispose();
    }
  }

  generator(): Generator {
    const { numHiddens, numLayers } = this.fused;
    const zeros = Array.from({ length: numLayers }, () => [tf.zeros([1, numHiddens]), tf.zeros([1, numHiddens])] as LayerState);
    return stepGenerator(zeros, this.config.vocabSize, (token, prev) => {
      const layers = this.inferenceLayers();
      const n = this.params.length;
      const [Wq, bq] = [this.params[n - 2], this.params[n - 1]];
      const next: LayerState[] = [];
      let H: tf.Tensor2D | undefined;
      layers.forEach((layer, l) => {
        // layer 0: the token's row of the scaled (W_x + b); above: the previous layer's H projected
        const xw = l === 0 ? { table: layer.Wx, rows: tf.tensor1d([token], 'int32') } : (tf.add(tf.matMul(H!, layer.Wx), layer.b) as tf.Tensor2D);
        const step = lstmCell(xw, prev[l], layer.Wh, this.k);
        next.push([step.H, step.C]);
        H = step.H;
      });
      return [tf.add(tf.matMul(H!, Wq), bq), next];
    });
  }

  getWeights(): Weights {
    return fromFusedLayout(this.config, tensorsToWeights(this.names, this.params));
  }

  setWeights(weights: Weights): void {
    checkWeights(this.config, weights);
    this.replaceParams(weightsToTensors(this.fused, toFusedLayout(this.config, weights)));
  }

  dispose(): void {
    tf.dispose(this.params);
    this.params = [];
    this.replaceState([]);
    this.state = null;
    this.invalidateInference();
    disposeGateConstants(this.k);
  }

  /** The state to start a minibatch from: zeros when reset, at first, or when the batch size changed. */
  private stateFor(batchSize: number, resetState: boolean): LayerState[] {
    if (this.state === null || needsFreshState(this.state[0], batchSize, resetState)) {
      const H = this.config.numHiddens;
      this.replaceState(Array.from({ length: this.fused.numLayers }, () => [tf.zeros([batchSize, H]), tf.zeros([batchSize, H])] as LayerState));
    }
    return this.state!;
  }

  private replaceState(state: LayerState[]): void {
    if (this.state) tf.dispose(this.state);
    this.state = state;
  }

  private replaceParams(params: tf.Tensor[]): void {
    tf.dispose(this.params);
    this.params = params;
    this.invalidateInference();
  }

  private invalidateInference(): void {
    if (this.inference) tf.dispose(this.inference.map((l) => [l.Wx, l.b, l.Wh]));
    this.inference = null;
  }

  private inferenceLayers(): ScaledLayer[] {
    if (!this.inference) {
      const scaled = tf.tidy(() =>
        fusedView(this.params).layers.map((layer, l) => {
          const s = scaleLayer(layer, l === 0, this.k);
          return [s.Wx, s.b, s.Wh];
        }),
      );
      // kept: this may run inside a generator step's tidy, and the cache outlives it
      this.inference = scaled.map(([Wx, b, Wh]) => ({ Wx: tf.keep(Wx), b: tf.keep(b), Wh: tf.keep(Wh) }) as ScaledLayer);
    }
    return this.inference;
  }
}
