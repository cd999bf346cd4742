// Uploaded corpora (POST /v1/corpora): stored once in Redis under the service's key prefix, so every
// worker that reaches Redis reads them (no shared disk), and named by the SHA-256 of their bytes, so
// the same text uploaded twice is one corpus. Docs: docs/corpora.md.
//
//   P:corpus:<id>        hash: id, bytes, characters, preview, createdAt; counts:<tokenizer> (every token's
//                        count, counted while the upload streamed); fig:<tokenizer>:<minFreq> (cached figures)
//   P:corpus:<id>:text   string: the UTF-8 bytes
//   P:corpus:<id>:jobs   set: ids of the jobs that named it (DELETE is refused while one is queued/running)
//   P:corpus:<id>:owners hash: owner fingerprint → that key's upload time (ms); with API keys on a key
//                        sees only corpora it owns (src/jobs/upload-owners.ts, docs/service.md "Owners")
//   P:corpora            zset: id → upload time (ms), the list
//   P:corpus-upload:<r>  string: an upload in progress, appended chunk by chunk; renamed to
//                        P:corpus:<id>:text only when every byte was read and checked, so no reader
//                        ever sees half a corpus; it expires if the api dies mid-upload
import { createHash, randomBytes } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { CORPUS_ID_RE, SpecError } from '../train/spec.js';
import { corpusFigures, figuresFromCounts, TokenCounter, TOKENIZERS, type CorpusFigures, type TokenizerName } from '../text/tokenizers.js';
import { FailedPreconditionError, NotFoundError, PayloadTooLargeError } from './errors.js';
import type { Caller } from './owners.js';
import type { Keys } from './redis.js';
import type { JobService } from './types.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import { ownerAdded, UploadOwners } from './upload-owners.js';

export const DEFAULT_CORPUS_MAX_BYTES = 64 * 1024 * 1024;
/** Bytes gathered before one APPEND (fewer round trips than one per socket chunk). */
const APPEND_BYTES = 1024 * 1024;
const UPLOAD_TTL_SECONDS = 3600;
const PREVIEW_CHARS = 200;

export interface CorpusView {
  /** SHA-256 (hex) of the bytes. */
  id: string;
  bytes: number;
  /** Unicode code points. */
  characters: number;
  /** The first 200 characters. */
  preview: string;
  createdAt: string;
}

export function isCorpusId(id: unknown): id is string {
  return typeof id === 'string' && CORPUS_ID_RE.test(id);
}

export class CorpusStore {
  private readonly redis: ScriptedRedis;
  private readonly owners: UploadOwners;
  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
  ) {
    this.redis = withScripts(redis);
    this.owners = new UploadOwners(redis, (id) => keys.corpusOwners(id));
  }

  private meta(id: string): string {
    return `${this.keys.prefix}:corpus:${id}`;
  }
  private text(id: string): string {
    return `${this.keys.prefix}:corpus:${id}:text`;
  }
  private jobs(id: string): string {
    return `${this.keys.prefix}:corpus:${id}:jobs`;
  }
  private get index(): string {
    return `${this.keys.prefix}:corpora`;
  }

  /**
   * Reads an upload chunk by chunk: each chunk is hashed, checked as UTF-8 (a streaming decoder,
   * fatal) and appended to a temporary key; nothing of the body is held whole in the api's memory.
   * SpecError (400) for invalid UTF-8 or an empty body, PayloadTooLargeError (413) past maxBytes.
   * `owner` (keys on) becomes one of its owners; `created` then says whether it is new to that key.
   */
  async upload(body: AsyncIterable<Buffer | Uint8Array | string>, maxBytes: number, owner?: Caller): Promise<{ corpus: CorpusView; created: boolean }> {
    const tmp = `${this.keys.prefix}:corpus-upload:${randomBytes(8).toString('hex')}`;
    const hash = createHash('sha256');
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let bytes = 0;
    let characters = 0;
    let preview = '';
    // the three tokenizers' counts, gathered as the chunks are decoded: a job's figures never need
    // the text read back and tokenised on the api's event loop
    const counter = new TokenCounter();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const buf = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await this.redis.multi().append(tmp, buf).expire(tmp, UPLOAD_TTL_SECONDS).exec();
    };
    const countText = (text: string) => {
      // code points: UTF-16 units less the high surrogates (each pair is one code point)
      let high = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0xd800 && c <= 0xdbff) high++;
      }
      characters += text.length - high;
      counter.push(text);
      if (preview.length < PREVIEW_CHARS * 2) preview += text.slice(0, PREVIEW_CHARS * 2);
    };
    try {
      for await (const raw of body) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        bytes += chunk.length;
        if (bytes > maxBytes) throw new PayloadTooLargeError(`the corpus is larger than ${maxBytes} bytes (CORPUS_MAX_BYTES)`, maxBytes);
        hash.update(chunk);
        try {
          countText(decoder.decode(chunk, { stream: true }));
        } catch {
          throw new SpecError([{ field: 'body', message: `the corpus is not valid UTF-8 (an invalid byte sequence within its first ${bytes} bytes)` }]);
        }
        pending.push(Buffer.from(chunk)); // a copy: the stream may reuse its buffer
        pendingBytes += chunk.length;
        if (pendingBytes >= APPEND_BYTES) await flush();
      }
      try {
        countText(decoder.decode());
      } catch {
        throw new SpecError([{ field: 'body', message: 'the corpus is not valid UTF-8 (it ends inside a multi-byte character)' }]);
      }
      if (bytes === 0) throw new SpecError([{ field: 'body', message: 'the corpus is empty: send the text as the request body' }]);
      await flush();
      const id = hash.digest('hex');
      const createdAt = new Date();
      counter.end();
      const fields: Record<string, string> = {
        id,
        bytes: String(bytes),
        characters: String(characters),
        preview: [...preview].slice(0, PREVIEW_CHARS).join(''),
        createdAt: createdAt.toISOString(),
      };
      for (const t of TOKENIZERS) {
        const { counts, total } = counter.result(t);
        fields[`counts:${t}`] = JSON.stringify({ total, counts: [...counts] });
      }
      // commit: the text under its name, the record and the uploader's ownership, at once (one MULTI);
      // a corpus that exists already (the same bytes) is kept as it is, and the uploader becomes an
      // owner only while it is there (one script): a delete in between leaves no owner behind
      if ((await this.redis.exists(this.meta(id))) === 1) {
        await this.redis.del(tmp);
        const mine = owner ? await this.owners.addIfStored(this.meta(id), id, owner, createdAt.getTime()) : undefined;
        const corpus = mine === null ? null : await this.get(id, owner);
        if (corpus) return { corpus, created: !!mine?.added && !owner!.admin };
        // deleted meanwhile: uploaded again below would need the bytes, gone with tmp
        throw new FailedPreconditionError(`corpus ${id} was deleted while it was uploaded; upload it again`);
      }
      const tx = this.redis.multi().persist(tmp).rename(tmp, this.text(id)).hset(this.meta(id), fields).zadd(this.index, createdAt.getTime(), id);
      if (owner) this.owners.queueAdd(tx, id, owner, createdAt.getTime());
      const res = await tx.exec();
      // a key sees its own upload time: the corpus's, unless its other upload of these bytes came first
      const at = owner && !owner.admin && res ? ownerAdded(res, 4, createdAt.getTime()).at : undefined;
      return { corpus: toView(at === undefined ? fields : { ...fields, createdAt: new Date(at).toISOString() }), created: true };
    } catch (e) {
      await this.redis.del(tmp).catch(() => undefined);
      throw e;
    }
  }

  /** The corpus as `as` sees it: null when there is none or it is not theirs (keys on: owners). */
  async get(id: string, as?: Caller): Promise<CorpusView | null> {
    if (!isCorpusId(id)) return null;
    return this.read(id, as ? await this.owners.uploadedAt(id, as) : undefined, as);
  }

  private async read(id: string, at: number | undefined, as?: Caller): Promise<CorpusView | null> {
    if (as && !as.admin && at === undefined) return null;
    const [cid, bytes, characters, preview, createdAt] = await this.redis.hmget(this.meta(id), 'id', 'bytes', 'characters', 'preview', 'createdAt');
    // a key sees its own upload time (the first upload's would tell it another key sent the bytes)
    return cid
      ? toView({
          id: cid,
          bytes: bytes!,
          characters: characters!,
          preview: preview ?? '',
          createdAt: at === undefined ? createdAt! : new Date(at).toISOString(),
        })
      : null;
  }

  async mustGet(id: string, as?: Caller): Promise<CorpusView> {
    const c = await this.get(id, as);
    if (!c) throw new NotFoundError(`corpus ${String(id).slice(0, 70)} not found`);
    return c;
  }

  /** Newest first; with keys on, the caller's own (by its upload time; admins: all). */
  async list(limit = 100, as?: Caller): Promise<CorpusView[]> {
    if (!as || as.admin) {
      const ids = await this.redis.zrevrange(this.index, 0, Math.max(0, limit - 1));
      const out = await Promise.all(ids.map((id) => this.get(id)));
      return out.filter((c): c is CorpusView => c !== null);
    }
    // every id checked against the owners (corpora are few: one pipelined read per page of the list)
    const mine = (await this.owners.visible(await this.redis.zrevrange(this.index, 0, -1), as)).sort((a, b) => b.at! - a.at!).slice(0, Math.max(0, limit));
    const out = await Promise.all(mine.map((m) => this.read(m.id, m.at, as)));
    return out.filter((c): c is CorpusView => c !== null);
  }

  /** The corpus's text (workers; the api only to measure it once per tokenizer). */
  async readText(id: string): Promise<string | null> {
    const buf = await this.redis.getBuffer(this.text(id));
    return buf ? buf.toString('utf8') : null;
  }

  /** The corpus's figures under a tokenizer: computed once (reading the text) and kept with the corpus. */
  async figures(id: string, tokenizer: TokenizerName, minFreq: number): Promise<CorpusFigures> {
    const field = `fig:${tokenizer}:${minFreq}`;
    const [cached, counted] = await this.redis.hmget(this.meta(id), field, `counts:${tokenizer}`);
    if (cached) return JSON.parse(cached) as CorpusFigures;
    if (counted) {
      const c = JSON.parse(counted) as { total: number; counts: [string, number][] };
      const fig = figuresFromCounts({ total: c.total, counts: new Map(c.counts) }, minFreq);
      if ((await this.redis.exists(this.meta(id))) === 1) await this.redis.hset(this.meta(id), field, JSON.stringify(fig));
      return fig;
    }
    const text = await this.readText(id);
    if (text === null) throw new NotFoundError(`corpus ${id} not found`);
    const fig = corpusFigures(text, tokenizer, minFreq);
    if ((await this.redis.exists(this.meta(id))) === 1) await this.redis.hset(this.meta(id), field, JSON.stringify(fig));
    return fig;
  }

  /** Records that a job names the corpus (DELETE checks these jobs' states). */
  async addJob(id: string, jobId: string): Promise<void> {
    await this.redis.sadd(this.jobs(id), jobId);
  }

  /**
   * Deletes the corpus, unless a queued or running job names it (FailedPreconditionError: 409).
   * `stateOf` reads a job's state as `as` sees it (null: the job is gone, or not theirs).
   *
   * With keys on, a key's DELETE takes away its ownership, and the stored corpus goes only with its
   * last owner (an admin's DELETE removes it for every owner). Refused (409) while a queued or
   * running job of the caller's names it (named in the answer), and, when the stored text would go,
   * while any job does (another key's are counted, not named).
   */
  async delete(id: string, stateOf: (jobId: string, as?: Caller) => Promise<string | null>, as?: Caller): Promise<CorpusView> {
    const corpus = await this.mustGet(id, as);
    const users = await this.redis.smembers(this.jobs(id));
    const activeOf = async (who?: Caller) => {
      const active: string[] = [];
      for (const j of users) {
        const s = await stateOf(j, who);
        if (s === 'queued' || s === 'running') active.push(j);
      }
      return active;
    };
    const mine = await activeOf(as);
    if (mine.length)
      throw new FailedPreconditionError(
        `corpus ${id} is used by ${mine.length} queued or running job(s) (${mine.slice(0, 5).join(', ')}); delete it after they finish or cancel them`,
      );
    const owner = as && !as.admin ? as : undefined;
    // one script each time: the caller's ownership goes, and the corpus with it when no owner is
    // left, so an upload by another key in between keeps it (or stores it anew), never loses it
    const remove = (mayGo: boolean) =>
      this.redis.lstmDeleteCorpus(this.meta(id), this.text(id), this.jobs(id), this.keys.corpusOwners(id), this.index, owner?.key ?? '', id, mayGo ? '1' : '0');
    // others own it too: only this key's ownership goes (an admin's, or any with keys off, removes it)
    if ((await remove(!owner)) !== 'last') return corpus;
    // the caller is its last owner: the text would go, so no other key's job may use it
    const others = (await activeOf(undefined)).length;
    if (others) throw new FailedPreconditionError(`corpus ${id} is used by ${others} queued or running job(s) of other keys; delete it after they finish`);
    await remove(true);
    return corpus;
  }
}

function toView(h: Record<string, string>): CorpusView {
  return { id: h.id, bytes: Number(h.bytes), characters: Number(h.characters), preview: h.preview ?? '', createdAt: h.createdAt };
}

/**
 * What CorpusStore.delete asks of the jobs that used a corpus: a job's state as `as` sees it, null
 * when it is gone or not theirs — one reader for the HTTP route and the gRPC call.
 */
export function jobStateReader(service: JobService): (jobId: string, as?: Caller) => Promise<string | null> {
  return async (jobId, as) => {
    try {
      return (await service.get(jobId, { as })).state;
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  };
}
