// A small valid model file for tests that upload one without training it first.
import { toSafetensors } from '../../src/train/export.js';

/**
 * A scratch model as safetensors (vocabulary <unk> a b, 2 hidden units, every weight `fill`): a
 * valid upload for POST /v1/models and UploadModel; each `fill` is another file, so another model.
 */
export function tinyModelFile(fill: number): Buffer {
  const V = 3;
  const H = 2;
  const t = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const g of ['i', 'f', 'o', 'c']) Object.assign(tensors, { [`W_x${g}`]: t([V, H]), [`W_h${g}`]: t([H, H]), [`b_${g}`]: t([H]) });
  Object.assign(tensors, { W_hq: t([H, V]), b_q: t([V]) });
  return toSafetensors(tensors, { vocab: JSON.stringify(['<unk>', 'a', 'b']) });
}
