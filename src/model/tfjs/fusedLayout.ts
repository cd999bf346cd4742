// The fused layout the fast path trains on: tfjs's LSTM layer layout (the concise kind's, per layer
// `lstm_l{l}/kernel` (inputs, 4H), `lstm_l{l}/recurrent_kernel` (H, 4H), `lstm_l{l}/bias` (4H), gate
// blocks i, f, c, o, then `dense/kernel`, `dense/bias`). The scratch kind's 14 tensors map onto one
// such layer by concatenating its gate blocks; its gradients (and weights) are split back at the
// boundary. SGD and global-norm clipping are elementwise, so training the fused tensors is training
// the 14.
import type { ModelConfig, Weights } from '../engine.js';

/** The layout the fast path holds for a config: the concise kind's (one layer for scratch). */
export function fusedConfig(config: ModelConfig): ModelConfig {
  return config.kind === 'scratch' ? { ...config, kind: 'concise', numLayers: 1 } : { ...config };
}

// scratch gate suffixes in fused block order: input, forget, candidate cell, output
const GATES = ['i', 'f', 'c', 'o'] as const;

/** Weights of either kind (already checked) in the fused layout; copies. */
export function toFusedLayout(config: ModelConfig, weights: Weights): Weights {
  if (config.kind !== 'scratch') return copy(weights);
  const { vocabSize: V, numHiddens: H } = config;
  return {
    'lstm_l0/kernel': {
      shape: [V, 4 * H],
      data: concatColumns(
        GATES.map((g) => weights[`W_x${g}`].data),
        V,
        H,
      ),
    },
    'lstm_l0/recurrent_kernel': {
      shape: [H, 4 * H],
      data: concatColumns(
        GATES.map((g) => weights[`W_h${g}`].data),
        H,
        H,
      ),
    },
    'lstm_l0/bias': {
      shape: [4 * H],
      data: concatColumns(
        GATES.map((g) => weights[`b_${g}`].data),
        1,
        H,
      ),
    },
    'dense/kernel': { shape: [H, V], data: new Float32Array(weights.W_hq.data) },
    'dense/bias': { shape: [V], data: new Float32Array(weights.b_q.data) },
  };
}

/** Fused-layout weights or gradients back under the kind's own names, shapes and order. */
export function fromFusedLayout(config: ModelConfig, fused: Weights): Weights {
  if (config.kind !== 'scratch') return fused;
  const { vocabSize: V, numHiddens: H } = config;
  const Wx = splitColumns(fused['lstm_l0/kernel'].data, V, H);
  const Wh = splitColumns(fused['lstm_l0/recurrent_kernel'].data, H, H);
  const b = splitColumns(fused['lstm_l0/bias'].data, 1, H);
  const out: Weights = {};
  // the order of params.ts: W_x*, W_h*, b_* for i, f, o, c, then W_hq, b_q
  for (const g of ['i', 'f', 'o', 'c'] as const) {
    const j = GATES.indexOf(g);
    out[`W_x${g}`] = { shape: [V, H], data: Wx[j] };
    out[`W_h${g}`] = { shape: [H, H], data: Wh[j] };
    out[`b_${g}`] = { shape: [H], data: b[j] };
  }
  out.W_hq = fused['dense/kernel'];
  out.b_q = fused['dense/bias'];
  return out;
}

/** Four (rows, w) row-major blocks side by side → (rows, 4w). */
function concatColumns(blocks: Float32Array[], rows: number, w: number): Float32Array {
  const out = new Float32Array(rows * 4 * w);
  for (let r = 0; r < rows; r++) blocks.forEach((block, j) => out.set(block.subarray(r * w, (r + 1) * w), r * 4 * w + j * w));
  return out;
}

/** (rows, 4w) → its four column blocks (rows, w). */
function splitColumns(data: Float32Array, rows: number, w: number): Float32Array[] {
  return [0, 1, 2, 3].map((j) => {
    const block = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) block.set(data.subarray(r * 4 * w + j * w, r * 4 * w + (j + 1) * w), r * w);
    return block;
  });
}

function copy(weights: Weights): Weights {
  const out: Weights = {};
  for (const [name, t] of Object.entries(weights)) out[name] = { shape: [...t.shape], data: new Float32Array(t.data) };
  return out;
}
