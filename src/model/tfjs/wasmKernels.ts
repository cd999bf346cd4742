// Kernels for the wasm backend, where tfjs's own ops are the bottleneck of an LSTM minibatch. Every
// exported function falls back to tfjs ops on other backends (and those ops are what the tests
// compare the kernels with: test/model/tfjs/cell-kernels.test.ts).
//
// - The LSTM cell after its matMul, forward (the gates' σ included; layer 0's input rows read straight
//   from the token table) and backward, as WebAssembly SIMD (lstmCellKernels.as.ts; lstmCellForward /
//   lstmCellBackward in fusedLstm.ts are the same equations as ops): as ops a step is ≈ 25 small
//   kernels, each ≈ 10–15 µs of dispatch and allocation for 8K elements, ≈ 20 ms of a d2l minibatch;
//   the kernels do a step in ≈ 50–90 µs. (The same pass in plain JS took ≈ 110 µs per direction.)
// - Data movement, where tfjs's wasm kernels are slow: Slice (and so Split/Unstack) copies the WHOLE
//   input out of the heap for every slice (splitting a (T·B, H) gradient into its T steps: 24 ms at
//   T = 35, H = 256); Gather walks its output element by element (≈ 1 ms for 32 rows of 1024);
//   Transpose of (1120, 1024) takes ≈ 2.4 ms and its scatter-add gradient ≈ 1.5 ms. Here: splitColumns
//   / splitRows (views, one copy per output), transposeSteps (dZ of every step → dZallᵀ and the bias
//   gradient in one pass), transpose2d, scatterAddSteps.
// The SIMD kernels import the backend's own WebAssembly.Memory, so they read and write tensors in place.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { checkTokens } from './common.js';

const SPLIT = 'LstmTrainerSplitColumns';
const CELL_FORWARD = 'LstmTrainerLstmCellForward';
const CELL_BACKWARD = 'LstmTrainerLstmCellBackward';
const TRANSPOSE_STEPS = 'LstmTrainerTransposeSteps';
const SCATTER_STEPS = 'LstmTrainerScatterAddSteps';
const TRANSPOSE = 'LstmTrainerTranspose';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** x (rows, n·w) → n × (rows, w). */
function splitColumnsWasm(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.x as tf.TensorInfo;
  const backend = args.backend as WasmBackendLike;
  const n = (args.attrs as { numSplits: number }).numSplits;
  const [rows, cols] = x.shape;
  const w = cols / n;
  const outs = Array.from({ length: n }, () => backend.makeOutput([rows, w], 'float32'));
  // views only after every allocation: a malloc can grow the heap and detach earlier views
  const src = backend.typedArrayFromHeap(x);
  outs.forEach((out, j) => {
    const dst = backend.typedArrayFromHeap(out);
    if (rows === 1) dst.set(src.subarray(j * w, (j + 1) * w));
    else for (let r = 0; r < rows; r++) dst.set(src.subarray(r * cols + j * w, r * cols + (j + 1) * w), r * w);
  });
  return outs;
}

/** The exports of lstmCellKernels.wasm (lstmCellKernels.as.ts): pointers are byte offsets in tfjs's heap. */
interface CellKernels {
  lstmCellForward(P: number, XW: number, tokens: number, Cprev: number, S: number, C: number, tanhC: number, Hout: number, B: number, H: number): void;
  lstmCellBackward(S: number, Cprev: number, tanhC: number, dH: number, dHnext: number, dCnext: number, dZ: number, dCprev: number, B: number, H: number): void;
  transposeStepInto(src: number, rows: number, cols: number, dst: number, ldDst: number, col0: number, sums: number): void;
  scatterAddRows(src: number, rows: number, cols: number, tokens: number, dst: number): void;
}

let cellKernels: CellKernels | null = null;

/** Instantiates the SIMD kernels on the wasm backend's own memory (imported, so tensors are used in place). */
function loadCellKernels(backend: unknown): CellKernels {
  const memory = (backend as { wasm?: { asm?: { memory?: unknown } } }).wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error('the tfjs wasm backend does not expose its memory (tfjs-backend-wasm version changed?)');
  const bytes = readFileSync(new URL('./lstmCellKernels.wasm', import.meta.url));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return instance.exports as unknown as CellKernels;
}

/** Byte offset of a tensor's data in the wasm heap. */
function heapOffset(backend: WasmBackendLike, x: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(x).byteOffset;
}

/**
 * P (B, 4H), XW (B, 4H) or a table (V, 4H) with `tokens` (B int32), Cprev (B, H) → S (B, 4H), C, tanh C,
 * H (B, H): see lstmCellForward in lstmCellKernels.as.ts.
 */
function lstmCellForwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { P, XW, tokens, Cprev } = args.inputs as { P: tf.TensorInfo; XW: tf.TensorInfo; tokens?: tf.TensorInfo; Cprev: tf.TensorInfo };
  const [B, G] = P.shape;
  const H = G / 4;
  const outs = [backend.makeOutput([B, G], 'float32'), ...[0, 1, 2].map(() => backend.makeOutput([B, H], 'float32'))];
  const at = (x: tf.TensorInfo | undefined) => (x ? heapOffset(backend, x) : 0);
  cellKernels!.lstmCellForward(at(P), at(XW), at(tokens), at(Cprev), ...(outs.map(at) as [number, number, number, number]), B, H);
  return outs;
}

/** S, Cprev, tanh C, dH, [dHnext, dCnext] → dZ (B, 4H), dCprev (B, H): see lstmCellBackward in lstmCellKernels.as.ts. */
function lstmCellBackwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const [B, G] = inputs.S!.shape;
  const H = G / 4;
  const dZ = backend.makeOutput([B, G], 'float32');
  const dCprev = backend.makeOutput([B, H], 'float32');
  const at = (x: tf.TensorInfo | undefined) => (x ? heapOffset(backend, x) : 0);
  const [S, Cprev, tanhC, dH, dHnext, dCnext] = ['S', 'Cprev', 'tanhC', 'dH', 'dHnext', 'dCnext'].map((n) => at(inputs[n]));
  cellKernels!.lstmCellBackward(S, Cprev, tanhC, dH, dHnext, dCnext, at(dZ), at(dCprev), B, H);
  return [dZ, dCprev];
}

/** Steps '0' … 'n−1', each (rows, cols) → (cols, n·rows) = the transpose of their row concatenation, and its row sums (cols). */
function transposeStepsWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const steps = Object.keys(args.inputs)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => args.inputs[k] as tf.TensorInfo);
  const [rows, cols] = steps[0].shape;
  const n = steps.length * rows;
  const out = backend.makeOutput([cols, n], 'float32');
  const sums = backend.makeOutput([cols], 'float32');
  backend.typedArrayFromHeap(sums).fill(0);
  const [dst, sumsAt] = [out, sums].map((x) => heapOffset(backend, x));
  steps.forEach((step, t) => cellKernels!.transposeStepInto(heapOffset(backend, step), rows, cols, dst, n, t * rows, sumsAt));
  return [out, sums];
}

/** Steps '0' … 'n−1' (rows, cols), indices (n·rows) int32 → (numRows, cols): row r of step t added to row indices[t·rows + r]. */
function scatterAddStepsWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { indices, ...rest } = args.inputs as Record<string, tf.TensorInfo>;
  const steps = Object.keys(rest)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => rest[k]);
  const [rows, cols] = steps[0].shape;
  const out = backend.makeOutput([(args.attrs as { numRows: number }).numRows, cols], 'float32');
  backend.typedArrayFromHeap(out).fill(0);
  const [dst, tokens] = [out, indices].map((x) => heapOffset(backend, x));
  steps.forEach((step, t) => cellKernels!.scatterAddRows(heapOffset(backend, step), rows, cols, tokens + 4 * t * rows, dst));
  return out;
}

/** x (rows, cols) → its transpose (cols, rows); cols a multiple of 4. */
function transposeWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const [rows, cols] = x.shape;
  const out = backend.makeOutput([cols, rows], 'float32');
  cellKernels!.transposeStepInto(heapOffset(backend, x), rows, cols, heapOffset(backend, out), rows, 0, 0);
  return out;
}

let registered = false;

function useWasmKernels(x: tf.Tensor): boolean {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return false;
  if (!registered) {
    cellKernels = loadCellKernels(tf.backend());
    for (const [kernelName, kernelFunc] of [
      [SPLIT, splitColumnsWasm],
      [CELL_FORWARD, lstmCellForwardWasm],
      [CELL_BACKWARD, lstmCellBackwardWasm],
      [TRANSPOSE_STEPS, transposeStepsWasm],
      [SCATTER_STEPS, scatterAddStepsWasm],
      [TRANSPOSE, transposeWasm],
    ] as const) {
      if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    }
    registered = true;
  }
  return true;
}

/** x (rows, n·w) → n tensors (rows, w): the column blocks of x, left to right. Not differentiable. */
export function splitColumns(x: tf.Tensor2D, n: number): tf.Tensor2D[] {
  if (x.shape[1] % n !== 0) throw new Error(`splitColumns: ${x.shape[1]} columns do not split into ${n} parts`);
  if (!useWasmKernels(x)) return tf.split(x, n, 1);
  return tf.engine().runKernel(SPLIT, { x }, { numSplits: n }) as unknown as tf.Tensor2D[];
}

/** x (n·rows, cols) → n tensors (rows, cols): consecutive row blocks (e.g. the time steps of a time-major matrix). */
export function splitRows(x: tf.Tensor2D, n: number): tf.Tensor2D[] {
  const [total, cols] = x.shape;
  if (total % n !== 0) throw new Error(`splitRows: ${total} rows do not split into ${n} parts`);
  const rows = total / n;
  // row blocks of a row-major matrix are column blocks of its (1, total·cols) view
  return splitColumns(tf.reshape(x, [1, total * cols]), n).map((part) => tf.reshape(part, [rows, cols]));
}

/** Whether lstmCellForwardKernel / lstmCellBackwardKernel can run on gates like `gates` (B, 4H). */
export function cellKernelsFor(gates: tf.Tensor2D): boolean {
  return gates.shape[1] % 16 === 0 && useWasmKernels(gates);
}

/**
 * The wasm kernel of lstmCellForward (fusedLstm.ts): [S, C, tanh C, H]. The step's input projection is
 * `XW` (B, 4H), or with `tokens` (B int32) the rows of the table `XW` picked by them. Only where
 * cellKernelsFor(P).
 */
export function lstmCellForwardKernel(
  P: tf.Tensor2D,
  XW: tf.Tensor2D,
  tokens: tf.Tensor1D | null,
  Cprev: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const inputs: tf.NamedTensorMap = tokens ? { P, XW, tokens, Cprev } : { P, XW, Cprev };
  return tf.engine().runKernel(CELL_FORWARD, inputs) as unknown as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
}

/**
 * tf.transpose of a matrix. On wasm, by 4×4 SIMD blocks: tfjs's 2-D Transpose there is ≈ 4× slower
 * (and slower still for (4H, H), whose rows alias in cache at H = 256).
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  if (x.shape[1] % 4 !== 0 || !useWasmKernels(x)) return tf.transpose(x);
  return tf.engine().runKernel(TRANSPOSE, { x }) as unknown as tf.Tensor2D;
}

/** The wasm kernel of lstmCellBackward (fusedLstm.ts): [dZ, dCprev]. Only where cellKernelsFor(S). */
export function lstmCellBackwardKernel(
  S: tf.Tensor2D,
  Cprev: tf.Tensor2D,
  tanhC: tf.Tensor2D,
  dH: tf.Tensor2D,
  dHnext: tf.Tensor2D | null,
  dCnext: tf.Tensor2D | null,
): [tf.Tensor2D, tf.Tensor2D] {
  const inputs: Record<string, tf.Tensor2D> = { S, Cprev, tanhC, dH };
  if (dHnext) inputs.dHnext = dHnext;
  if (dCnext) inputs.dCnext = dCnext;
  return tf.engine().runKernel(CELL_BACKWARD, inputs) as unknown as [tf.Tensor2D, tf.Tensor2D];
}

/**
 * Per-step gradients (each (rows, cols), time-major) → [the transpose of their concatenation
 * (cols, steps·rows), its row sums (cols)]: dZallᵀ for the weight-gradient matMul and the bias gradient.
 */
export function transposeSteps(steps: tf.Tensor2D[]): [tf.Tensor2D, tf.Tensor1D] {
  if (!cellKernelsFor(steps[0])) {
    const t = tf.transpose(tf.concat(steps)) as tf.Tensor2D;
    return [t, tf.sum(t, 1) as tf.Tensor1D];
  }
  return tf.engine().runKernel(TRANSPOSE_STEPS, namedSteps(steps)) as unknown as [tf.Tensor2D, tf.Tensor1D];
}

/**
 * The gradient of a row gather (layer 0's step inputs, StepInput in fusedLstm.ts): per-step gradients (each (rows, cols)) scatter-added into a
 * (numRows, cols) table at the rows picked by `indices` (time-major, as gathered).
 */
export function scatterAddSteps(steps: tf.Tensor2D[], indices: Int32Array, numRows: number): tf.Tensor2D {
  const [rows, cols] = steps[0].shape;
  if (indices.length !== steps.length * rows) throw new Error(`scatterAddSteps: ${indices.length} indices for ${steps.length} steps of ${rows} rows`);
  checkTokens(indices, numRows);
  const index = tf.tensor1d(indices, 'int32');
  if (!cellKernelsFor(steps[0])) return tf.scatterND(tf.reshape(index, [indices.length, 1]), tf.concat(steps), [numRows, cols]);
  return tf.engine().runKernel(SCATTER_STEPS, { ...namedSteps(steps), indices: index }, { numRows }) as unknown as tf.Tensor2D;
}

/** Kernel inputs are named: steps become '0' … 'n−1'. */
function namedSteps(steps: tf.Tensor2D[]): tf.NamedTensorMap {
  return Object.fromEntries(steps.map((x, t) => [String(t), x]));
}
