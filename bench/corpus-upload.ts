// Uploading a large corpus (a figure, not a test): the time of POST /v1/corpora for a file of
// --mb megabytes (default 50) streamed to a real `lstm-trainer api` process, and that process's
// resident memory (VmRSS, sampled every 20 ms) before and during the upload — the body is read
// chunk by chunk into Redis, so the peak should stay far below the file's size. Then the first job
// that names the corpus (the api measures it under the tokenizer once: reads it back from Redis and
// counts its tokens) and a second one (the figures are cached with the corpus).
//
//   npx tsx bench/corpus-upload.ts            # 50 MB
//   npx tsx bench/corpus-upload.ts --mb 10
//
// Uses the Redis at REDIS_URL (default 127.0.0.1:6379) under a private key prefix, deleted at the end.
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ApiProcess } from '../test/support/faults.js';
import { deletePrefix, REDIS_URL } from '../test/support/processes.js';

const { values: o } = parseArgs({ options: { mb: { type: 'string', default: '50' } } });
const targetBytes = Math.round(Number(o.mb) * 1024 * 1024);

const LINES = [
  'Однажды вечером, в 1895 году, Путешественник во Времени рассказал нам о своей машине.',
  'Der Zeitreisende erzählte uns von seiner Maschine; die Zeit ist die vierte Dimension.',
  'The Time Traveller (for so it will be convenient to speak of him) was expounding a recondite matter to us.',
];

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-corpus-bench-'));
  const file = path.join(dir, 'corpus.txt');
  const parts: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < targetBytes; i++) {
    const line = `${i} ${LINES[i % LINES.length]}\n`;
    parts.push(line);
    bytes += Buffer.byteLength(line);
  }
  writeFileSync(file, parts.join(''));
  const size = statSync(file).size;
  const prefix = `bench-corpus-${randomBytes(4).toString('hex')}`;
  const api = await ApiProcess.start({ REDIS_URL, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' });
  const pid = api.child.pid!;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const before = rssMb(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
    const t0 = performance.now();
    const res = await fetch(`${api.httpUrl}/v1/corpora`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(size) },
      body: Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>,
      duplex: 'half',
    } as RequestInit);
    const corpus = (await res.json()) as { id: string; bytes: number; characters: number };
    const ms = performance.now() - t0;
    clearInterval(sampler);
    if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${JSON.stringify(corpus)}`);
    console.log(
      `upload: ${(size / 1e6).toFixed(1)} MB (${corpus.characters} characters) in ${(ms / 1000).toFixed(2)} s = ${(size / 1e6 / (ms / 1000)).toFixed(1)} MB/s`,
    );
    console.log(`api RSS: ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB during the upload (+${(peak - before).toFixed(0)} MiB)`);

    for (const round of ['first', 'second']) {
      let peakJob = rssMb(pid);
      const s2 = setInterval(() => (peakJob = Math.max(peakJob, rssMb(pid))), 20);
      const t1 = performance.now();
      const r = await fetch(`${api.httpUrl}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: { corpus: { id: corpus.id }, tokenizer: 'chars', maxTokens: 100_000 }, train: { epochs: 1 } }),
      });
      const job = (await r.json()) as { id: string; data?: { totalTokens: number; vocabSize: number } };
      clearInterval(s2);
      console.log(
        `${round} job naming it (chars): HTTP ${r.status} in ${((performance.now() - t1) / 1000).toFixed(2)} s; ${job.data?.totalTokens} tokens, vocabulary ${job.data?.vocabSize}; api RSS peak ${peakJob.toFixed(0)} MiB`,
      );
    }
  } finally {
    await api.stop();
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
