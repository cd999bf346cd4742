// Shared by the native engine's tests: the addon (or why it is missing), random models and
// minibatches, a float64 reference LSTM written independently of the engines (plain loops over
// the interface tensors of model/params.ts, hand-derived BPTT), and tolerant comparisons.
import assert from 'node:assert/strict';
import type { EngineFactory, ModelConfig, Weights } from '../../src/model/engine.js';
import { loadNativeEngine } from '../../src/model/native/index.js';
import { initParams, paramShapes } from '../../src/model/params.js';
import type { Batch } from '../../src/text/data.js';
import { Rng } from '../../src/text/rng.js';

const loaded = loadNativeEngine();
/** The native engine, or undefined when the addon isn't built. */
export const native: EngineFactory | undefined = 'factory' in loaded ? loaded.factory : undefined;
/** node:test's `skip` option: false when the addon is available, else the reason. */
export const skipNative: string | false = 'error' in loaded ? `native addon unavailable: ${loaded.error}` : false;

/** A native engine with an explicit thread count (or the reason it is unavailable). */
export function nativeWithThreads(threads: number): EngineFactory {
  const r = loadNativeEngine({ threads });
  if ('error' in r) throw new Error(r.error);
  return r.factory;
}

/** Weights of the kind's own initialisation, then scaled so that gates and gradients are not tiny. */
export function randomWeights(config: ModelConfig, seed: number, scale = 1): Weights {
  const w = initParams(config, new Rng(seed));
  const rng = new Rng(seed + 1000);
  for (const t of Object.values(w)) {
    const biasLike = t.shape.length === 1;
    for (let i = 0; i < t.data.length; i++) {
      // zero-initialised scratch biases get values too, so the bias paths are exercised
      t.data[i] = biasLike && t.data[i] === 0 ? rng.uniform(-0.5, 0.5) * scale : t.data[i] * scale;
    }
  }
  return w;
}

export function randomBatch(vocabSize: number, batchSize: number, numSteps: number, rng: Rng): Batch {
  const X = new Int32Array(batchSize * numSteps);
  const Y = new Int32Array(batchSize * numSteps);
  for (let i = 0; i < X.length; i++) {
    X[i] = rng.randint(0, vocabSize - 1);
    Y[i] = rng.randint(0, vocabSize - 1);
  }
  return { X, Y, batchSize, numSteps };
}

/** Sequential minibatches of one random token stream (row b of minibatch i+1 continues row b of i). */
export function sequentialBatches(vocabSize: number, batchSize: number, numSteps: number, count: number, seed: number): Batch[] {
  const rng = new Rng(seed);
  const rowLen = numSteps * count + 1;
  const rows = Array.from({ length: batchSize }, () => Array.from({ length: rowLen }, () => rng.randint(0, vocabSize - 1)));
  const out: Batch[] = [];
  for (let i = 0; i < count; i++) {
    const X = new Int32Array(batchSize * numSteps);
    const Y = new Int32Array(batchSize * numSteps);
    for (let b = 0; b < batchSize; b++) {
      for (let t = 0; t < numSteps; t++) {
        X[b * numSteps + t] = rows[b][i * numSteps + t];
        Y[b * numSteps + t] = rows[b][i * numSteps + t + 1];
      }
    }
    out.push({ X, Y, batchSize, numSteps });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// float64 reference

const GATES = ['i', 'f', 'c', 'o'] as const; // input, forget, candidate cell, output
type Gate = (typeof GATES)[number];

interface RefLayer {
  inputs: number;
  Wx: Record<Gate, Float64Array>; // (inputs, H)
  Wh: Record<Gate, Float64Array>; // (H, H)
  b: Record<Gate, Float64Array>; // (H)
}

export interface RefModel {
  config: ModelConfig;
  layers: RefLayer[];
  Wq: Float64Array; // (H, V)
  bq: Float64Array; // (V)
}

export interface RefState {
  h: Float64Array[]; // per layer (B, H)
  c: Float64Array[];
}

/** Per-gate float64 matrices from the interface tensors of either kind. */
export function refModel(config: ModelConfig, w: Weights): RefModel {
  const { vocabSize: V, numHiddens: H } = config;
  const f64 = (a: Float32Array) => Float64Array.from(a);
  const layers: RefLayer[] = [];
  if (config.kind === 'scratch') {
    const pick = (prefix: string) => Object.fromEntries(GATES.map((g) => [g, f64(w[`${prefix}${g}`].data)])) as Record<Gate, Float64Array>;
    layers.push({ inputs: V, Wx: pick('W_x'), Wh: pick('W_h'), b: pick('b_') });
    return { config, layers, Wq: f64(w.W_hq.data), bq: f64(w.b_q.data) };
  }
  // tfjs LSTM layer: kernel (inputs, 4H) with column blocks i, f, c, o
  const block = (m: Float32Array, rows: number, k: number) => {
    const out = new Float64Array(rows * H);
    for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * H + j] = m[r * 4 * H + k * H + j];
    return out;
  };
  for (let l = 0; l < config.numLayers; l++) {
    const inputs = l === 0 ? V : H;
    const K = w[`lstm_l${l}/kernel`].data;
    const R = w[`lstm_l${l}/recurrent_kernel`].data;
    const bias = w[`lstm_l${l}/bias`].data;
    const Wx = Object.fromEntries(GATES.map((g, k) => [g, block(K, inputs, k)])) as Record<Gate, Float64Array>;
    const Wh = Object.fromEntries(GATES.map((g, k) => [g, block(R, H, k)])) as Record<Gate, Float64Array>;
    const b = Object.fromEntries(GATES.map((g, k) => [g, block(bias, 1, k)])) as Record<Gate, Float64Array>;
    layers.push({ inputs, Wx, Wh, b });
  }
  return { config, layers, Wq: f64(w['dense/kernel'].data), bq: f64(w['dense/bias'].data) };
}

export function zeroState(config: ModelConfig, batchSize: number): RefState {
  const n = batchSize * config.numHiddens;
  return {
    h: Array.from({ length: config.numLayers }, () => new Float64Array(n)),
    c: Array.from({ length: config.numLayers }, () => new Float64Array(n)),
  };
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface RefResult {
  loss: number;
  /** Gradients by interface name, in the interface layout (float64). */
  grads: Record<string, Float64Array>;
  state: RefState;
}

/**
 * One minibatch in float64: forward from `state`, mean cross-entropy over B·T, and the gradient
 * of every parameter by backpropagation through time (the entering state is a constant).
 */
export function refLossAndGrads(m: RefModel, batch: Batch, state: RefState): RefResult {
  const { vocabSize: V, numHiddens: H, numLayers: L } = m.config;
  const { batchSize: B, numSteps: T, X, Y } = batch;
  const N = B * T;
  // cache per layer and step: gates (activated), c, tanh(c), h; each (B, H)
  type Step = { i: Float64Array; f: Float64Array; g: Float64Array; o: Float64Array; c: Float64Array; tc: Float64Array; h: Float64Array };
  const cache: Step[][] = Array.from({ length: L }, () => []);
  const hPrev0 = state.h.map((a) => Float64Array.from(a));
  const cPrev0 = state.c.map((a) => Float64Array.from(a));
  const hCur: Float64Array[] = state.h.map((a) => Float64Array.from(a));
  const cCur: Float64Array[] = state.c.map((a) => Float64Array.from(a));
  const logits: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const layer = m.layers[l];
      const s: Step = { i: new Float64Array(B * H), f: new Float64Array(B * H), g: new Float64Array(B * H), o: new Float64Array(B * H), c: new Float64Array(B * H), tc: new Float64Array(B * H), h: new Float64Array(B * H) };
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const pre: Record<Gate, number> = { i: 0, f: 0, c: 0, o: 0 };
          for (const gate of GATES) {
            let a = layer.b[gate][j];
            if (l === 0) a += layer.Wx[gate][X[b * T + t] * H + j];
            else for (let k = 0; k < H; k++) a += cache[l - 1][t].h[b * H + k] * layer.Wx[gate][k * H + j];
            for (let k = 0; k < H; k++) a += hCur[l][b * H + k] * layer.Wh[gate][k * H + j];
            pre[gate] = a;
          }
          const q = b * H + j;
          s.i[q] = sigmoid(pre.i);
          s.f[q] = sigmoid(pre.f);
          s.g[q] = Math.tanh(pre.c);
          s.o[q] = sigmoid(pre.o);
          s.c[q] = s.f[q] * cCur[l][q] + s.i[q] * s.g[q];
          s.tc[q] = Math.tanh(s.c[q]);
          s.h[q] = s.o[q] * s.tc[q];
        }
      }
      cache[l].push(s);
      hCur[l] = s.h;
      cCur[l] = s.c;
    }
    const z = new Float64Array(B * V);
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < V; v++) {
        let a = m.bq[v];
        for (let k = 0; k < H; k++) a += cache[L - 1][t].h[b * H + k] * m.Wq[k * V + v];
        z[b * V + v] = a;
      }
    }
    logits.push(z);
  }
  // loss and dlogits
  let loss = 0;
  const dZ: Float64Array[] = [];
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
    dZ.push(d);
  }
  loss /= N;
  // gradients per gate
  const gWx = m.layers.map((ly) => Object.fromEntries(GATES.map((g) => [g, new Float64Array(ly.inputs * H)])) as Record<Gate, Float64Array>);
  const gWh = m.layers.map(() => Object.fromEntries(GATES.map((g) => [g, new Float64Array(H * H)])) as Record<Gate, Float64Array>);
  const gb = m.layers.map(() => Object.fromEntries(GATES.map((g) => [g, new Float64Array(H)])) as Record<Gate, Float64Array>);
  const gWq = new Float64Array(H * V);
  const gbq = new Float64Array(V);
  // dHout[l][t]: ∂L/∂H of layer l at step t from above (output layer or layer l+1)
  const dHout: Float64Array[][] = Array.from({ length: L }, () => Array.from({ length: T }, () => new Float64Array(B * H)));
  for (let t = 0; t < T; t++) {
    const h = cache[L - 1][t].h;
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < V; v++) {
        const d = dZ[t][b * V + v];
        gbq[v] += d;
        for (let k = 0; k < H; k++) {
          gWq[k * V + v] += h[b * H + k] * d;
          dHout[L - 1][t][b * H + k] += d * m.Wq[k * V + v];
        }
      }
    }
  }
  for (let l = L - 1; l >= 0; l--) {
    const layer = m.layers[l];
    const dhNext = new Float64Array(B * H);
    const dcNext = new Float64Array(B * H);
    for (let t = T - 1; t >= 0; t--) {
      const s = cache[l][t];
      const cPrev = t > 0 ? cache[l][t - 1].c : cPrev0[l];
      const hPrev = t > 0 ? cache[l][t - 1].h : hPrev0[l];
      const dPre: Record<Gate, Float64Array> = { i: new Float64Array(B * H), f: new Float64Array(B * H), c: new Float64Array(B * H), o: new Float64Array(B * H) };
      for (let q = 0; q < B * H; q++) {
        const dh = dHout[l][t][q] + dhNext[q];
        const dc = dh * s.o[q] * (1 - s.tc[q] * s.tc[q]) + dcNext[q];
        dPre.o[q] = dh * s.tc[q] * s.o[q] * (1 - s.o[q]);
        dPre.i[q] = dc * s.g[q] * s.i[q] * (1 - s.i[q]);
        dPre.c[q] = dc * s.i[q] * (1 - s.g[q] * s.g[q]);
        dPre.f[q] = dc * cPrev[q] * s.f[q] * (1 - s.f[q]);
        dcNext[q] = dc * s.f[q];
      }
      dhNext.fill(0);
      for (const gate of GATES) {
        const dp = dPre[gate];
        for (let b = 0; b < B; b++) {
          for (let j = 0; j < H; j++) {
            const d = dp[b * H + j];
            gb[l][gate][j] += d;
            for (let k = 0; k < H; k++) {
              gWh[l][gate][k * H + j] += hPrev[b * H + k] * d;
              dhNext[b * H + k] += d * layer.Wh[gate][k * H + j];
            }
            if (l === 0) gWx[l][gate][X[b * T + t] * H + j] += d;
            else {
              const x = cache[l - 1][t].h;
              for (let k = 0; k < H; k++) {
                gWx[l][gate][k * H + j] += x[b * H + k] * d;
                dHout[l - 1][t][b * H + k] += d * layer.Wx[gate][k * H + j];
              }
            }
          }
        }
      }
    }
  }
  // back to interface names and layouts
  const grads: Record<string, Float64Array> = {};
  if (m.config.kind === 'scratch') {
    for (const g of ['i', 'f', 'o', 'c'] as const) {
      grads[`W_x${g}`] = gWx[0][g];
      grads[`W_h${g}`] = gWh[0][g];
      grads[`b_${g}`] = gb[0][g];
    }
    grads.W_hq = gWq;
    grads.b_q = gbq;
  } else {
    const fuse = (parts: Record<Gate, Float64Array>, rows: number) => {
      const out = new Float64Array(rows * 4 * H);
      GATES.forEach((g, k) => {
        for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * 4 * H + k * H + j] = parts[g][r * H + j];
      });
      return out;
    };
    for (let l = 0; l < L; l++) {
      grads[`lstm_l${l}/kernel`] = fuse(gWx[l], m.layers[l].inputs);
      grads[`lstm_l${l}/recurrent_kernel`] = fuse(gWh[l], H);
      grads[`lstm_l${l}/bias`] = fuse(gb[l], 1);
    }
    grads['dense/kernel'] = gWq;
    grads['dense/bias'] = gbq;
  }
  return { loss, grads, state: { h: hCur, c: cCur } };
}

/** Batch-1 logits after feeding `tokens` from zero state (predict_ch8's warm-up). */
export function refLogits(m: RefModel, tokens: number[]): Float64Array[] {
  const out: Float64Array[] = [];
  let state = zeroState(m.config, 1);
  for (const tok of tokens) {
    // one step: loss irrelevant; reuse the forward of refLossAndGrads with T = 1
    const batch: Batch = { X: Int32Array.of(tok), Y: Int32Array.of(0), batchSize: 1, numSteps: 1 };
    const r = refForward(m, batch, state);
    out.push(r.logits);
    state = r.state;
  }
  return out;
}

function refForward(m: RefModel, batch: Batch, state: RefState): { logits: Float64Array; state: RefState } {
  const { vocabSize: V, numHiddens: H, numLayers: L } = m.config;
  const tok = batch.X[0];
  const h = state.h.map((a) => Float64Array.from(a));
  const c = state.c.map((a) => Float64Array.from(a));
  let x: Float64Array | null = null;
  for (let l = 0; l < L; l++) {
    const layer = m.layers[l];
    const hn = new Float64Array(H);
    const cn = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const pre: Record<Gate, number> = { i: 0, f: 0, c: 0, o: 0 };
      for (const gate of GATES) {
        let a = layer.b[gate][j];
        if (l === 0) a += layer.Wx[gate][tok * H + j];
        else for (let k = 0; k < H; k++) a += x![k] * layer.Wx[gate][k * H + j];
        for (let k = 0; k < H; k++) a += h[l][k] * layer.Wh[gate][k * H + j];
        pre[gate] = a;
      }
      cn[j] = sigmoid(pre.f) * c[l][j] + sigmoid(pre.i) * Math.tanh(pre.c);
      hn[j] = sigmoid(pre.o) * Math.tanh(cn[j]);
    }
    h[l] = hn;
    c[l] = cn;
    x = hn;
  }
  const logits = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let a = m.bq[v];
    for (let k = 0; k < H; k++) a += x![k] * m.Wq[k * V + v];
    logits[v] = a;
  }
  return { logits, state: { h, c } };
}

// ---------------------------------------------------------------------------------------------
// comparisons

/** max |a − b| / max |b| — the normwise relative error of a tensor. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'length');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  if (scale === 0) return diff;
  return diff / scale;
}

/** Every named tensor of `actual` within `rtol` (normwise) of `expected`; names and sizes equal. */
export function assertGradsClose(actual: Weights, expected: Record<string, ArrayLike<number>>, config: ModelConfig, rtol: number, label: string): void {
  const shapes = paramShapes(config);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(shapes).sort(), `${label}: gradient names`);
  for (const [name, shape] of Object.entries(shapes)) {
    assert.deepEqual(actual[name].shape, shape, `${label}: shape of ${name}`);
    const e = relError(actual[name].data, expected[name]);
    assert.ok(e <= rtol, `${label}: gradient ${name} differs, normwise relative error ${e.toExponential(2)} > ${rtol}`);
  }
}

export function assertRelClose(actual: number, expected: number, rtol: number, label: string): void {
  const e = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-30);
  assert.ok(e <= rtol, `${label}: ${actual} vs ${expected} (relative error ${e.toExponential(2)} > ${rtol})`);
}

export const configs = (V: number, H: number): ModelConfig[] => [
  { kind: 'scratch', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 2 },
];

export const label = (c: ModelConfig) => `${c.kind} L${c.numLayers} H${c.numHiddens}`;

/** Weights large enough that gates saturate partially and every gradient path matters. */
export function testWeights(config: ModelConfig, seed: number): Weights {
  return randomWeights(config, seed, config.kind === 'scratch' ? 20 : 2.5);
}
