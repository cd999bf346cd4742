// A trained model out of the service, in the formats its users load (docs/export.md):
//   safetensors  the PyTorch state dict of the seed's models: `load_state_dict` works unchanged
//   onnx         an inference graph with ONNX's LSTM op, the state as inputs and outputs
//   tfjs         a TensorFlow.js LayersModel (model.json + weights.bin), written by tfjs itself
//   checkpoint   our own file (the same bytes `train --save` writes)
// Vocabulary, kind, sizes, epoch and perplexity travel in each format's metadata.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import type { Weights } from '../model/engine.js';
import { serializeCheckpoint, type Checkpoint } from './checkpoint.js';

export const EXPORT_FORMATS = ['safetensors', 'onnx', 'tfjs', 'checkpoint'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** One file of an export: its name (in a directory, for tfjs) and bytes. */
export interface ExportFile {
  name: string;
  data: Buffer;
}

export interface ModelExport {
  format: ExportFormat;
  /** The epoch of the checkpoint exported. */
  epoch: number;
  files: ExportFile[];
}

/** What every format carries about the model (string values, as safetensors metadata must be). */
export function exportMetadata(ckpt: Checkpoint): Record<string, string> {
  const { kind, vocabSize, numHiddens, numLayers } = ckpt.config;
  return {
    format: 'lstm-trainer',
    kind,
    vocab_size: String(vocabSize),
    num_hiddens: String(numHiddens),
    num_layers: String(numLayers),
    vocab: JSON.stringify(ckpt.vocab),
    // how text becomes the vocabulary's tokens (d2l-chars, chars or words: docs/corpora.md)
    tokenizer: ckpt.spec.data.tokenizer ?? 'd2l-chars',
    epoch: String(ckpt.epoch),
    perplexity: Number.isFinite(ckpt.perplexity) ? String(ckpt.perplexity) : 'nan',
  };
}

export async function exportModel(ckpt: Checkpoint, format: ExportFormat): Promise<ModelExport> {
  switch (format) {
    case 'safetensors':
      return { format, epoch: ckpt.epoch, files: [{ name: 'model.safetensors', data: toSafetensors(stateDict(ckpt), exportMetadata(ckpt)) }] };
    case 'onnx':
      return { format, epoch: ckpt.epoch, files: [{ name: 'model.onnx', data: toOnnx(ckpt) }] };
    case 'tfjs':
      return { format, epoch: ckpt.epoch, files: await toTfjsLayersModel(ckpt) };
    case 'checkpoint': {
      // the model, without the best-epoch weights a running job keeps for early stopping
      const { bestWeights, ...model } = ckpt;
      void bestWeights;
      return { format, epoch: ckpt.epoch, files: [{ name: 'model.ckpt', data: serializeCheckpoint(model) }] };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// PyTorch state dict → safetensors

interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** (rows, cols) row-major → (cols, rows). */
function transpose(t: Tensor): Tensor {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  return { shape: [cols, rows], data: out };
}

/**
 * The seed's PyTorch names and shapes. Scratch: its 14 tensors as they are (`W_xi` (V, H) …).
 * Concise: d2l's `RNNModel` around `nn.LSTM` — `rnn.weight_ih_l{k}` (4H, in) and
 * `rnn.weight_hh_l{k}` (4H, H) are our kernels transposed (the gate blocks i, f, g, o are already
 * PyTorch's order), `rnn.bias_ih_l{k}` our one bias and `rnn.bias_hh_l{k}` zeros (their sum is
 * what the cell adds), `linear.weight` (V, H), `linear.bias` (V).
 */
export function stateDict(ckpt: Checkpoint): Record<string, Tensor> {
  const w = ckpt.weights;
  if (ckpt.config.kind === 'scratch') {
    const out: Record<string, Tensor> = {};
    for (const name of ['W_xi', 'W_hi', 'b_i', 'W_xf', 'W_hf', 'b_f', 'W_xo', 'W_ho', 'b_o', 'W_xc', 'W_hc', 'b_c', 'W_hq', 'b_q']) out[name] = w[name];
    return out;
  }
  const out: Record<string, Tensor> = {};
  for (let l = 0; l < ckpt.config.numLayers; l++) {
    const bias = w[`lstm_l${l}/bias`];
    out[`rnn.weight_ih_l${l}`] = transpose(w[`lstm_l${l}/kernel`]);
    out[`rnn.weight_hh_l${l}`] = transpose(w[`lstm_l${l}/recurrent_kernel`]);
    out[`rnn.bias_ih_l${l}`] = bias;
    out[`rnn.bias_hh_l${l}`] = { shape: [...bias.shape], data: new Float32Array(bias.data.length) };
  }
  out['linear.weight'] = transpose(w['dense/kernel']);
  out['linear.bias'] = w['dense/bias'];
  return out;
}

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header (each tensor's
 * dtype, shape and byte range in the data; `__metadata__` strings), spaces to an 8-byte boundary,
 * then the tensors' little-endian bytes in header order.
 */
export function toSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data.length * 4;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let at = 8 + json.length;
  for (const t of Object.values(tensors)) {
    for (let i = 0; i < t.data.length; i++) out.writeFloatLE(t.data[i], at + i * 4);
    at += t.data.length * 4;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TensorFlow.js LayersModel

/** The concise layout of either kind's weights: the scratch kind's 14 tensors as one LSTM layer. */
function layersWeights(ckpt: Checkpoint): Weights {
  if (ckpt.config.kind === 'concise') return ckpt.weights;
  const w = ckpt.weights;
  const { vocabSize: V, numHiddens: H } = ckpt.config;
  // column blocks i, f, c, o (the tfjs / Keras LSTM order)
  const fuse = (prefix: string, rows: number) => {
    const out = new Float32Array(rows * 4 * H);
    ['i', 'f', 'c', 'o'].forEach((g, k) => {
      const part = w[`${prefix}${g}`].data;
      for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * 4 * H + k * H + j] = part[r * H + j];
    });
    return out;
  };
  return {
    'lstm_l0/kernel': { shape: [V, 4 * H], data: fuse('W_x', V) },
    'lstm_l0/recurrent_kernel': { shape: [H, 4 * H], data: fuse('W_h', H) },
    'lstm_l0/bias': { shape: [4 * H], data: fuse('b_', 1) },
    'dense/kernel': w.W_hq,
    'dense/bias': w.b_q,
  };
}

/**
 * model.json + weights.bin, as tfjs's own `model.save` writes them: `LSTM` layers (return
 * sequences, `recurrentActivation: 'sigmoid'` — tfjs's default is hardSigmoid) and a `Dense`
 * output layer, over one-hot inputs of shape (batch, steps, vocab). The model is built and saved
 * by tfjs, so what `tf.loadLayersModel` reads is tfjs's own format.
 */
export async function toTfjsLayersModel(ckpt: Checkpoint): Promise<ExportFile[]> {
  const { vocabSize: V, numHiddens: H, numLayers } = ckpt.config;
  const layers = ckpt.config.kind === 'scratch' ? 1 : numLayers;
  const w = layersWeights(ckpt);
  // tfjs is loaded here, not at import: it costs ~1 s, and the api and workers that import this
  // module for the other formats never need it
  const tf = await import('@tensorflow/tfjs');
  const { initTfjsBackend } = await import('../model/tfjs/index.js');
  await initTfjsBackend(() => {}); // the project's backend choice (quietly), not tfjs's default
  const model = tf.sequential({ name: `lstm_trainer_${ckpt.config.kind}` });
  for (let l = 0; l < layers; l++) {
    model.add(
      tf.layers.lstm({
        name: `lstm_l${l}`,
        units: H,
        returnSequences: true,
        recurrentActivation: 'sigmoid',
        // the weights are set below: skip the (slow, orthogonal) initialisation
        kernelInitializer: 'zeros',
        recurrentInitializer: 'zeros',
        ...(l === 0 ? { inputShape: [null, V] } : {}),
      }),
    );
  }
  model.add(tf.layers.dense({ name: 'dense', units: V, kernelInitializer: 'zeros' }));
  // in model.weights' order (tfjs makes variable names unique per process: kernel_2, …)
  const names: string[] = [];
  for (let l = 0; l < layers; l++) names.push(`lstm_l${l}/kernel`, `lstm_l${l}/recurrent_kernel`, `lstm_l${l}/bias`);
  names.push('dense/kernel', 'dense/bias');
  const values = names.map((n) => tf.tensor(w[n].data, w[n].shape));
  try {
    model.setWeights(values);
    let files: ExportFile[] = [];
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const manifest = {
          format: 'layers-model',
          generatedBy: 'lstm-trainer',
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
          userDefinedMetadata: exportMetadata(ckpt),
        };
        const parts = artifacts.weightData === undefined ? [] : Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData];
        files = [
          { name: 'model.json', data: Buffer.from(JSON.stringify(manifest)) },
          { name: 'weights.bin', data: Buffer.concat(parts.map((b) => Buffer.from(b))) },
        ];
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    return files;
  } finally {
    for (const t of values) t.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX

const { onnx } = onnxProto; // (a CommonJS module: its namespace is the default export)

/** ONNX's LSTM gate order i, o, f, c as blocks of our fused order i, f, c, o. */
const ONNX_GATE_BLOCKS = [0, 3, 1, 2];

/** Our (in, 4H) kernel → ONNX's (1, 4H, in): transposed, gate blocks reordered. */
function onnxGateWeights(t: Tensor, H: number): Float32Array {
  const [inputs] = t.shape;
  const out = new Float32Array(4 * H * inputs);
  ONNX_GATE_BLOCKS.forEach((block, k) => {
    for (let j = 0; j < H; j++) for (let x = 0; x < inputs; x++) out[(k * H + j) * inputs + x] = t.data[x * 4 * H + block * H + j];
  });
  return out;
}

function floatTensor(name: string, dims: number[], data: Float32Array): OnnxTypes.ITensorProto {
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function int64Tensor(name: string, values: number[]): OnnxTypes.ITensorProto {
  const data = BigInt64Array.from(values.map(BigInt));
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/**
 * An inference graph (opset 14): `tokens` int64 (steps, batch) → Gather from the identity (the
 * one-hot rows) → one ONNX `LSTM` per layer (gates reordered to i, o, f, c; W, R and B laid out as
 * ONNX wants: B = [input bias; recurrent bias = 0]) → MatMul + Add → `logits` (steps, batch, V).
 * The state is an input (`h0_l{k}`, `c0_l{k}`: (1, batch, H), zeros to start) and an output
 * (`hT_l{k}`, `cT_l{k}`), so a caller can step the model a token at a time.
 */
export function toOnnx(ckpt: Checkpoint): Buffer {
  const { vocabSize: V, numHiddens: H, numLayers } = ckpt.config;
  const layers = ckpt.config.kind === 'scratch' ? 1 : numLayers;
  const w = layersWeights(ckpt);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const INT64 = onnx.TensorProto.DataType.INT64;
  const eye = new Float32Array(V * V);
  for (let v = 0; v < V; v++) eye[v * V + v] = 1;
  const initializer: OnnxTypes.ITensorProto[] = [floatTensor('one_hot_rows', [V, V], eye), int64Tensor('axis_1', [1])];
  const node: OnnxTypes.INodeProto[] = [{ name: 'one_hot', opType: 'Gather', input: ['one_hot_rows', 'tokens'], output: ['x_l0'] }];
  const input = [valueInfo('tokens', INT64, ['steps', 'batch'])];
  const output = [valueInfo('logits', FLOAT, ['steps', 'batch', V])];
  for (let l = 0; l < layers; l++) {
    const inputs = l === 0 ? V : H;
    const bias = new Float32Array(8 * H);
    const b = w[`lstm_l${l}/bias`].data;
    ONNX_GATE_BLOCKS.forEach((block, k) => bias.set(b.subarray(block * H, block * H + H), k * H));
    initializer.push(
      floatTensor(`W_l${l}`, [1, 4 * H, inputs], onnxGateWeights(w[`lstm_l${l}/kernel`], H)),
      floatTensor(`R_l${l}`, [1, 4 * H, H], onnxGateWeights(w[`lstm_l${l}/recurrent_kernel`], H)),
      floatTensor(`B_l${l}`, [1, 8 * H], bias),
    );
    input.push(valueInfo(`h0_l${l}`, FLOAT, [1, 'batch', H]), valueInfo(`c0_l${l}`, FLOAT, [1, 'batch', H]));
    output.push(valueInfo(`hT_l${l}`, FLOAT, [1, 'batch', H]), valueInfo(`cT_l${l}`, FLOAT, [1, 'batch', H]));
    node.push(
      {
        name: `lstm_l${l}`,
        opType: 'LSTM',
        input: [`x_l${l}`, `W_l${l}`, `R_l${l}`, `B_l${l}`, '', `h0_l${l}`, `c0_l${l}`],
        output: [`y_l${l}`, `hT_l${l}`, `cT_l${l}`],
        attribute: [{ name: 'hidden_size', type: onnx.AttributeProto.AttributeType.INT, i: H }],
      },
      // Y is (steps, directions = 1, batch, H)
      { name: `squeeze_l${l}`, opType: 'Squeeze', input: [`y_l${l}`, 'axis_1'], output: [`x_l${l + 1}`] },
    );
  }
  initializer.push(floatTensor('Wq', [H, V], w['dense/kernel'].data), floatTensor('bq', [V], w['dense/bias'].data));
  node.push(
    { name: 'dense_matmul', opType: 'MatMul', input: [`x_l${layers}`, 'Wq'], output: ['dense_out'] },
    { name: 'dense_bias', opType: 'Add', input: ['dense_out', 'bq'], output: ['logits'] },
  );
  const model: OnnxTypes.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 14 }],
    producerName: 'lstm-trainer',
    graph: { name: `lstm_trainer_${ckpt.config.kind}`, node, initializer, input, output },
    metadataProps: Object.entries(exportMetadata(ckpt)).map(([key, value]) => ({ key, value })),
  };
  return Buffer.from(onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish());
}
