// The fast path: one LSTM layer over a whole minibatch as a single op (tf.customGrad) whose backward
// through time is derived by hand, and the output layer + mean cross-entropy as a second such op.
//
// Why it is written this way (notes/engine-findings.md): on the wasm backend a matMul runs on XNNPACK
// only when neither operand is transposed, so the backward transposes explicitly and then multiplies;
// slicing one big tensor T times copies the whole tensor each time, so the loop works on small
// per-step tensors and picks blocks out with tf.gather; the four gates are one (H, 4H) matrix.
import * as tf from '@tensorflow/tfjs';
import { oneHotColumns, oneHotRows } from './common.js';

/** One layer in the fused layout: gate blocks i, f, c, o along the last axis (tfjs LSTM order). */
export interface FusedLstmParams {
  /** (inputs, 4H) */
  Wx: tf.Tensor2D;
  /** (H, 4H) */
  Wh: tf.Tensor2D;
  /** (4H) */
  b: tf.Tensor1D;
}

/** Layer 0 reads token ids (one-hot implied); layer l > 0 reads the hidden states of layer l−1. */
export type LayerInput = { tokens: Int32Array; vocabSize: number } | { X: tf.Tensor2D };

/** (H, C) of one layer. */
export type LayerState = [tf.Tensor2D, tf.Tensor2D];

/**
 * The gates are computed with one sigmoid over all 4H pre-activations: tanh(z) = 2σ(2z) − 1, so the
 * candidate block's columns are scaled by 2 before σ and its activation mapped by 2s − 1 after.
 */
export interface GateConstants {
  /** (4H): 1 for i, f, o; 2 for c */
  scale: tf.Tensor1D;
  /** (4H): 0 for i, f, o; −1 for c */
  offset: tf.Tensor1D;
  /** (4H): 0 for i, f, o; 1 for c, so that (1 − A)(A + m) is σ' = A(1 − A) or tanh' = 1 − A² */
  tanhMask: tf.Tensor1D;
}

export function gateConstants(numHiddens: number): GateConstants {
  const H = numHiddens;
  const scale = new Float32Array(4 * H).fill(1);
  const offset = new Float32Array(4 * H);
  const tanhMask = new Float32Array(4 * H);
  scale.fill(2, 2 * H, 3 * H);
  offset.fill(-1, 2 * H, 3 * H);
  tanhMask.fill(1, 2 * H, 3 * H);
  return { scale: tf.tensor1d(scale), offset: tf.tensor1d(offset), tanhMask: tf.tensor1d(tanhMask) };
}

/** Parameters prepared for the forward recurrence: columns pre-scaled for the one-sigmoid trick. */
export interface ScaledLayer {
  /** Layer 0: (V, 4H) rows of (Wx + b)·scale, gathered by token. Layer l > 0: Wx·scale (H, 4H). */
  Wx: tf.Tensor2D;
  /** b·scale (4H); already folded into Wx for layer 0. */
  b: tf.Tensor1D;
  /** Wh·scale (H, 4H) */
  Wh: tf.Tensor2D;
}

export function scaleLayer(params: FusedLstmParams, tokenInput: boolean, k: GateConstants): ScaledLayer {
  const b = tf.mul(params.b, k.scale) as tf.Tensor1D;
  const Wh = tf.mul(params.Wh, k.scale) as tf.Tensor2D;
  const Wx = (tokenInput ? tf.mul(tf.add(params.Wx, params.b), k.scale) : tf.mul(params.Wx, k.scale)) as tf.Tensor2D;
  return { Wx, b, Wh };
}

export interface CellStep {
  /** Gate activations [I, F, C̃, O] (B, 4H). */
  A: tf.Tensor2D;
  C: tf.Tensor2D;
  /** tanh(C) */
  tanhC: tf.Tensor2D;
  H: tf.Tensor2D;
}

/**
 * One time step, the seed's loop body on fused gates: I, F, O = σ(·), C̃ = tanh(·),
 * C = F⊙C + I⊙C̃, H = O⊙tanh(C). `xw` is the step's scaled input projection (bias included).
 */
export function lstmCell(xw: tf.Tensor2D, state: LayerState, Wh: tf.Tensor2D, k: GateConstants): CellStep {
  const [Hprev, Cprev] = state;
  const S = tf.sigmoid(tf.add(xw, tf.matMul(Hprev, Wh)));
  const A = tf.add(tf.mul(S, k.scale), k.offset) as tf.Tensor2D;
  const [I, F, C_tilda, O] = tf.split(A, 4, 1) as tf.Tensor2D[];
  const C = tf.add(tf.mul(F, Cprev), tf.mul(I, C_tilda)) as tf.Tensor2D;
  const tanhC = tf.tanh(C);
  const H = tf.mul(O, tanhC) as tf.Tensor2D;
  return { A, C, tanhC, H };
}

/** Where the final (H, C) of a sequence op is handed out: kept tensors the caller must dispose. */
export interface FinalState {
  state?: LayerState;
}

/**
 * One LSTM layer over numSteps steps of a batch, from `state`, as a single differentiable op.
 * Returns the hidden states of every step (steps·batch, H), time-major. The final (H, C) is written
 * to `final` (detached: the loss of this minibatch reaches it only through the returned states).
 */
export function lstmSequence(
  input: LayerInput,
  params: FusedLstmParams,
  state: LayerState,
  numSteps: number,
  k: GateConstants,
  final: FinalState = {},
): tf.Tensor2D {
  const T = numSteps;
  const B = state[0].shape[0];
  const H = state[0].shape[1];
  const op = tf.customGrad((...args: unknown[]) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as (tensors: tf.Tensor[]) => void;
    const X = 'X' in input ? (inputs[0] as tf.Tensor2D) : null;
    const [Wx, b, Wh, H0, C0] = (X ? inputs.slice(1) : inputs) as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];

    const scaled = scaleLayer({ Wx, b, Wh }, X === null, k);
    // every step's scaled input projection: a row gather for tokens, one matMul for dense inputs
    const xwAll = X ? tf.reshape(tf.add(tf.matMul(X, scaled.Wx), scaled.b), [T, B * 4 * H]) : null;
    const xwStep = (t: number): tf.Tensor2D =>
      xwAll
        ? tf.reshape(tf.gather(xwAll, [t]), [B, 4 * H])
        : tf.gather(scaled.Wx, tf.tensor1d((input as { tokens: Int32Array }).tokens.subarray(t * B, (t + 1) * B), 'int32'));

    let s: LayerState = [H0, C0];
    const steps: CellStep[] = [];
    for (let t = 0; t < T; t++) {
      const step = lstmCell(xwStep(t), s, scaled.Wh, k);
      steps.push(step);
      s = [step.H, step.C];
    }
    final.state = [tf.keep(s[0]), tf.keep(s[1])];
    const Hs = tf.concat(steps.map((st) => st.H)) as tf.Tensor2D;
    const Hprev = tf.concat([H0, ...steps.slice(0, -1).map((st) => st.H)]) as tf.Tensor2D;
    // the backward may only use saved tensors: the inputs may be intermediates of a tidy that has ended.
    // Per step: A_t, C_{t-1}, tanh(C_t).
    const Cprev = [C0, ...steps.slice(0, -1).map((st) => st.C)];
    save([Wx, Wh, Hprev, ...steps.map((st) => st.A), ...Cprev, ...steps.map((st) => st.tanhC), ...(X ? [X] : [])]);

    const gradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
      const dHs = Array.isArray(dy) ? dy[0] : dy;
      const [Wx, Wh, Hprev] = saved as tf.Tensor2D[];
      const A = saved.slice(3, 3 + T) as tf.Tensor2D[];
      const Cprev = saved.slice(3 + T, 3 + 2 * T) as tf.Tensor2D[];
      const tanhC = saved.slice(3 + 2 * T, 3 + 3 * T) as tf.Tensor2D[];
      const X = saved[3 + 3 * T] as tf.Tensor2D | undefined;
      const dHsByStep = tf.reshape(dHs, [T, B * H]);
      const WhT = tf.transpose(Wh);
      let dHnext: tf.Tensor2D = tf.zeros([B, H]);
      let dCnext: tf.Tensor2D = tf.zeros([B, H]);
      const dZ: tf.Tensor2D[] = new Array(T);
      for (let t = T - 1; t >= 0; t--) {
        const g = lstmCellBackward(A[t], Cprev[t], tanhC[t], tf.add(tf.reshape(tf.gather(dHsByStep, [t]), [B, H]), dHnext) as tf.Tensor2D, dCnext, k);
        dZ[t] = g.dZ;
        dCnext = g.dCprev;
        dHnext = tf.matMul(g.dZ, WhT);
      }
      // weight gradients summed over all steps at once: one matMul with K = steps·batch
      const dZall = tf.concat(dZ) as tf.Tensor2D;
      const dWh = tf.matMul(tf.transpose(Hprev), dZall);
      const db = tf.sum(dZall, 0);
      if (X) {
        const dX = tf.matMul(dZall, tf.transpose(Wx));
        const dWx = tf.matMul(tf.transpose(X), dZall);
        return [dX, dWx, db, dWh, dHnext, dCnext];
      }
      const { tokens, vocabSize } = input as { tokens: Int32Array; vocabSize: number };
      const dWx = tf.matMul(tf.tensor2d(oneHotColumns(tokens, vocabSize), [vocabSize, T * B]), dZall);
      return [dWx, db, dWh, dHnext, dCnext];
    };
    return { value: Hs, gradFunc };
  });
  const args = 'X' in input ? [input.X, params.Wx, params.b, params.Wh, state[0], state[1]] : [params.Wx, params.b, params.Wh, state[0], state[1]];
  return op(...args) as tf.Tensor2D;
}

/**
 * Backward of one step. With dH the total gradient reaching H_t and dC the one reaching C_t from t+1:
 * dO = dH⊙tanh(C), dC += dH⊙O⊙(1 − tanh²C), dI = dC⊙C̃, dF = dC⊙C_{t−1}, dC̃ = dC⊙I, dC_{t−1} = dC⊙F,
 * and the pre-activation gradient dZ = dA⊙σ' (i, f, o) or dA⊙tanh' (c).
 */
export function lstmCellBackward(
  A: tf.Tensor2D,
  Cprev: tf.Tensor2D,
  tanhC: tf.Tensor2D,
  dH: tf.Tensor2D,
  dCnext: tf.Tensor2D,
  k: GateConstants,
): { dZ: tf.Tensor2D; dCprev: tf.Tensor2D } {
  const [I, F, C_tilda, O] = tf.split(A, 4, 1) as tf.Tensor2D[];
  const dO = tf.mul(dH, tanhC);
  const dC = tf.add(dCnext, tf.mul(tf.mul(dH, O), tf.sub(1, tf.square(tanhC))));
  const dA = tf.concat([tf.mul(dC, C_tilda), tf.mul(dC, Cprev), tf.mul(dC, I), dO], 1);
  const dZ = tf.mul(dA, tf.mul(tf.sub(1, A), tf.add(A, k.tanhMask))) as tf.Tensor2D;
  return { dZ, dCprev: tf.mul(dC, F) as tf.Tensor2D };
}

/**
 * The output layer and the loss as one op: Y = H W_hq + b_q on every step's hidden state (time-major
 * rows), then nn.CrossEntropyLoss (mean) against `labels` (time-major token ids).
 */
export function denseCrossEntropy(Hs: tf.Tensor2D, Wq: tf.Tensor2D, bq: tf.Tensor1D, labels: Int32Array): tf.Scalar {
  const n = labels.length;
  const vocabSize = Wq.shape[1];
  const op = tf.customGrad((...args: unknown[]) => {
    const [Hs, Wq, bq] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
    const save = args[3] as (tensors: tf.Tensor[]) => void;
    const Y = tf.add(tf.matMul(Hs, Wq), bq);
    const logp = tf.logSoftmax(Y);
    const onehot = tf.tensor2d(oneHotRows(labels, vocabSize), [n, vocabSize]);
    const loss = tf.div(tf.neg(tf.sum(tf.mul(onehot, logp))), n) as tf.Scalar;
    save([Hs, Wq, tf.exp(logp)]);
    const gradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
      const dLoss = Array.isArray(dy) ? dy[0] : dy;
      const [Hs, Wq, P] = saved as tf.Tensor2D[];
      // d mean-CE / d logits = (softmax − onehot) / n
      const onehot = tf.tensor2d(oneHotRows(labels, vocabSize), [n, vocabSize]);
      const dY = tf.mul(tf.sub(P, onehot), tf.div(dLoss, n)) as tf.Tensor2D;
      return [tf.matMul(dY, tf.transpose(Wq)), tf.matMul(tf.transpose(Hs), dY), tf.sum(dY, 0)];
    };
    return { value: loss, gradFunc };
  });
  return op(Hs, Wq, bq) as tf.Scalar;
}
