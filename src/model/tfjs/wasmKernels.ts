// Two data-movement kernels for the wasm backend, where tfjs's own are the bottleneck of an LSTM step.
//
// - Slice (and so Split/Unstack) first copies the WHOLE input out of the wasm heap for every slice it
//   makes (readSync): splitting the (B, 4H) gate matrix costs 4 full copies per step, and splitting a
//   (T·B, H) gradient into its T steps costs T full copies (measured: 24 ms for T = 35, H = 256).
// - Gather walks its output element by element: ~1 ms for a (32, 1024) block of rows.
// These kernels read the input in place (a view on the heap) and write each output once. On other
// backends the functions fall back to tf.split / tf.gather, which do not have those costs.
import * as tf from '@tensorflow/tfjs';

const SPLIT = 'LstmTrainerSplitColumns';
const GATHER = 'LstmTrainerGatherRowBlocks';

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

/** table (V, N), indices (n·rows) → n × (rows, N): block j holds table rows indices[j·rows … (j+1)·rows). */
function gatherRowBlocksWasm(args: KernelArgs): tf.TensorInfo[] {
  const table = args.inputs.table as tf.TensorInfo;
  const backend = args.backend as WasmBackendLike;
  const { indices, numBlocks } = args.attrs as unknown as { indices: Int32Array; numBlocks: number };
  const [V, N] = table.shape;
  const rows = indices.length / numBlocks;
  for (const i of indices) if (i < 0 || i >= V) throw new Error(`gatherRowBlocks: index ${i} is not in [0, ${V - 1}]`);
  const outs = Array.from({ length: numBlocks }, () => backend.makeOutput([rows, N], 'float32'));
  const src = backend.typedArrayFromHeap(table);
  outs.forEach((out, j) => {
    const dst = backend.typedArrayFromHeap(out);
    for (let r = 0; r < rows; r++) {
      const i = indices[j * rows + r];
      dst.set(src.subarray(i * N, (i + 1) * N), r * N);
    }
  });
  return outs;
}

let registered = false;

function useWasmKernels(x: tf.Tensor): boolean {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return false;
  if (!registered) {
    for (const [kernelName, kernelFunc] of [
      [SPLIT, splitColumnsWasm],
      [GATHER, gatherRowBlocksWasm],
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

/**
 * Rows of `table` picked by `indices`, cut into `n` consecutive blocks: with time-major token ids,
 * block t is step t's rows (a row gather = the product of one-hot inputs with `table`). Not differentiable.
 */
export function gatherRowBlocks(table: tf.Tensor2D, indices: Int32Array, n: number): tf.Tensor2D[] {
  if (indices.length % n !== 0) throw new Error(`gatherRowBlocks: ${indices.length} indices do not split into ${n} blocks`);
  if (!useWasmKernels(table)) return splitRows(tf.gather(table, tf.tensor1d(indices, 'int32')), n);
  return tf.engine().runKernel(GATHER, { table }, { indices: indices as unknown as number[], numBlocks: n }) as unknown as tf.Tensor2D[];
}
