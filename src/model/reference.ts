// The numeric reference of the whole project: d2l's LSTM in float64 with plain loops, written
// independently of every engine — forward (the seed's `lstm`), mean cross-entropy, and the
// gradient of every parameter by backpropagation through time, derived by hand. The engines'
// tests check the fast code against it: the native CPU engine (test/model/native/), the tfjs fast path
// (test/model/tfjs/), and through the CPU engine the CUDA engine (its host harness and GPU check).
// Names and gate order are d2l's: I, F, O, C~ (gates i, f, o, c), C, H; see src/model/README.md
// for where each implementation writes the same equations.
import type { Batch } from '../text/data.js';
import type { ModelConfig, Weights } from './engine.js';

/** d2l's gate order: input gate, forget gate, output gate, candidate memory cell. */
export const GATES = ['i', 'f', 'o', 'c'] as const;
export type Gate = (typeof GATES)[number];
type PerGate = Record<Gate, Float64Array>;

/** Column block of each gate in the concise kind's fused (·, 4H) kernels (the tfjs/Keras order i, f, c, o). */
const FUSED_BLOCK: Record<Gate, number> = { i: 0, f: 1, c: 2, o: 3 };

export interface ReferenceLayer {
  inputs: number;
  Wx: PerGate; // (inputs, H) per gate
  Wh: PerGate; // (H, H)
  b: PerGate; // (H)
}

export interface ReferenceModel {
  config: ModelConfig;
  layers: ReferenceLayer[];
  Wq: Float64Array; // W_hq (H, V)
  bq: Float64Array; // b_q (V)
}

/** (H, C) of every layer, each (B, H). */
export interface ReferenceState {
  h: Float64Array[];
  c: Float64Array[];
}

export interface ReferenceResult {
  loss: number;
  /** Gradients by interface name (model/params.ts), in the interface layout (float64). */
  grads: Record<string, Float64Array>;
  /** The final state (the next minibatch's initial state). */
  state: ReferenceState;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Per-gate float64 matrices from the interface tensors of either kind. */
export function referenceModel(config: ModelConfig, w: Weights): ReferenceModel {
  const { vocabSize: V, numHiddens: H } = config;
  const f64 = (a: Float32Array) => Float64Array.from(a);
  if (config.kind === 'scratch') {
    const pick = (prefix: string) => Object.fromEntries(GATES.map((g) => [g, f64(w[`${prefix}${g}`].data)])) as PerGate;
    return { config, layers: [{ inputs: V, Wx: pick('W_x'), Wh: pick('W_h'), b: pick('b_') }], Wq: f64(w.W_hq.data), bq: f64(w.b_q.data) };
  }
  // the LSTM layer's kernel (inputs, 4H): column blocks i, f, c, o
  const block = (m: Float32Array, rows: number, g: Gate) => {
    const out = new Float64Array(rows * H);
    const k = FUSED_BLOCK[g];
    for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * H + j] = m[r * 4 * H + k * H + j];
    return out;
  };
  const layers: ReferenceLayer[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const inputs = l === 0 ? V : H;
    const split = (m: Float32Array, rows: number) => Object.fromEntries(GATES.map((g) => [g, block(m, rows, g)])) as PerGate;
    layers.push({
      inputs,
      Wx: split(w[`lstm_l${l}/kernel`].data, inputs),
      Wh: split(w[`lstm_l${l}/recurrent_kernel`].data, H),
      b: split(w[`lstm_l${l}/bias`].data, 1),
    });
  }
  return { config, layers, Wq: f64(w['dense/kernel'].data), bq: f64(w['dense/bias'].data) };
}

/** d2l's init_lstm_state: zeros. */
export function zeroState(config: ModelConfig, batchSize: number): ReferenceState {
  const n = batchSize * config.numHiddens;
  return {
    h: Array.from({ length: config.numLayers }, () => new Float64Array(n)),
    c: Array.from({ length: config.numLayers }, () => new Float64Array(n)),
  };
}

/** One step of one layer for one sequence: the activations the backward pass needs. */
interface Cell {
  I: Float64Array;
  F: Float64Array;
  O: Float64Array;
  C_tilda: Float64Array;
  C: Float64Array;
  tanhC: Float64Array;
  H: Float64Array;
}

/**
 * The seed's `lstm` step for B rows of one layer:
 *   I = σ(X W_xi + H W_hi + b_i), F = σ(X W_xf + H W_hf + b_f), O = σ(X W_xo + H W_ho + b_o),
 *   C~ = tanh(X W_xc + H W_hc + b_c), C = F ⊙ C + I ⊙ C~, H = O ⊙ tanh(C).
 * `x(b, k)` is the input row (one-hot inputs: `token(b)` instead).
 */
function lstmStep(
  layer: ReferenceLayer,
  H: number,
  B: number,
  input: { token?: (b: number) => number; x?: Float64Array },
  Hprev: Float64Array,
  Cprev: Float64Array,
): Cell {
  const n = B * H;
  const s: Cell = {
    I: new Float64Array(n),
    F: new Float64Array(n),
    O: new Float64Array(n),
    C_tilda: new Float64Array(n),
    C: new Float64Array(n),
    tanhC: new Float64Array(n),
    H: new Float64Array(n),
  };
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const pre = {} as Record<Gate, number>;
      for (const g of GATES) {
        let a = layer.b[g][j];
        if (input.token) a += layer.Wx[g][input.token(b) * H + j];
        else for (let k = 0; k < layer.inputs; k++) a += input.x![b * layer.inputs + k] * layer.Wx[g][k * H + j];
        for (let k = 0; k < H; k++) a += Hprev[b * H + k] * layer.Wh[g][k * H + j];
        pre[g] = a;
      }
      const q = b * H + j;
      s.I[q] = sigmoid(pre.i);
      s.F[q] = sigmoid(pre.f);
      s.O[q] = sigmoid(pre.o);
      s.C_tilda[q] = Math.tanh(pre.c);
      s.C[q] = s.F[q] * Cprev[q] + s.I[q] * s.C_tilda[q];
      s.tanhC[q] = Math.tanh(s.C[q]);
      s.H[q] = s.O[q] * s.tanhC[q];
    }
  }
  return s;
}

/** Y = H W_hq + b_q for B rows. */
function output(m: ReferenceModel, B: number, Hrows: Float64Array): Float64Array {
  const { vocabSize: V, numHiddens: H } = m.config;
  const z = new Float64Array(B * V);
  for (let b = 0; b < B; b++) {
    for (let v = 0; v < V; v++) {
      let a = m.bq[v];
      for (let k = 0; k < H; k++) a += Hrows[b * H + k] * m.Wq[k * V + v];
      z[b * V + v] = a;
    }
  }
  return z;
}

/**
 * One minibatch of train_epoch_ch8 in float64: forward from `state`, mean cross-entropy over
 * the B·T predictions, and the raw gradient of every parameter by backpropagation through time
 * (the entering state is a constant: d2l detaches it).
 */
export function lossAndGradsReference(m: ReferenceModel, batch: Batch, state: ReferenceState): ReferenceResult {
  const { vocabSize: V, numHiddens: H, numLayers: L } = m.config;
  const { batchSize: B, numSteps: T, X, Y } = batch;
  const N = B * T;
  const cells: Cell[][] = Array.from({ length: L }, () => []);
  const H0 = state.h.map((a) => Float64Array.from(a));
  const C0 = state.c.map((a) => Float64Array.from(a));
  const logits: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const input = l === 0 ? { token: (b: number) => X[b * T + t] } : { x: cells[l - 1][t].H };
      const prev = t > 0 ? cells[l][t - 1] : undefined;
      cells[l].push(lstmStep(m.layers[l], H, B, input, prev ? prev.H : H0[l], prev ? prev.C : C0[l]));
    }
    logits.push(output(m, B, cells[L - 1][t].H));
  }

  // mean cross-entropy and ∂L/∂Y = (softmax − onehot(y)) / N
  let loss = 0;
  const dY: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const d = new Float64Array(B * V);
    for (let b = 0; b < B; b++) {
      const z = logits[t].subarray(b * V, (b + 1) * V);
      const max = Math.max(...z);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(z[v] - max);
      const y = Y[b * T + t];
      loss += Math.log(sum) + max - z[y];
      for (let v = 0; v < V; v++) d[b * V + v] = Math.exp(z[v] - max) / sum / N;
      d[b * V + y] -= 1 / N;
    }
    dY.push(d);
  }
  loss /= N;

  const perGate = (n: number) => Object.fromEntries(GATES.map((g) => [g, new Float64Array(n)])) as PerGate;
  const dWx = m.layers.map((ly) => perGate(ly.inputs * H));
  const dWh = m.layers.map(() => perGate(H * H));
  const db = m.layers.map(() => perGate(H));
  const dWq = new Float64Array(H * V);
  const dbq = new Float64Array(V);
  // dHabove[l][t] = ∂L/∂H of layer l at step t from above (the output layer, or layer l + 1)
  const dHabove: Float64Array[][] = Array.from({ length: L }, () => Array.from({ length: T }, () => new Float64Array(B * H)));
  for (let t = 0; t < T; t++) {
    const h = cells[L - 1][t].H;
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < V; v++) {
        const d = dY[t][b * V + v];
        dbq[v] += d;
        for (let k = 0; k < H; k++) {
          dWq[k * V + v] += h[b * H + k] * d;
          dHabove[L - 1][t][b * H + k] += d * m.Wq[k * V + v];
        }
      }
    }
  }
  for (let l = L - 1; l >= 0; l--) {
    const layer = m.layers[l];
    const dHnext = new Float64Array(B * H); // ∂L/∂H_t through step t + 1
    const dCnext = new Float64Array(B * H); // ∂L/∂C_t through step t + 1
    for (let t = T - 1; t >= 0; t--) {
      const s = cells[l][t];
      const Cprev = t > 0 ? cells[l][t - 1].C : C0[l];
      const Hprev = t > 0 ? cells[l][t - 1].H : H0[l];
      const dPre = perGate(B * H); // ∂L/∂(pre-activation) of each gate
      for (let q = 0; q < B * H; q++) {
        const dH = dHabove[l][t][q] + dHnext[q];
        const dC = dH * s.O[q] * (1 - s.tanhC[q] * s.tanhC[q]) + dCnext[q]; // H = O ⊙ tanh(C)
        dPre.o[q] = dH * s.tanhC[q] * s.O[q] * (1 - s.O[q]);
        dPre.i[q] = dC * s.C_tilda[q] * s.I[q] * (1 - s.I[q]);
        dPre.c[q] = dC * s.I[q] * (1 - s.C_tilda[q] * s.C_tilda[q]);
        dPre.f[q] = dC * Cprev[q] * s.F[q] * (1 - s.F[q]);
        dCnext[q] = dC * s.F[q]; // C = F ⊙ C_prev + I ⊙ C~
      }
      dHnext.fill(0);
      for (const g of GATES) {
        const dp = dPre[g];
        for (let b = 0; b < B; b++) {
          for (let j = 0; j < H; j++) {
            const d = dp[b * H + j];
            db[l][g][j] += d;
            for (let k = 0; k < H; k++) {
              dWh[l][g][k * H + j] += Hprev[b * H + k] * d;
              dHnext[b * H + k] += d * layer.Wh[g][k * H + j];
            }
            if (l === 0) {
              dWx[l][g][X[b * T + t] * H + j] += d;
            } else {
              const x = cells[l - 1][t].H;
              for (let k = 0; k < H; k++) {
                dWx[l][g][k * H + j] += x[b * H + k] * d;
                dHabove[l - 1][t][b * H + k] += d * layer.Wx[g][k * H + j];
              }
            }
          }
        }
      }
    }
  }

  // back to the interface names and layouts
  const grads: Record<string, Float64Array> = {};
  if (m.config.kind === 'scratch') {
    for (const g of GATES) {
      grads[`W_x${g}`] = dWx[0][g];
      grads[`W_h${g}`] = dWh[0][g];
      grads[`b_${g}`] = db[0][g];
    }
    grads.W_hq = dWq;
    grads.b_q = dbq;
  } else {
    const fuse = (parts: PerGate, rows: number) => {
      const out = new Float64Array(rows * 4 * H);
      for (const g of GATES) {
        const k = FUSED_BLOCK[g];
        for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * 4 * H + k * H + j] = parts[g][r * H + j];
      }
      return out;
    };
    for (let l = 0; l < L; l++) {
      grads[`lstm_l${l}/kernel`] = fuse(dWx[l], m.layers[l].inputs);
      grads[`lstm_l${l}/recurrent_kernel`] = fuse(dWh[l], H);
      grads[`lstm_l${l}/bias`] = fuse(db[l], 1);
    }
    grads['dense/kernel'] = dWq;
    grads['dense/bias'] = dbq;
  }
  const last = (l: number) => cells[l][T - 1];
  return { loss, grads, state: { h: m.layers.map((_, l) => last(l).H), c: m.layers.map((_, l) => last(l).C) } };
}

/** Batch-1 logits after each of `tokens`, from zero state (predict_ch8's warm-up and generation). */
export function logitsReference(m: ReferenceModel, tokens: number[]): Float64Array[] {
  const { numHiddens: H, numLayers: L } = m.config;
  const out: Float64Array[] = [];
  let state = zeroState(m.config, 1);
  for (const tok of tokens) {
    const h: Float64Array[] = [];
    const c: Float64Array[] = [];
    for (let l = 0; l < L; l++) {
      const s = lstmStep(m.layers[l], H, 1, l === 0 ? { token: () => tok } : { x: h[l - 1] }, state.h[l], state.c[l]);
      h.push(s.H);
      c.push(s.C);
    }
    state = { h, c };
    out.push(output(m, 1, h[L - 1]));
  }
  return out;
}
