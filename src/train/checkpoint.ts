// One checkpoint format for both kinds and both engines: a JSON header (spec, vocabulary,
// epoch, RNG position, parameter table) followed by the named float32 weights.
//   "LSTMCKPT" | u32 version | u32 header bytes | header JSON | zero pad to 4 | float32 LE data
// Version 2 adds `weightsSha256` to the header (SHA-256 of the data section), so a flipped or
// overwritten byte anywhere is found on reading (CheckpointError "damaged"); version 1 still reads.
import { createHash } from 'node:crypto';
import type { ModelConfig, Weights } from '../model/engine.js';
import { paramShapes } from '../model/params.js';
import type { RngState } from '../text/rng.js';
import type { JobSpec } from './spec.js';

const MAGIC = 'LSTMCKPT';
const VERSION = 2;
const READABLE = [1, 2];

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
  /** Version 2: SHA-256 (hex) of the float32 data section. */
  weightsSha256?: string;
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
  const data = Buffer.alloc(offset * 4);
  for (const p of params) {
    const src = weights[p.name].data;
    Buffer.from(src.buffer, src.byteOffset, src.byteLength).copy(data, p.offset * 4);
  }
  const weightsSha256 = createHash('sha256').update(data).digest('hex');
  const header = Buffer.from(JSON.stringify({ ...rest, perplexity: numberOrNull(rest.perplexity), params, weightsSha256 }), 'utf8');
  const pad = (4 - ((16 + header.length) % 4)) % 4;
  const out = Buffer.alloc(16 + header.length + pad + data.length);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(header.length, 12);
  header.copy(out, 16);
  data.copy(out, 16 + header.length + pad);
  return out;
}

export function deserializeCheckpoint(buf: Buffer): Checkpoint {
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw new CheckpointError('not an lstm-trainer checkpoint (bad magic)');
  const version = buf.readUInt32LE(8);
  if (!READABLE.includes(version)) throw new CheckpointError(`unsupported checkpoint version ${version} (this build reads ${READABLE.join(' and ')})`);
  const headerLen = buf.readUInt32LE(12);
  if (16 + headerLen > buf.length) throw new CheckpointError('truncated checkpoint (header)');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + headerLen));
  } catch {
    throw new CheckpointError('corrupt checkpoint header');
  }
  const base = 16 + headerLen + ((4 - ((16 + headerLen) % 4)) % 4);
  let expected: ReturnType<typeof paramShapes>;
  try {
    expected = paramShapes(header.config);
  } catch {
    throw new CheckpointError('corrupt checkpoint header (model configuration)');
  }
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
  if (version >= 2) {
    if (typeof header.weightsSha256 !== 'string') throw new CheckpointError('corrupt checkpoint header (no weights digest)');
    if (createHash('sha256').update(buf.subarray(base)).digest('hex') !== header.weightsSha256) {
      throw new CheckpointError('damaged checkpoint: the weights do not match their SHA-256 digest');
    }
  }

  const { params, weightsSha256, ...rest } = header;
  void weightsSha256;
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
