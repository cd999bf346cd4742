// LstmModel over the reference implementations (scratch.ts: the seed's equations; concise.ts: tf.layers),
// trained as d2l's train_epoch_ch8 does: autograd, grad_clipping, sgd. Slow, and the yardstick the
// fused path is tested and benchmarked against.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../text/data.js';
import type { Generator, LossAndGrads, LstmModel, ModelConfig, StepOptions, StepResult, Weights } from '../engine.js';
import { checkBatch, checkWeights, gradClipping, needsFreshState, paramNames, readWeights, sgd, stepGenerator, tensorsToWeights } from './common.js';
import { RNNModel, conciseLoss, conciseLossAndGrads, type RnnState } from './concise.js';
import { getLstmParams, initLstmState, lstm, paramList, paramRecord, scratchLoss, scratchLossAndGrads, type LstmParams } from './scratch.js';

/** What the reference model needs from a network; state is a flat list [H_0, C_0, H_1, C_1, …]. */
interface ReferenceNet {
  beginState(batchSize: number): tf.Tensor2D[];
  lossAndGrads(batch: Batch, state: tf.Tensor2D[]): { loss: tf.Scalar; grads: tf.Tensor[]; state: tf.Tensor2D[] };
  /** The forward pass and loss alone (no gradient tape); the caller owns the returned tensors. */
  loss(batch: Batch, state: tf.Tensor2D[]): { loss: tf.Scalar; state: tf.Tensor2D[] };
  /** Current parameters in `Weights` order (owned by the net). */
  params(): tf.Tensor[];
  /** Replace the parameters with these new tensors (the net takes ownership). */
  setParams(params: tf.Tensor[]): void;
  /** One token through the network at batch size 1: logits (1, V) and the new state. */
  step(token: number, state: tf.Tensor2D[]): [tf.Tensor2D, tf.Tensor2D[]];
  dispose(): void;
}

class ScratchNet implements ReferenceNet {
  private p: LstmParams;
  constructor(
    private readonly config: ModelConfig,
    weights: Weights,
  ) {
    this.p = getLstmParams(weights);
  }
  beginState(batchSize: number): tf.Tensor2D[] {
    return initLstmState(batchSize, this.config.numHiddens);
  }
  lossAndGrads(batch: Batch, state: tf.Tensor2D[]) {
    const r = scratchLossAndGrads(this.p, batch, [state[0], state[1]], this.config.vocabSize);
    return { loss: r.loss, grads: r.grads, state: [...r.state] };
  }
  loss(batch: Batch, state: tf.Tensor2D[]) {
    const r = scratchLoss(this.p, batch, [state[0], state[1]], this.config.vocabSize);
    return { loss: r.loss, state: [...r.state] };
  }
  params(): tf.Tensor[] {
    return paramList(this.p);
  }
  setParams(params: tf.Tensor[]): void {
    tf.dispose(paramList(this.p));
    this.p = paramRecord(params);
  }
  step(token: number, state: tf.Tensor2D[]): [tf.Tensor2D, tf.Tensor2D[]] {
    const X = tf.cast(tf.oneHot(tf.tensor1d([token], 'int32'), this.config.vocabSize), 'float32') as tf.Tensor2D;
    const [Y, [H, C]] = lstm([X], [state[0], state[1]], this.p);
    return [Y, [H, C]];
  }
  dispose(): void {
    tf.dispose(paramList(this.p));
  }
}

class ConciseNet implements ReferenceNet {
  private readonly net: RNNModel;
  constructor(config: ModelConfig, weights: Weights) {
    this.net = new RNNModel(config, weights);
  }
  beginState(batchSize: number): tf.Tensor2D[] {
    return this.net.beginState(batchSize).flat();
  }
  lossAndGrads(batch: Batch, state: tf.Tensor2D[]) {
    const r = conciseLossAndGrads(this.net, batch, pairs(state));
    return { loss: r.loss, grads: r.grads, state: r.state.flat() };
  }
  loss(batch: Batch, state: tf.Tensor2D[]) {
    const r = conciseLoss(this.net, batch, pairs(state));
    return { loss: r.loss, state: r.state.flat() };
  }
  params(): tf.Tensor[] {
    return this.net.variables();
  }
  setParams(params: tf.Tensor[]): void {
    this.net.variables().forEach((v, i) => v.assign(params[i]));
    tf.dispose(params);
  }
  step(token: number, state: tf.Tensor2D[]): [tf.Tensor2D, tf.Tensor2D[]] {
    const [Y, s] = this.net.forward(tf.tensor2d([token], [1, 1], 'int32'), pairs(state));
    return [Y, s.flat()];
  }
  dispose(): void {
    this.net.dispose();
  }
}

function pairs(state: tf.Tensor2D[]): RnnState {
  const out: RnnState = [];
  for (let i = 0; i < state.length; i += 2) out.push([state[i], state[i + 1]]);
  return out;
}

export class ReferenceModel implements LstmModel {
  readonly engine = 'tfjs' as const;
  readonly config: ModelConfig;
  private readonly names: string[];
  private readonly net: ReferenceNet;
  private state: tf.Tensor2D[] | null = null;

  constructor(
    config: ModelConfig,
    weights: Weights,
    readonly backend: string,
  ) {
    checkWeights(config, weights);
    this.config = { ...config };
    this.names = paramNames(config);
    this.net = config.kind === 'scratch' ? new ScratchNet(config, weights) : new ConciseNet(config, weights);
  }

  async trainStep(batch: Batch, opts: StepOptions): Promise<StepResult> {
    checkBatch(batch, this.config.vocabSize);
    const r = this.net.lossAndGrads(batch, this.stateFor(batch.batchSize, opts.resetState));
    this.replaceState(r.state);
    const [stats, updated] = tf.tidy(() => {
      const { grads, norm } = gradClipping(r.grads, opts.clipTheta);
      return [tf.stack([r.loss, norm]), sgd(this.net.params(), grads, opts.lr)];
    });
    tf.dispose([r.loss, r.grads]);
    this.net.setParams(updated);
    const [loss, gradNorm] = await stats.data();
    stats.dispose();
    return { loss, gradNorm };
  }

  async lossAndGrads(batch: Batch, opts: { resetState: boolean }): Promise<LossAndGrads> {
    checkBatch(batch, this.config.vocabSize);
    const r = this.net.lossAndGrads(batch, this.stateFor(batch.batchSize, opts.resetState));
    this.replaceState(r.state);
    try {
      const [loss] = await r.loss.data();
      return { loss, grads: await readWeights(this.names, r.grads) };
    } finally {
      tf.dispose([r.loss, r.grads]);
    }
  }

  async loss(batch: Batch, opts: { resetState: boolean }): Promise<{ loss: number }> {
    checkBatch(batch, this.config.vocabSize);
    const r = this.net.loss(batch, this.stateFor(batch.batchSize, opts.resetState));
    this.replaceState(r.state);
    try {
      const [loss] = await r.loss.data();
      return { loss };
    } finally {
      r.loss.dispose();
    }
  }

  generator(): Generator {
    return stepGenerator(this.net.beginState(1), this.config.vocabSize, (token, state) => this.net.step(token, state));
  }

  getWeights(): Weights {
    return tensorsToWeights(this.names, this.net.params());
  }

  setWeights(weights: Weights): void {
    checkWeights(this.config, weights);
    this.net.setParams(this.names.map((name) => tf.tensor(weights[name].data, weights[name].shape, 'float32')));
  }

  dispose(): void {
    this.net.dispose();
    if (this.state) tf.dispose(this.state);
    this.state = null;
  }

  private stateFor(batchSize: number, resetState: boolean): tf.Tensor2D[] {
    if (needsFreshState(this.state, batchSize, resetState)) this.replaceState(this.net.beginState(batchSize));
    return this.state!;
  }

  private replaceState(state: tf.Tensor2D[]): void {
    if (this.state) tf.dispose(this.state);
    this.state = state;
  }
}
