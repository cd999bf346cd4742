// One checkpoint format for both kinds and both engines: a JSON header (spec, vocabulary,
// epoch, RNG position, parameter table) followed by the named float32 weights.
//   version 3: "LSTMCKPT" | u32 3 | u32 header bytes | SHA-256 of everything after it (32 bytes) |
//              header JSON | zero pad to 4 | float32 LE data
//   version 2: "LSTMCKPT" | u32 2 | u32 header bytes | header JSON (with `weightsSha256`, the data's) | pad | data
//   version 1: as 2 without a digest
// Version 3's digest covers the header too, so a flipped or overwritten byte anywhere after the
// first 16 is found on reading (DamagedCheckpointError); versions 1 and 2 still read.
// Early stopping's best weights, when a checkpoint has them (bestWeights), follow the weights in the
// data section, with their own table (`bestParams`) in the header; a reader that predates them
// ignores both.
import { createHash } from 'node:crypto';
import type { ModelConfig, Weights } from '../model/engine.js';
import { paramShapes } from '../model/params.js';
import type { RngState } from '../text/rng.js';
import type { JobSpec } from './spec.js';

const MAGIC = 'LSTMCKPT';
const VERSION = 3;
const READABLE = [1, 2, 3];
const DIGEST_BYTES = 32;

/** Where early stopping stands (the trainer's, train.earlyStopping); kept in checkpoints so a resumed job counts on. */
export interface EarlyStoppingState {
  bestValidPerplexity: number | null;
  bestEpoch: number;
}

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
  /** Early stopping's best validation epoch so far (jobs with train.earlyStopping). */
  earlyStopping?: EarlyStoppingState;
  engine: string;
  backend: string;
  weights: Weights;
  /**
   * Early stopping's best epoch's weights while they are not `weights` (a job still running past its
   * best epoch), so that a job resumed from this checkpoint can still end with them.
   */
  bestWeights?: Weights;
}

type ParamTable = { name: string; shape: number[]; offset: number; length: number }[];

interface Header extends Omit<Checkpoint, 'weights' | 'bestWeights'> {
  params: ParamTable;
  /** The table of bestWeights (offsets in the same data section, after the weights). */
  bestParams?: ParamTable;
  /** Version 2 only: SHA-256 (hex) of the float32 data section. */
  weightsSha256?: string;
}

/** A checkpoint this build cannot use (an unknown version, another model's parameters). */
export class CheckpointError extends Error {}
/** A checkpoint whose bytes are damaged: truncated, overwritten, not a checkpoint at all. */
export class DamagedCheckpointError extends CheckpointError {}

export function serializeCheckpoint(ckpt: Checkpoint): Buffer {
  let offset = 0;
  const table = (weights: Weights): ParamTable =>
    Object.entries(weights).map(([name, t]) => {
      const p = { name, shape: t.shape, offset, length: t.data.length };
      offset += t.data.length;
      return p;
    });
  const { weights, bestWeights, ...rest } = ckpt;
  const params = table(weights);
  const bestParams = bestWeights ? table(bestWeights) : undefined;
  const data = Buffer.alloc(offset * 4);
  const place = (tensors: Weights, entries: ParamTable) => {
    for (const p of entries) {
      const src = tensors[p.name].data;
      Buffer.from(src.buffer, src.byteOffset, src.byteLength).copy(data, p.offset * 4);
    }
  };
  place(weights, params);
  if (bestWeights) place(bestWeights, bestParams!);
  const header = Buffer.from(JSON.stringify({ ...rest, perplexity: numberOrNull(rest.perplexity), params, ...(bestParams ? { bestParams } : {}) }), 'utf8');
  const start = 16 + DIGEST_BYTES;
  const pad = (4 - ((start + header.length) % 4)) % 4;
  const out = Buffer.alloc(start + header.length + pad + data.length);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(header.length, 12);
  header.copy(out, start);
  data.copy(out, start + header.length + pad);
  createHash('sha256').update(out.subarray(start)).digest().copy(out, 16);
  return out;
}

export function deserializeCheckpoint(buf: Buffer): Checkpoint {
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw new DamagedCheckpointError('not an lstm-trainer checkpoint (bad magic)');
  const version = buf.readUInt32LE(8);
  if (!READABLE.includes(version)) throw new CheckpointError(`unsupported checkpoint version ${version} (this build reads ${READABLE.join(', ')})`);
  try {
    return readBody(buf, version);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    // whatever the damage made of the header (a negative length, a missing field): damage
    throw new DamagedCheckpointError(`corrupt checkpoint (${(e as Error).message})`);
  }
}

function readBody(buf: Buffer, version: number): Checkpoint {
  const headerLen = buf.readUInt32LE(12);
  const start = version >= 3 ? 16 + DIGEST_BYTES : 16;
  if (start + headerLen > buf.length) throw new DamagedCheckpointError('truncated checkpoint (header)');
  if (version >= 3 && !createHash('sha256').update(buf.subarray(start)).digest().equals(buf.subarray(16, start))) {
    throw new DamagedCheckpointError('damaged checkpoint: its bytes do not match their SHA-256 digest');
  }
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', start, start + headerLen));
  } catch {
    throw new DamagedCheckpointError('corrupt checkpoint header');
  }
  const base = start + headerLen + ((4 - ((start + headerLen) % 4)) % 4);
  let expected: ReturnType<typeof paramShapes>;
  try {
    expected = paramShapes(header.config);
  } catch {
    throw new DamagedCheckpointError('corrupt checkpoint header (model configuration)');
  }
  /** The tensors of a parameter table: every one of the model's, each of its shape. */
  const read = (table: ParamTable, what: string): Weights => {
    const weights: Weights = {};
    for (const p of table) {
      const want = expected[p.name];
      if (!want || want.join(',') !== p.shape.join(',')) throw new CheckpointError(`checkpoint ${what} ${p.name} has unexpected shape [${p.shape}]`);
      const n = want.reduce((a, b) => a * b, 1);
      if (!Number.isInteger(p.offset) || p.offset < 0 || p.length !== n)
        throw new DamagedCheckpointError(`corrupt checkpoint header (${what} ${p.name}'s place in the data)`);
      const at = base + p.offset * 4;
      if (at + p.length * 4 > buf.length) throw new DamagedCheckpointError('truncated checkpoint (weights)');
      // copy into an aligned array
      const data = new Float32Array(p.length);
      new Uint8Array(data.buffer).set(buf.subarray(at, at + p.length * 4));
      weights[p.name] = { shape: p.shape, data };
    }
    const missing = Object.keys(expected).filter((n) => !(n in weights));
    if (missing.length) throw new CheckpointError(`checkpoint lacks ${what}s ${missing.join(', ')}`);
    return weights;
  };
  const weights = read(header.params ?? [], 'parameter');
  const bestWeights = header.bestParams ? read(header.bestParams, 'best-epoch parameter') : undefined;
  if (version === 2) {
    if (typeof header.weightsSha256 !== 'string') throw new DamagedCheckpointError('corrupt checkpoint header (no weights digest)');
    if (createHash('sha256').update(buf.subarray(base)).digest('hex') !== header.weightsSha256) {
      throw new DamagedCheckpointError('damaged checkpoint: the weights do not match their SHA-256 digest');
    }
  }

  const { params, bestParams, weightsSha256, ...rest } = header;
  void params;
  void bestParams;
  void weightsSha256;
  return { ...rest, perplexity: rest.perplexity ?? NaN, weights, ...(bestWeights ? { bestWeights } : {}) };
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
