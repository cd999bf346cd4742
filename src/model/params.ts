// Parameter layouts and initialisation of the two model kinds, independent of any engine.
import type { Rng } from '../text/rng.js';
import type { ModelConfig, NamedTensor, Weights } from './engine.js';

function tensor(shape: number[], fill: (i: number) => number): NamedTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = fill(i);
  return { shape, data };
}

/**
 * The seed's get_lstm_params: W_x* (num_inputs, H), W_h* (H, H), b_* (H) for each of the
 * input, forget and output gates and the candidate memory cell; W_hq (H, V), b_q (V).
 * normal(shape) = randn * 0.01; biases zero.
 */
export function getLstmParams(vocabSize: number, numHiddens: number, rng: Rng): Weights {
  const numInputs = vocabSize;
  const numOutputs = vocabSize;
  const normal = (shape: number[]) => tensor(shape, () => rng.normal() * 0.01);
  const zeros = (shape: number[]) => tensor(shape, () => 0);
  const three = () => [normal([numInputs, numHiddens]), normal([numHiddens, numHiddens]), zeros([numHiddens])] as const;
  const [W_xi, W_hi, b_i] = three(); // input gate
  const [W_xf, W_hf, b_f] = three(); // forget gate
  const [W_xo, W_ho, b_o] = three(); // output gate
  const [W_xc, W_hc, b_c] = three(); // candidate memory cell
  const W_hq = normal([numHiddens, numOutputs]);
  const b_q = zeros([numOutputs]);
  return { W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q };
}

/**
 * The concise kind: tfjs's LSTM layer layout per layer l — `lstm_l{l}/kernel` (inputs, 4H),
 * `lstm_l{l}/recurrent_kernel` (H, 4H), `lstm_l{l}/bias` (4H), gate blocks in the order
 * i, f, c, o — then `dense/kernel` (H, V), `dense/bias` (V).
 * Initialised as PyTorch does, not with Keras defaults: nn.LSTM draws every weight and both
 * biases from U(-1/√H, 1/√H); tfjs has one bias, so it is the sum of two such draws
 * (b_ih + b_hh). nn.Linear(H, V): weight and bias U(-1/√H, 1/√H).
 */
export function getConciseParams(vocabSize: number, numHiddens: number, numLayers: number, rng: Rng): Weights {
  const k = 1 / Math.sqrt(numHiddens);
  const uniform = (shape: number[]) => tensor(shape, () => rng.uniform(-k, k));
  const w: Weights = {};
  for (let l = 0; l < numLayers; l++) {
    const inputs = l === 0 ? vocabSize : numHiddens;
    w[`lstm_l${l}/kernel`] = uniform([inputs, 4 * numHiddens]);
    w[`lstm_l${l}/recurrent_kernel`] = uniform([numHiddens, 4 * numHiddens]);
    w[`lstm_l${l}/bias`] = tensor([4 * numHiddens], () => rng.uniform(-k, k) + rng.uniform(-k, k));
  }
  w['dense/kernel'] = uniform([numHiddens, vocabSize]);
  w['dense/bias'] = uniform([vocabSize]);
  return w;
}

export function initParams(config: ModelConfig, rng: Rng): Weights {
  return config.kind === 'scratch'
    ? getLstmParams(config.vocabSize, config.numHiddens, rng)
    : getConciseParams(config.vocabSize, config.numHiddens, config.numLayers, rng);
}

/** Names and shapes each kind must have (for validating checkpoints and engine I/O). */
export function paramShapes(config: ModelConfig): Record<string, number[]> {
  const { vocabSize: V, numHiddens: H, numLayers } = config;
  if (config.kind === 'scratch') {
    const s: Record<string, number[]> = {};
    for (const g of ['i', 'f', 'o', 'c']) {
      s[`W_x${g}`] = [V, H];
      s[`W_h${g}`] = [H, H];
      s[`b_${g}`] = [H];
    }
    s.W_hq = [H, V];
    s.b_q = [V];
    return s;
  }
  const s: Record<string, number[]> = {};
  for (let l = 0; l < numLayers; l++) {
    s[`lstm_l${l}/kernel`] = [l === 0 ? V : H, 4 * H];
    s[`lstm_l${l}/recurrent_kernel`] = [H, 4 * H];
    s[`lstm_l${l}/bias`] = [4 * H];
  }
  s['dense/kernel'] = [H, V];
  s['dense/bias'] = [V];
  return s;
}

export function cloneWeights(w: Weights): Weights {
  const out: Weights = {};
  for (const [name, t] of Object.entries(w)) out[name] = { shape: [...t.shape], data: new Float32Array(t.data) };
  return out;
}
