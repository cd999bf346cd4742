// Splitting a matrix into equal column blocks, cheaply on the wasm backend.
//
// tfjs-backend-wasm's Slice (and so Split/Unstack) first copies the WHOLE input out of the wasm heap
// for every slice it makes (readSync), so splitting the (B, 4H) gate matrix costs 4 full copies plus
// 4 heap allocations per step, and splitting a (T·B, H) gradient into T steps costs T full copies
// (measured: 24 ms for T = 35, H = 256). This kernel reads the input in place (a view on the heap)
// and writes each block once. Other backends use tf.split, which does not have that cost.
import * as tf from '@tensorflow/tfjs';

const KERNEL = 'LstmTrainerSplitColumns';

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function splitColumnsWasm(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
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
    if (rows === 1) {
      dst.set(src.subarray(j * w, (j + 1) * w));
    } else {
      for (let r = 0; r < rows; r++) dst.set(src.subarray(r * cols + j * w, r * cols + (j + 1) * w), r * w);
    }
  });
  return outs;
}

let registered = false;

function ensureRegistered(): void {
  if (registered) return;
  if (!tf.getKernel(KERNEL, 'wasm')) tf.registerKernel({ kernelName: KERNEL, backendName: 'wasm', kernelFunc: splitColumnsWasm as unknown as tf.KernelFunc });
  registered = true;
}

/** x (rows, n·w) → n tensors (rows, w): the column blocks of x, left to right. Not differentiable. */
export function splitColumns(x: tf.Tensor2D, n: number): tf.Tensor2D[] {
  if (x.shape[1] % n !== 0) throw new Error(`splitColumns: ${x.shape[1]} columns do not split into ${n} parts`);
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32') return tf.split(x, n, 1);
  ensureRegistered();
  return tf.engine().runKernel(KERNEL, { x }, { numSplits: n }) as unknown as tf.Tensor2D[];
}

/** x (n·rows, cols) → n tensors (rows, cols): consecutive row blocks (e.g. the time steps of a time-major matrix). */
export function splitRows(x: tf.Tensor2D, n: number): tf.Tensor2D[] {
  const [total, cols] = x.shape;
  if (total % n !== 0) throw new Error(`splitRows: ${total} rows do not split into ${n} parts`);
  const rows = total / n;
  // row blocks of a row-major matrix are column blocks of its (1, total·cols) view
  return splitColumns(tf.reshape(x, [1, total * cols]), n).map((part) => tf.reshape(part, [rows, cols]));
}
