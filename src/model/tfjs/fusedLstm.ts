// The fast path: one LSTM layer over a whole minibatch as a single op (tf.customGrad) whose backward
// through time is derived by hand, and the output layer + mean cross-entropy as a second such op.
//
// Why it is written this way (measured; docs/tfjs-engine.md): on the wasm backend a
// matMul runs on XNNPACK only when neither operand is transposed, so the backward transposes
// explicitly and then multiplies; autograd through per-step ops would not. The four gates are one
// (H, 4H) matrix, so a step is one recurrent matMul each way. Everything else in a step is one
// kernel on wasm (wasmKernels.ts: the cell forward reading layer 0's input rows from the token table,
// the cell backward), since tfjs's per-op cost, not arithmetic, dominated the elementwise part; the
// tfjs-op versions below are their reference and run on other backends. Weight gradients are summed
// over all steps in one matMul each (K = steps·batch).
// The forward keeps what the backward needs instead of save()-ing it (save() copies every tensor).
import * as tf from '@tensorflow/tfjs';
import { checkTokens, oneHotRows } from './common.js';
import {
  cellKernelsFor,
  lstmCellBackwardKernel,
  lstmCellForwardKernel,
  scatterAddSteps,
  splitColumns,
  splitRows,
  transpose2d,
  transposeSteps,
} from './wasmKernels.js';

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
 * candidate block's columns are scaled by 2 before σ and its activation mapped by 2s − 1 after
 * (the wasm Tanh kernel is also ~15× slower per element than its Sigmoid).
 */
export interface GateConstants {
  /** (4H): 1 for i, f, o; 2 for c */
  scale: tf.Tensor1D;
  /** scale² (4H): the chain-rule factor of the scaling */
  scale2: tf.Tensor1D;
  one: tf.Scalar;
  two: tf.Scalar;
}

export function gateConstants(numHiddens: number): GateConstants {
  const H = numHiddens;
  const scale = new Float32Array(4 * H).fill(1);
  scale.fill(2, 2 * H, 3 * H);
  const scale2 = scale.map((x) => x * x);
  return { scale: tf.tensor1d(scale), scale2: tf.tensor1d(scale2), one: tf.scalar(1), two: tf.scalar(2) };
}

export function disposeGateConstants(k: GateConstants): void {
  tf.dispose([k.scale, k.scale2, k.one, k.two]);
}

/** Parameters prepared for the forward recurrence: columns pre-scaled for the one-sigmoid trick. */
export interface ScaledLayer {
  /** Layer 0: (V, 4H) rows of (Wx + b)·scale, one per token. Layer l > 0: Wx·scale (H, 4H). */
  Wx: tf.Tensor2D;
  /** b·scale (4H); already folded into Wx for layer 0 (a one-hot row picks exactly one row). */
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

/** tanh(x) = 2σ(2x) − 1: four cheap wasm kernels beat its Tanh kernel (≈ 150 µs for 32×256). */
export function tanh(x: tf.Tensor2D, k: GateConstants): tf.Tensor2D {
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(x, k.two)), k.two), k.one) as tf.Tensor2D;
}

export interface CellStep {
  /** σ of the scaled pre-activations (B, 4H): [σ(z_i), σ(z_f), σ(2 z_c), σ(z_o)]. */
  S: tf.Tensor2D;
  C: tf.Tensor2D;
  /** tanh(C) */
  tanhC: tf.Tensor2D;
  H: tf.Tensor2D;
}

/**
 * A step's scaled input projection (bias included): a matrix (B, 4H), or for layer 0, whose inputs are
 * one-hot tokens, the rows of the table (V, 4H) picked by the step's tokens (B int32).
 */
export type StepInput = tf.Tensor2D | { table: tf.Tensor2D; rows: tf.Tensor1D };

/**
 * One time step, the seed's loop body on fused gates: I, F, O = σ(·), C̃ = tanh(·),
 * C = F⊙C + I⊙C̃, H = O⊙tanh(C). `xw` is the step's scaled input projection (bias included),
 * `Wh` the scaled recurrent matrix. On wasm everything after the matMul is one SIMD kernel.
 */
export function lstmCell(xw: StepInput, state: LayerState, Wh: tf.Tensor2D, k: GateConstants): CellStep {
  const [Hprev, Cprev] = state;
  const P = tf.matMul(Hprev, Wh) as tf.Tensor2D;
  let S: tf.Tensor2D, C: tf.Tensor2D, tanhC: tf.Tensor2D, H: tf.Tensor2D;
  if (cellKernelsFor(P)) {
    [S, C, tanhC, H] = 'table' in xw ? lstmCellForwardKernel(P, xw.table, xw.rows, Cprev) : lstmCellForwardKernel(P, xw, null, Cprev);
  } else {
    [S, C, tanhC, H] = lstmCellForward(P, 'table' in xw ? (tf.gather(xw.table, xw.rows) as tf.Tensor2D) : xw, Cprev, k);
  }
  return { S, C, tanhC, H };
}

/** The cell after its matMul, as tfjs ops (the reference of the wasm kernel): [S, C, tanh C, H]. */
export function lstmCellForward(P: tf.Tensor2D, xw: tf.Tensor2D, Cprev: tf.Tensor2D, k: GateConstants): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const S = tf.sigmoid(tf.add(xw, P)) as tf.Tensor2D;
  const [I, F, Sc, O] = splitColumns(S, 4);
  const C_tilda = tf.sub(tf.mul(Sc, k.two), k.one) as tf.Tensor2D; // tanh(z) = 2σ(2z) − 1
  const C = tf.add(tf.mul(F, Cprev), tf.mul(I, C_tilda)) as tf.Tensor2D;
  const tanhC = tanh(C, k);
  return [S, C, tanhC, tf.mul(O, tanhC) as tf.Tensor2D];
}

/**
 * Backward of one step. With dH the total gradient reaching H_t (the loss's, `dHout`, plus `dHnext`
 * through step t+1) and dCnext the one reaching C_t from step t+1:
 * dC = dCnext + dH⊙O⊙(1 − tanh²C); dI = dC⊙C̃, dF = dC⊙C_{t−1}, dC̃ = dC⊙I, dO = dH⊙tanh C;
 * then through the activations to the (unscaled) pre-activations: σ'(z) = σ(1 − σ) for i, f, o and
 * tanh'(z) = 4σ(2z)(1 − σ(2z)) for c, i.e. S(1 − S)·scale². dC_{t−1} = dC⊙F.
 */
export function lstmCellBackward(
  step: CellStep,
  Cprev: tf.Tensor2D,
  dHout: tf.Tensor2D,
  dHnext: tf.Tensor2D | null,
  dCnext: tf.Tensor2D | null,
  k: GateConstants,
): { dZ: tf.Tensor2D; dCprev: tf.Tensor2D } {
  const { S, tanhC } = step;
  if (cellKernelsFor(S)) {
    const [dZ, dCprev] = lstmCellBackwardKernel(S, Cprev, tanhC, dHout, dHnext, dCnext);
    return { dZ, dCprev };
  }
  const [I, F, Sc, O] = splitColumns(S, 4);
  const C_tilda = tf.sub(tf.mul(Sc, k.two), k.one);
  const dH = dHnext ? tf.add(dHout, dHnext) : dHout;
  const dCfromH = tf.mul(dH, tf.mul(O, tf.sub(k.one, tf.square(tanhC))));
  const dC = (dCnext ? tf.add(dCnext, dCfromH) : dCfromH) as tf.Tensor2D;
  // the four gate gradients side by side, as the gates are: [dC⊙C̃, dC⊙C_{t−1}, dC⊙I, dH⊙tanh C]
  const dA = tf.mul(tf.concat([dC, dC, dC, dH], 1), tf.concat([C_tilda, Cprev, I, tanhC], 1));
  const dZ = tf.mul(dA, tf.mul(tf.mul(S, tf.sub(k.one, S)), k.scale2)) as tf.Tensor2D;
  return { dZ, dCprev: tf.mul(dC, F) as tf.Tensor2D };
}

/**
 * What one sequence op hands out besides its value: the final (H, C), detached (the loss of this
 * minibatch reaches it only through the returned hidden states), and the tensors its forward keeps
 * for its backward. The backward frees those; `releaseTape` frees whatever is left (a forward whose
 * backward never ran). The caller owns `state`.
 */
export interface SequenceTape {
  state?: LayerState;
  kept: tf.Tensor[];
}

export function newTape(): SequenceTape {
  return { kept: [] };
}

export function releaseTape(tape: SequenceTape): void {
  tf.dispose(tape.kept);
  tape.kept = [];
}

/**
 * Every step's scaled input projection: token rows of (Wx + b)·scale (layer 0), or one matMul for
 * the layer below's H, cut into steps (wasm: see wasmKernels.ts).
 */
function stepInputs(input: LayerInput, scaled: ScaledLayer, numSteps: number, batchSize: number): StepInput[] {
  if ('X' in input) return splitRows(tf.add(tf.matMul(input.X, scaled.Wx), scaled.b) as tf.Tensor2D, numSteps);
  const { tokens } = input;
  checkTokens(tokens, scaled.Wx.shape[0]);
  return Array.from({ length: numSteps }, (_, t) => ({ table: scaled.Wx, rows: tf.tensor1d(tokens.subarray(t * batchSize, (t + 1) * batchSize), 'int32') }));
}

/** The forward recurrence from `state`: every step's cell, in time order. */
function forwardSteps(xw: StepInput[], state: LayerState, Wh: tf.Tensor2D, k: GateConstants): CellStep[] {
  let s = state;
  return xw.map((x) => {
    const step = lstmCell(x, s, Wh, k);
    s = [step.H, step.C];
    return step;
  });
}

/**
 * The forward of lstmSequence alone, for a forward-only loss (call it inside tf.tidy): plain ops,
 * no gradient function, nothing kept for a backward. Returns every step's H (steps·batch, H),
 * time-major, and the final (H, C) — the same values lstmSequence returns and puts on its tape.
 */
export function lstmSequenceForward(
  input: LayerInput,
  params: FusedLstmParams,
  state: LayerState,
  numSteps: number,
  k: GateConstants,
): { Hs: tf.Tensor2D; state: LayerState } {
  const scaled = scaleLayer(params, !('X' in input), k);
  const steps = forwardSteps(stepInputs(input, scaled, numSteps, state[0].shape[0]), state, scaled.Wh, k);
  const last = steps[numSteps - 1];
  return { Hs: tf.concat(steps.map((st) => st.H)) as tf.Tensor2D, state: [last.H, last.C] };
}

/**
 * One LSTM layer over numSteps steps of a batch as a single differentiable op with a hand-derived
 * backward through time. It starts from `state`, a constant here: the carried state is detached, as
 * d2l detaches it between minibatches, so no gradient flows into it. Returns the hidden states of
 * every step (steps·batch, H), time-major (row t·B + b).
 */
export function lstmSequence(
  input: LayerInput,
  params: FusedLstmParams,
  state: LayerState,
  numSteps: number,
  k: GateConstants,
  tape: SequenceTape,
): tf.Tensor2D {
  const T = numSteps;
  const [H0, C0] = state;
  const op = tf.customGrad((...args: unknown[]) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const X = 'X' in input ? (inputs[0] as tf.Tensor2D) : null;
    const [Wx, b, Wh] = (X ? inputs.slice(1) : inputs) as [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D];
    // tensors for the backward are kept (not cloned by save()): ~8 per step would otherwise be copied.
    // Only tensors made here are kept; inputs may belong to the caller or die with its tidy.
    const keep = <K extends tf.Tensor>(t: K): K => {
      tape.kept.push(tf.keep(t));
      return t;
    };

    const scaled = scaleLayer({ Wx, b, Wh }, X === null, k);
    const tokens = X ? null : (input as { tokens: Int32Array }).tokens;
    const Xin = X ? keep(tf.clone(X)) : null;
    const steps = forwardSteps(stepInputs(Xin ? { X: Xin } : input, scaled, T, H0.shape[0]), [H0, C0], scaled.Wh, k);
    const Cprev: tf.Tensor2D[] = [keep(tf.clone(C0))];
    steps.forEach((step, t) => {
      [step.S, step.tanhC, step.H].forEach(keep);
      if (t < T - 1) Cprev.push(keep(step.C));
    });
    // copies: the caller owns the state, the tape owns the steps
    const last = steps[T - 1];
    tape.state = [tf.keep(tf.clone(last.H)), tf.keep(tf.clone(last.C))];
    const Hs = tf.concat(steps.map((st) => st.H)) as tf.Tensor2D;
    const Hprev = keep(tf.concat([H0, ...steps.slice(0, -1).map((st) => st.H)]) as tf.Tensor2D);
    // transposed once here so every backward matMul takes untransposed operands (XNNPACK)
    const WhT = keep(transpose2d(Wh));
    const WxT = X ? keep(transpose2d(Wx)) : null;

    const gradFunc = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor[] => {
      const dHs = splitRows((Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D, T);
      let dHnext: tf.Tensor2D | null = null;
      let dCnext: tf.Tensor2D | null = null;
      const dZ: tf.Tensor2D[] = new Array(T);
      for (let t = T - 1; t >= 0; t--) {
        const g = lstmCellBackward(steps[t], Cprev[t], dHs[t], dHnext, dCnext, k);
        dZ[t] = g.dZ;
        // nothing flows into the detached initial state
        if (t > 0) {
          dCnext = g.dCprev;
          dHnext = tf.matMul(g.dZ, WhT) as tf.Tensor2D;
        }
      }
      // weight gradients summed over all steps in one op each: matMuls with K = steps·batch, computed
      // transposed so that the operand XNNPACK packs afresh is the small one
      const [dZallT, db] = transposeSteps(dZ);
      const dWh = transpose2d(tf.matMul(dZallT, Hprev) as tf.Tensor2D);
      let grads: tf.Tensor[];
      if (Xin) {
        const dX = tf.matMul(tf.concat(dZ), WxT!); // for the layer below
        grads = [dX, transpose2d(tf.matMul(dZallT, Xin) as tf.Tensor2D), db, dWh];
      } else {
        // the gradient of a row gather: each step's dZ rows added into their tokens' rows
        // (= one-hotᵀ·dZ, without the matMul)
        grads = [scatterAddSteps(dZ, tokens!, Wx.shape[0]), db, dWh];
      }
      releaseTape(tape);
      return grads;
    };
    return { value: Hs, gradFunc };
  });
  const args = 'X' in input ? [input.X, params.Wx, params.b, params.Wh] : [params.Wx, params.b, params.Wh];
  return op(...args) as tf.Tensor2D;
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
    const { loss, logp } = denseForward(Hs, Wq, bq, labels);
    save([Hs, Wq, tf.exp(logp)]);
    const gradFunc = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]): tf.Tensor[] => {
      const dLoss = Array.isArray(dy) ? dy[0] : dy;
      const [Hs, Wq, P] = saved as tf.Tensor2D[];
      // d mean-CE / d logits = (softmax − onehot) / n
      const onehot = tf.tensor2d(oneHotRows(labels, vocabSize), [n, vocabSize]);
      const dY = tf.mul(tf.sub(P, onehot), tf.div(dLoss, n)) as tf.Tensor2D;
      return [tf.matMul(dY, tf.transpose(Wq)), tf.matMul(transpose2d(Hs), dY), tf.sum(dY, 0)];
    };
    return { value: loss, gradFunc };
  });
  return op(Hs, Wq, bq) as tf.Scalar;
}

/** The forward of denseCrossEntropy alone (call it inside tf.tidy): the mean CE, no gradient function. */
export function denseLoss(Hs: tf.Tensor2D, Wq: tf.Tensor2D, bq: tf.Tensor1D, labels: Int32Array): tf.Scalar {
  return denseForward(Hs, Wq, bq, labels).loss;
}

/** Y = H W_hq + b_q, its log-softmax, and the mean CE against `labels`. */
function denseForward(Hs: tf.Tensor2D, Wq: tf.Tensor2D, bq: tf.Tensor1D, labels: Int32Array): { loss: tf.Scalar; logp: tf.Tensor2D } {
  const n = labels.length;
  const vocabSize = Wq.shape[1];
  const logp = tf.logSoftmax(tf.add(tf.matMul(Hs, Wq), bq) as tf.Tensor2D);
  const onehot = tf.tensor2d(oneHotRows(labels, vocabSize), [n, vocabSize]);
  return { loss: tf.div(tf.neg(tf.sum(tf.mul(onehot, logp))), n) as tf.Scalar, logp };
}
