// A model into training: the weights to start from (fine-tuning, continuing) from a file this
// service exported or wrote — our checkpoint, or a PyTorch state dict as safetensors in the seed's
// names (docs/export.md) — checked against the job's model and vocabulary.
import type { ModelConfig, Weights } from '../model/engine.js';
import { paramShapes } from '../model/params.js';
import { CheckpointError, deserializeCheckpoint } from './checkpoint.js';

export class ModelFileError extends Error {}

export interface InitModel {
  weights: Weights;
  /** idxToToken, when the file carries it (ours always do). */
  vocab?: string[];
  /** Where the weights came from, for messages: e.g. "checkpoint (epoch 500)". */
  source: string;
}

interface RawTensor {
  shape: number[];
  data: Float32Array;
}

/** The safetensors format: u64 LE header length, JSON header, raw data. Only F32 tensors. */
export function readSafetensors(buf: Buffer): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (buf.length < 8) throw new ModelFileError('not a safetensors file (shorter than its header length)');
  const n = Number(buf.readBigUInt64LE(0));
  if (n < 2 || 8 + n > buf.length) throw new ModelFileError('not a safetensors file (header length out of range)');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw new ModelFileError('not a safetensors file (its header is not JSON)');
  }
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const data = buf.subarray(8 + n);
  const tensors: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: [begin, end] } = t as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32') throw new ModelFileError(`tensor ${name} is ${dtype}; only F32 (float32) models can be loaded`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end <= data.length && end - begin === count * 4)) throw new ModelFileError(`tensor ${name}: its byte range does not match its shape`);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = data.readFloatLE(begin + i * 4);
    tensors[name] = { shape, data: out };
  }
  return { tensors, metadata };
}

/** (rows, cols) row-major → (cols, rows). */
function transpose(t: RawTensor): RawTensor {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  return { shape: [cols, rows], data: out };
}

/** Our weights from the seed's PyTorch state dict (the inverse of export.ts's stateDict). */
export function weightsFromStateDict(sd: Record<string, RawTensor>, config: ModelConfig): Weights {
  const need = (name: string) => {
    const t = sd[name];
    if (!t) throw new ModelFileError(`the file has no tensor ${name} (a ${config.kind} model with ${config.numLayers} layer(s) needs it)`);
    return t;
  };
  const w: Weights = {};
  if (config.kind === 'scratch') {
    for (const name of Object.keys(paramShapes(config))) w[name] = need(name);
  } else {
    for (let l = 0; l < config.numLayers; l++) {
      const bih = need(`rnn.bias_ih_l${l}`);
      const bhh = need(`rnn.bias_hh_l${l}`);
      w[`lstm_l${l}/kernel`] = transpose(need(`rnn.weight_ih_l${l}`));
      w[`lstm_l${l}/recurrent_kernel`] = transpose(need(`rnn.weight_hh_l${l}`));
      w[`lstm_l${l}/bias`] = { shape: [...bih.shape], data: bih.data.map((x, i) => x + (bhh.data[i] ?? NaN)) };
    }
    w['dense/kernel'] = transpose(need('linear.weight'));
    w['dense/bias'] = need('linear.bias');
  }
  // every shape as the job's model has it
  for (const [name, shape] of Object.entries(paramShapes(config))) {
    const got = w[name].shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(`${name} has shape [${got}] in the file, the job's model needs [${shape}] (kind ${config.kind}, ${config.numHiddens} hidden, vocabulary ${config.vocabSize})`);
    }
  }
  return w;
}

/** The weights to start from, from a checkpoint or a safetensors file's bytes, for the model `config`. */
export function readInitModel(buf: Buffer, config: ModelConfig): InitModel {
  if (buf.subarray(0, 8).toString('latin1') === 'LSTMCKPT') {
    let ckpt;
    try {
      ckpt = deserializeCheckpoint(buf);
    } catch (e) {
      if (e instanceof CheckpointError) throw new ModelFileError(e.message);
      throw e;
    }
    const c = ckpt.config;
    if (c.kind !== config.kind || c.numHiddens !== config.numHiddens || c.numLayers !== config.numLayers || c.vocabSize !== config.vocabSize) {
      throw new ModelFileError(
        `the checkpoint is a ${c.kind} model (${c.numLayers} layer(s), ${c.numHiddens} hidden, vocabulary ${c.vocabSize}); the job's is ${config.kind} (${config.numLayers}, ${config.numHiddens}, ${config.vocabSize})`,
      );
    }
    return { weights: ckpt.weights, vocab: ckpt.vocab, source: `checkpoint (epoch ${ckpt.epoch})` };
  }
  const { tensors, metadata } = readSafetensors(buf);
  let vocab: string[] | undefined;
  if (metadata.vocab) {
    try {
      vocab = JSON.parse(metadata.vocab);
    } catch {
      throw new ModelFileError('its __metadata__.vocab is not a JSON list of tokens');
    }
  }
  return { weights: weightsFromStateDict(tensors, config), vocab, source: `safetensors${metadata.epoch ? ` (epoch ${metadata.epoch})` : ''}` };
}
