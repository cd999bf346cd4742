// One checkpoint format for both kinds and both engines: a JSON header (spec, vocabulary,
// epoch, RNG position, parameter table) followed by the named float32 weights.
//   "LSTMCKPT" | u32 version | u32 header bytes | header JSON | zero pad to 4 | float32 LE data
import type { ModelConfig, Weights } from '../model/engine.js';
import { paramShapes } from '../model/params.js';
import type { RngState } from '../text/rng.js';
import type { JobSpec } from './spec.js';

const MAGIC = 'LSTMCKPT';
const VERSION = 1;

export interface Checkpoint {
  spec: JobSpec;
  config: ModelConfig;
  /** idxToToken of the corpus vocabulary. */
  vocab: string[];
  /** Completed epochs. */
  epoch: number;
  /** Data RNG position after `epoch` epochs, so a resumed run draws what an uninterrupted one would. */
  rngState: RngState;
  /** Training time so far, across resumes. */
  elapsedMs: number;
  /** Perplexity of the last completed epoch (NaN before the first). */
  perplexity: number;
  engine: string;
  backend: string;
  weights: Weights;
}

interface Header extends Omit<Checkpoint, 'weights'> {
  params: { name: string; shape: number[]; offset: number; length: number }[];
}

export class CheckpointError extends Error {}

export function serializeCheckpoint(ckpt: Checkpoint): Buffer {
  const params: Header['params'] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(ckpt.weights)) {
    params.push({ name, shape: t.shape, offset, length: t.data.length });
    offset += t.data.length;
  }
  const { weights, ...rest } = ckpt;
  const header = Buffer.from(JSON.stringify({ ...rest, perplexity: numberOrNull(rest.perplexity), params }), 'utf8');
  const pad = (4 - ((16 + header.length) % 4)) % 4;
  const out = Buffer.alloc(16 + header.length + pad + offset * 4);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(header.length, 12);
  header.copy(out, 16);
  const base = 16 + header.length + pad;
  for (const p of params) {
    const src = weights[p.name].data;
    Buffer.from(src.buffer, src.byteOffset, src.byteLength).copy(out, base + p.offset * 4);
  }
  return out;
}

export function deserializeCheckpoint(buf: Buffer): Checkpoint {
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw new CheckpointError('not an lstm-trainer checkpoint (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version !== VERSION) throw new CheckpointError(`unsupported checkpoint version ${version} (this build reads ${VERSION})`);
  const headerLen = buf.readUInt32LE(12);
  if (16 + headerLen > buf.length) throw new CheckpointError('truncated checkpoint (header)');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + headerLen));
  } catch {
    throw new CheckpointError('corrupt checkpoint header');
  }
  const base = 16 + headerLen + ((4 - ((16 + headerLen) % 4)) % 4);
  const expected = paramShapes(header.config);
  const weights: Weights = {};
  for (const p of header.params ?? []) {
    const want = expected[p.name];
    if (!want || want.join(',') !== p.shape.join(',')) throw new CheckpointError(`checkpoint parameter ${p.name} has unexpected shape [${p.shape}]`);
    const start = base + p.offset * 4;
    if (start + p.length * 4 > buf.length) throw new CheckpointError('truncated checkpoint (weights)');
    // copy into an aligned array
    const data = new Float32Array(p.length);
    new Uint8Array(data.buffer).set(buf.subarray(start, start + p.length * 4));
    weights[p.name] = { shape: p.shape, data };
  }
  const missing = Object.keys(expected).filter((n) => !(n in weights));
  if (missing.length) throw new CheckpointError(`checkpoint lacks parameters ${missing.join(', ')}`);
  const { params, ...rest } = header;
  return { ...rest, perplexity: rest.perplexity ?? NaN, weights };
}

function numberOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** A checkpoint's model on an engine, with its vocabulary: what generation needs. */
export async function modelFromCheckpoint(
  ckpt: Checkpoint,
  engine: import('../model/engine.js').EngineFactory,
): Promise<{ model: import('../model/engine.js').LstmModel; vocab: import('../text/corpus.js').Vocab }> {
  const { Vocab } = await import('../text/corpus.js');
  return { model: await engine.createModel(ckpt.config, ckpt.weights), vocab: Vocab.fromTokens(ckpt.vocab) };
}
