// Reference: the seed's LSTM from scratch (d2l "Long Short-Term Memory", implementation from scratch),
// line by line in TensorFlow.js, trained by autograd. The fused path is tested against this.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../text/data.js';
import type { Weights } from '../engine.js';
import { crossEntropy, timeMajor } from './common.js';

export const LSTM_PARAM_NAMES = ['W_xi', 'W_hi', 'b_i', 'W_xf', 'W_hf', 'b_f', 'W_xo', 'W_ho', 'b_o', 'W_xc', 'W_hc', 'b_c', 'W_hq', 'b_q'] as const;
export type LstmParamName = (typeof LSTM_PARAM_NAMES)[number];
export type LstmParams = Record<LstmParamName, tf.Tensor>;
export type LstmState = [tf.Tensor2D, tf.Tensor2D];

/** get_lstm_params, with the values taken from `Weights` (initialised in model/params.ts). */
export function getLstmParams(weights: Weights): LstmParams {
  const params = {} as LstmParams;
  for (const name of LSTM_PARAM_NAMES) params[name] = tf.tensor(weights[name].data, weights[name].shape, 'float32');
  return params;
}

/** The params as a list in LSTM_PARAM_NAMES order, and back (for tf.grads and the optimiser). */
export function paramList(params: LstmParams): tf.Tensor[] {
  return LSTM_PARAM_NAMES.map((name) => params[name]);
}
export function paramRecord(list: tf.Tensor[]): LstmParams {
  const params = {} as LstmParams;
  LSTM_PARAM_NAMES.forEach((name, i) => (params[name] = list[i]));
  return params;
}

export function initLstmState(batchSize: number, numHiddens: number): LstmState {
  return [tf.zeros([batchSize, numHiddens]), tf.zeros([batchSize, numHiddens])];
}

/** The seed's `lstm(inputs, state, params)`: inputs are numSteps one-hot (batch, vocab) matrices. */
export function lstm(inputs: tf.Tensor2D[], state: LstmState, params: LstmParams): [tf.Tensor2D, LstmState] {
  const { W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q } = params;
  let [H, C] = state;
  const outputs: tf.Tensor2D[] = [];
  for (const X of inputs) {
    const I = tf.sigmoid(X.matMul(W_xi).add(H.matMul(W_hi)).add(b_i));
    const F = tf.sigmoid(X.matMul(W_xf).add(H.matMul(W_hf)).add(b_f));
    const O = tf.sigmoid(X.matMul(W_xo).add(H.matMul(W_ho)).add(b_o));
    const C_tilda = tf.tanh(X.matMul(W_xc).add(H.matMul(W_hc)).add(b_c));
    C = F.mul(C).add(I.mul(C_tilda)) as tf.Tensor2D;
    H = O.mul(C.tanh()) as tf.Tensor2D;
    const Y = H.matMul(W_hq).add(b_q) as tf.Tensor2D;
    outputs.push(Y);
  }
  return [tf.concat(outputs, 0), [H, C]];
}

/** RNNModelScratch.__call__: X (batch, steps) → F.one_hot(X.T, vocab) → forward_fn. Outputs are time-major. */
export function rnnModelScratch(X: tf.Tensor2D, state: LstmState, params: LstmParams, vocabSize: number): [tf.Tensor2D, LstmState] {
  const inputs = tf.unstack(tf.cast(tf.oneHot(tf.transpose(X), vocabSize), 'float32')) as tf.Tensor2D[];
  return lstm(inputs, state, params);
}

export interface ScratchLossAndGrads {
  loss: tf.Scalar;
  /** d loss / d param, in LSTM_PARAM_NAMES order. */
  grads: tf.Tensor[];
  /** The state after the last step (a new tensor; the caller owns it). */
  state: LstmState;
}

/**
 * The reference loss of one minibatch: one-hot inputs, time-major outputs,
 * l = CrossEntropyLoss(y_hat, y.T.reshape(-1)) (mean), and the state after the last step.
 */
function minibatchLoss(params: LstmParams, batch: Batch, state: LstmState, vocabSize: number): [tf.Scalar, LstmState] {
  const { batchSize, numSteps } = batch;
  const X = tf.tensor2d(batch.X, [batchSize, numSteps], 'int32');
  const y = tf.tensor1d(timeMajor(batch.Y, batchSize, numSteps), 'int32');
  const [y_hat, s] = rnnModelScratch(X, state, params, vocabSize);
  return [crossEntropy(y_hat, y), s];
}

/** The reference loss of one minibatch and its gradients by tfjs autograd. */
export function scratchLossAndGrads(params: LstmParams, batch: Batch, state: LstmState, vocabSize: number): ScratchLossAndGrads {
  let newState: LstmState | undefined;
  const { value, grads } = tf.tidy(() => {
    const f = (...list: tf.Tensor[]) => {
      const [loss, s] = minibatchLoss(paramRecord(list), batch, state, vocabSize);
      newState = [tf.keep(s[0]), tf.keep(s[1])];
      return loss;
    };
    return tf.valueAndGrads(f)(paramList(params));
  });
  return { loss: value as tf.Scalar, grads, state: newState! };
}

/** The reference loss of one minibatch alone (no gradient) and the state after the last step; the caller owns both. */
export function scratchLoss(params: LstmParams, batch: Batch, state: LstmState, vocabSize: number): { loss: tf.Scalar; state: LstmState } {
  const [loss, s] = tf.tidy(() => minibatchLoss(params, batch, state, vocabSize));
  return { loss, state: s };
}
