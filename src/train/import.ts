// A model into training: the weights to start from (fine-tuning, continuing) from a file this
// service exported or wrote — our checkpoint, or a PyTorch state dict as safetensors in the seed's
// names (docs/export.md) — checked against the job's model and vocabulary.
import type { ModelConfig, Weights } from '../model/engine.js';
import { paramShapes } from '../model/params.js';
import { CheckpointError, deserializeCheckpoint, type Checkpoint } from './checkpoint.js';

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
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new ModelFileError('not a safetensors file (its header is not a JSON object)');
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  if (typeof metadata !== 'object' || Array.isArray(metadata) || Object.values(metadata).some((v) => typeof v !== 'string')) {
    throw new ModelFileError('its __metadata__ must be an object of strings');
  }
  const data = buf.subarray(8 + n);
  const tensors: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = t as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (
      !entry ||
      typeof entry !== 'object' ||
      !Array.isArray(entry.shape) ||
      !entry.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      !Array.isArray(entry.data_offsets) ||
      entry.data_offsets.length !== 2 ||
      !entry.data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new ModelFileError(`tensor ${name}: its header entry needs dtype, shape (a list of sizes) and data_offsets [begin, end]`);
    }
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
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
      throw new ModelFileError(
        `${name} has shape [${got}] in the file, the job's model needs [${shape}] (kind ${config.kind}, ${config.numHiddens} hidden, vocabulary ${config.vocabSize})`,
      );
    }
  }
  return w;
}

/** A checkpoint's bytes, read; a malformed one is a ModelFileError. */
function readCheckpoint(buf: Buffer): Checkpoint {
  try {
    return deserializeCheckpoint(buf);
  } catch (e) {
    if (e instanceof CheckpointError) throw new ModelFileError(e.message);
    throw e;
  }
}

/** The weights to start from, from a checkpoint or a safetensors file's bytes, for the model `config`. */
export function readInitModel(buf: Buffer, config: ModelConfig): InitModel {
  if (buf.subarray(0, 8).toString('latin1') === 'LSTMCKPT') {
    const ckpt = readCheckpoint(buf);
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

/** What a model file is: the model it fits, its vocabulary, and what its metadata says of its training. */
export interface ModelFileInfo {
  config: ModelConfig;
  vocab: string[];
  /** From the metadata when present (ours write them). */
  epoch?: number;
  perplexity?: number;
}

/** A vocabulary as our models use it: `<unk>` first, then distinct single characters. */
function checkVocab(vocab: unknown): string[] {
  if (!Array.isArray(vocab) || !vocab.every((t) => typeof t === 'string')) throw new ModelFileError('its vocabulary must be a JSON list of tokens');
  if (vocab[0] !== '<unk>') throw new ModelFileError(`its vocabulary must start with "<unk>" (index 0: unknown characters), not ${JSON.stringify(vocab[0])}`);
  const rest = vocab.slice(1);
  const bad = rest.find((t) => [...t].length !== 1);
  if (bad !== undefined)
    throw new ModelFileError(`its vocabulary holds ${JSON.stringify(bad)}: after "<unk>" every token must be one character (the models are character-level)`);
  if (new Set(vocab).size !== vocab.length) throw new ModelFileError('its vocabulary lists a token twice');
  return vocab as string[];
}

/**
 * Reads a model file — our checkpoint, or a safetensors state dict in the seed's names with its
 * vocabulary in `__metadata__.vocab` (what the export writes) — and validates it in full: which
 * kind it is (concise: `rnn.*` and `linear.*`; scratch: the 14 seed names), its sizes from the
 * tensors' shapes, every tensor present with the shape those sizes need and no other, finite
 * values, and a vocabulary as long as the output layer. ModelFileError names what is wrong.
 */
export function describeModelFile(buf: Buffer): ModelFileInfo & { weights: Weights } {
  if (buf.subarray(0, 8).toString('latin1') === 'LSTMCKPT') {
    const ckpt = readCheckpoint(buf);
    return {
      config: ckpt.config,
      vocab: ckpt.vocab,
      epoch: ckpt.epoch,
      perplexity: Number.isFinite(ckpt.perplexity) ? ckpt.perplexity : undefined,
      weights: ckpt.weights,
    };
  }
  const { tensors, metadata } = readSafetensors(buf);
  if (metadata.vocab === undefined) {
    throw new ModelFileError(
      'its __metadata__ has no vocab: the index → token list as JSON (e.g. ["<unk>"," ","e",…]) is needed to know which character each row stands for',
    );
  }
  let vocabJson: unknown;
  try {
    vocabJson = JSON.parse(metadata.vocab);
  } catch {
    throw new ModelFileError('its __metadata__.vocab is not a JSON list of tokens');
  }
  const vocab = checkVocab(vocabJson);
  const dims = (name: string, rank: number) => {
    const t = tensors[name];
    if (!t) return undefined;
    if (t.shape.length !== rank) throw new ModelFileError(`${name} has shape [${t.shape}]; it must have ${rank} dimension(s)`);
    return t.shape;
  };
  let config: ModelConfig;
  if (tensors['linear.weight'] || tensors['rnn.weight_ih_l0']) {
    const hh = dims('rnn.weight_hh_l0', 2);
    if (!hh) throw new ModelFileError('the file has rnn.* / linear.* tensors (a concise model) but no rnn.weight_hh_l0');
    let numLayers = 0;
    while (tensors[`rnn.weight_ih_l${numLayers}`]) numLayers++;
    config = { kind: 'concise', numHiddens: hh[1], numLayers, vocabSize: vocab.length };
  } else if (tensors.W_xi) {
    const whi = dims('W_hi', 2);
    if (!whi) throw new ModelFileError('the file has W_xi (a scratch model) but no W_hi');
    config = { kind: 'scratch', numHiddens: whi[0], numLayers: 1, vocabSize: vocab.length };
  } else {
    throw new ModelFileError(
      `the file has neither a concise model's tensors (rnn.weight_ih_l0, …, linear.weight) nor a scratch model's (W_xi, …, b_q); it has ${Object.keys(tensors).slice(0, 6).join(', ') || 'no tensors'}`,
    );
  }
  if (config.numHiddens < 1 || config.numLayers < 1) throw new ModelFileError(`a ${config.kind} model needs at least one hidden unit and one layer`);
  const out = config.kind === 'concise' ? 'linear.weight' : 'W_xi';
  const rows = tensors[out]?.shape[0];
  if (rows !== undefined && rows !== vocab.length) {
    throw new ModelFileError(`${out} has ${rows} rows (one per token) but __metadata__.vocab has ${vocab.length} tokens`);
  }
  // the names the model needs, each in the shape its sizes give (the vocabulary's length is V)
  const weights = weightsFromStateDict(tensors, config);
  const expected =
    config.kind === 'scratch'
      ? Object.keys(paramShapes(config))
      : [
          ...Array.from({ length: config.numLayers }, (_, l) => [
            `rnn.weight_ih_l${l}`,
            `rnn.weight_hh_l${l}`,
            `rnn.bias_ih_l${l}`,
            `rnn.bias_hh_l${l}`,
          ]).flat(),
          'linear.weight',
          'linear.bias',
        ];
  const extra = Object.keys(tensors).filter((n) => !expected.includes(n));
  if (extra.length) throw new ModelFileError(`the file has tensors a ${config.kind} model does not have: ${extra.slice(0, 5).join(', ')}`);
  for (const [name, t] of Object.entries(tensors)) {
    const i = t.data.findIndex((x) => !Number.isFinite(x));
    if (i >= 0) throw new ModelFileError(`tensor ${name} holds ${t.data[i]} at index ${i}: a model's weights must be finite`);
  }
  const epoch = metadata.epoch !== undefined && /^\d+$/.test(metadata.epoch) ? Number(metadata.epoch) : undefined;
  const perplexity = metadata.perplexity !== undefined && Number.isFinite(Number(metadata.perplexity)) ? Number(metadata.perplexity) : undefined;
  return { config, vocab, epoch, perplexity, weights };
}
