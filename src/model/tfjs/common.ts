// Pieces of d2l's train_ch8 shared by the fused path and the reference models: data layout,
// mean cross-entropy, grad_clipping, sgd, moving weights between tensors and `Weights`, and the
// generator loop.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../text/data.js';
import type { Generator, ModelConfig, Weights } from '../engine.js';
import { paramShapes } from '../params.js';

/**
 * Token ids index rows of a table (V rows): the wasm kernels read and write those rows without a
 * bounds check, and tf.oneHot / oneHotRows turn an id outside [0, V) into a wrong row or none at all.
 */
export function checkTokens(tokens: Int32Array | number[], vocabSize: number): void {
  for (const i of tokens) if (!(Number.isInteger(i) && i >= 0 && i < vocabSize)) throw new Error(`token id ${i} is not in [0, ${vocabSize - 1}]`);
}

/** A minibatch the models can read: X and Y of batchSize·numSteps ids, each in [0, V). Checked before any state changes. */
export function checkBatch(batch: Batch, vocabSize: number): void {
  const n = batch.batchSize * batch.numSteps;
  if (batch.X.length !== n || batch.Y.length !== n) {
    throw new Error(`a minibatch of ${batch.batchSize}×${batch.numSteps} needs ${n} ids in X and in Y (got ${batch.X.length} and ${batch.Y.length})`);
  }
  checkTokens(batch.X, vocabSize);
  checkTokens(batch.Y, vocabSize);
}

/** d2l's `X.T.reshape(-1)`: a (batchSize, numSteps) row-major batch as time-major rows t·B + b. */
export function timeMajor(X: Int32Array, batchSize: number, numSteps: number): Int32Array {
  const out = new Int32Array(batchSize * numSteps);
  for (let b = 0; b < batchSize; b++) for (let t = 0; t < numSteps; t++) out[t * batchSize + b] = X[b * numSteps + t];
  return out;
}

/** One-hot rows (n, depth) as a plain array, so no tensor op is spent building it. */
export function oneHotRows(tokens: Int32Array, depth: number): Float32Array {
  const out = new Float32Array(tokens.length * depth);
  for (let i = 0; i < tokens.length; i++) out[i * depth + tokens[i]] = 1;
  return out;
}

/** nn.CrossEntropyLoss (mean) of logits (n, V) against integer labels (n). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const vocabSize = logits.shape[1];
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.cast(tf.oneHot(labels, vocabSize), 'float32'), logp), 1))) as tf.Scalar;
}

/**
 * d2l's grad_clipping: the global L2 norm of all gradients; if it exceeds theta, every gradient
 * is scaled by theta / norm. Returns the clipped gradients and the norm before clipping.
 */
export function gradClipping(grads: tf.Tensor[], theta: number): { grads: tf.Tensor[]; norm: tf.Scalar } {
  const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
  // min(1, θ/‖g‖) is 1 unless ‖g‖ > θ, as the seed's `if norm > theta`
  const factor = tf.minimum(1, tf.div(theta, norm));
  return { grads: grads.map((g) => tf.mul(g, factor)), norm };
}

/** d2l's sgd with batch_size 1 (the loss is already a mean): param -= lr * grad. New tensors. */
export function sgd(params: tf.Tensor[], grads: tf.Tensor[], lr: number): tf.Tensor[] {
  return params.map((p, i) => tf.sub(p, tf.mul(grads[i], lr)));
}

/** Parameter names of a config, in the order of `Weights` (model/params.ts). */
export function paramNames(config: ModelConfig): string[] {
  return Object.keys(paramShapes(config));
}

/** Throws unless `weights` has exactly the names and shapes `config` needs. */
export function checkWeights(config: ModelConfig, weights: Weights): void {
  if (config.kind === 'scratch' && config.numLayers !== 1) {
    throw new Error(`the scratch kind has exactly 1 layer (got numLayers ${config.numLayers})`);
  }
  const shapes = paramShapes(config);
  for (const [name, shape] of Object.entries(shapes)) {
    const w = weights[name];
    if (!w) throw new Error(`weights: missing '${name}'`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`weights: '${name}' has shape [${w.shape}], expected [${shape}]`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== size) throw new Error(`weights: '${name}' has ${w.data.length} values, expected ${size}`);
  }
  for (const name of Object.keys(weights)) {
    if (!(name in shapes)) throw new Error(`weights: unexpected '${name}' for a ${config.kind} model`);
  }
}

/** New tensors holding copies of `weights`, in `paramNames` order. */
export function weightsToTensors(config: ModelConfig, weights: Weights): tf.Tensor[] {
  return paramNames(config).map((name) => tf.tensor(new Float32Array(weights[name].data), weights[name].shape, 'float32'));
}

/** Copies of tensors as named weights (synchronous: the contract's getWeights is). */
export function tensorsToWeights(names: string[], tensors: tf.Tensor[]): Weights {
  const out: Weights = {};
  names.forEach((name, i) => {
    out[name] = { shape: [...tensors[i].shape], data: new Float32Array(tensors[i].dataSync() as Float32Array) };
  });
  return out;
}

/** Reads tensors without blocking the event loop (await data(), outside any tidy). */
export async function readWeights(names: string[], tensors: tf.Tensor[]): Promise<Weights> {
  const datas = await Promise.all(tensors.map((t) => t.data()));
  const out: Weights = {};
  names.forEach((name, i) => {
    out[name] = { shape: [...tensors[i].shape], data: new Float32Array(datas[i] as Float32Array) };
  });
  return out;
}

/** The state a trainStep starts from: carried (detached) unless reset or the batch size changed. */
export function needsFreshState(state: tf.Tensor[] | null, batchSize: number, resetState: boolean): boolean {
  return resetState || state === null || state[0].shape[0] !== batchSize;
}

/**
 * The engine's Generator over a one-token step function: `step(token, state)` returns the logits and
 * the next state (run inside a tidy, so it may make intermediates freely); the generator owns the state.
 * A token outside [0, vocabSize) is refused before it reaches `step`, the state left as it was.
 */
export function stepGenerator<S extends tf.TensorContainer>(initial: S, vocabSize: number, step: (token: number, state: S) => [tf.Tensor, S]): Generator {
  let state: S | null = initial;
  return {
    feed: async (token: number) => {
      if (!state) throw new Error('generator is disposed');
      checkTokens([token], vocabSize);
      const prev = state;
      const [logits, next] = tf.tidy(() => step(token, prev));
      tf.dispose(prev);
      state = next;
      try {
        return new Float32Array((await logits.data()) as Float32Array);
      } finally {
        logits.dispose();
      }
    },
    dispose: () => {
      if (state) tf.dispose(state);
      state = null;
    },
  };
}
