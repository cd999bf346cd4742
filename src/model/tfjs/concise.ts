// Reference: the seed's concise LSTM (nn.LSTM + d2l.RNNModel) with TensorFlow.js layers: tf.layers.lstm
// (stacked numLayers times) followed by a dense output layer, trained by autograd.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../text/data.js';
import type { ModelConfig, Weights } from '../engine.js';
import { crossEntropy, paramNames, timeMajor } from './common.js';

/** (H, C) of every layer. */
export type RnnState = Array<[tf.Tensor2D, tf.Tensor2D]>;

/** d2l.RNNModel: the recurrent layer(s), then a linear layer on every time step's hidden state. */
export class RNNModel {
  readonly rnn: tf.layers.Layer[] = [];
  readonly linear: tf.layers.Layer;

  constructor(
    readonly config: ModelConfig,
    weights: Weights,
  ) {
    const { vocabSize, numHiddens, numLayers } = config;
    for (let l = 0; l < numLayers; l++) {
      // gates as nn.LSTM: logistic sigmoid (tfjs defaults to hard sigmoid), no forget-bias trick;
      // zero initialisers since the weights are set right away (the default orthogonal one is slow)
      const layer = tf.layers.lstm({
        units: numHiddens,
        returnSequences: true,
        returnState: true,
        recurrentActivation: 'sigmoid',
        unitForgetBias: false,
        kernelInitializer: 'zeros',
        recurrentInitializer: 'zeros',
        biasInitializer: 'zeros',
      });
      this.rnn.push(layer);
    }
    this.linear = tf.layers.dense({ units: vocabSize, kernelInitializer: 'zeros', biasInitializer: 'zeros' });
    // layers create their variables on the first call; make it now so the weights can be set
    tf.tidy(() => {
      this.forward(tf.zeros([1, 1], 'int32'), this.beginState(1));
    });
    this.setWeights(weights);
  }

  /** Trainable variables in `Weights` order: lstm_l{l}/kernel, recurrent_kernel, bias, …, dense/kernel, dense/bias. */
  variables(): tf.Variable[] {
    return [...this.rnn, this.linear].flatMap((layer) => layer.trainableWeights.map((w) => w.read() as tf.Variable));
  }

  setWeights(weights: Weights): void {
    const names = paramNames(this.config);
    let k = 0;
    for (const layer of [...this.rnn, this.linear]) {
      const n = layer.trainableWeights.length;
      const values = names.slice(k, k + n).map((name) => tf.tensor(weights[name].data, weights[name].shape, 'float32'));
      layer.setWeights(values);
      tf.dispose(values);
      k += n;
    }
  }

  beginState(batchSize: number): RnnState {
    return this.rnn.map(() => [tf.zeros([batchSize, this.config.numHiddens]), tf.zeros([batchSize, this.config.numHiddens])]);
  }

  /** X (batch, steps) → logits (steps·batch, vocab), time-major as the seed's `Y.reshape((-1, Y.shape[-1]))`. */
  forward(X: tf.Tensor2D, state: RnnState): [tf.Tensor2D, RnnState] {
    // tf.layers are batch-major: (batch, steps, features)
    let Y: tf.Tensor = tf.cast(tf.oneHot(X, this.config.vocabSize), 'float32');
    const newState: RnnState = [];
    this.rnn.forEach((layer, l) => {
      const [seq, H, C] = layer.apply(Y, { initialState: state[l] }) as tf.Tensor[];
      Y = seq;
      newState.push([H as tf.Tensor2D, C as tf.Tensor2D]);
    });
    const steps = tf.transpose(Y, [1, 0, 2]);
    const output = this.linear.apply(tf.reshape(steps, [-1, this.config.numHiddens])) as tf.Tensor2D;
    return [output, newState];
  }

  dispose(): void {
    for (const layer of [...this.rnn, this.linear]) layer.dispose();
  }
}

export interface ConciseLossAndGrads {
  loss: tf.Scalar;
  /** In `Weights` order. */
  grads: tf.Tensor[];
  state: RnnState;
}

/** The reference loss (mean CE on time-major outputs) and the state after the last step. */
function minibatchLoss(net: RNNModel, batch: Batch, state: RnnState): [tf.Scalar, RnnState] {
  const { batchSize, numSteps } = batch;
  const X = tf.tensor2d(batch.X, [batchSize, numSteps], 'int32');
  const y = tf.tensor1d(timeMajor(batch.Y, batchSize, numSteps), 'int32');
  const [y_hat, s] = net.forward(X, state);
  return [crossEntropy(y_hat, y), s];
}

/** The reference loss and its gradients by tf.variableGrads. */
export function conciseLossAndGrads(net: RNNModel, batch: Batch, state: RnnState): ConciseLossAndGrads {
  const vars = net.variables();
  let newState: RnnState | undefined;
  const { value, grads } = tf.tidy(() =>
    tf.variableGrads(() => {
      const [loss, s] = minibatchLoss(net, batch, state);
      newState = s.map(([H, C]) => [tf.keep(H), tf.keep(C)]);
      return loss;
    }, vars),
  );
  return { loss: value, grads: vars.map((v) => grads[v.name]), state: newState! };
}

/** The reference loss alone (no gradient) and the state after the last step; the caller owns both. */
export function conciseLoss(net: RNNModel, batch: Batch, state: RnnState): { loss: tf.Scalar; state: RnnState } {
  const [loss, s] = tf.tidy(() => minibatchLoss(net, batch, state));
  return { loss, state: s };
}
