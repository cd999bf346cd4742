// Clients that hold resources: a request body trickled byte by byte (REQUEST_TIMEOUT_MS: 408 and the
// connection closed), more open event streams than MAX_STREAMS_PER_CLIENT (SSE and gRPC WatchJob /
// GenerateStream count together: 429 / RESOURCE_EXHAUSTED with Retry-After), and repeated failed
// authentications from one address (AUTH_FAIL_LIMIT per AUTH_FAIL_WINDOW_SECONDS: 429 /
// RESOURCE_EXHAUSTED, HTTP and gRPC counted together, other addresses unaffected). A real api process.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { REDIS_URL, TINY, deletePrefix, testEnv } from '../support/service.js';
import { bearer, trainerClient, type Client } from '../support/grpc-client.js';
import { ApiProcess } from '../support/faults.js';

const KEY = 'slow-key-aaaaaaaaaaaaaaaa';
const KEY2 = 'slow-key-bbbbbbbbbbbbbbbb';
const env = testEnv({
  REDIS_URL,
  // KEY2 is an admin key: it may watch KEY's job (owners), so its stream places can be counted apart
  API_KEYS: KEY,
  ADMIN_KEYS: KEY2,
  REQUEST_TIMEOUT_MS: '2000',
  MAX_STREAMS_PER_CLIENT: '3',
  AUTH_FAIL_LIMIT: '4',
  AUTH_FAIL_WINDOW_SECONDS: '60',
  LOG_LEVEL: 'warn',
  SHUTDOWN_DRAIN_MS: '0',
});
let api: ApiProcess;
let client: Client;
let jobId = '';

before(async () => {
  api = await ApiProcess.start(env);
  client = trainerClient(api.grpcPort);
  // no worker: the job stays queued, so its event streams stay open
  const res = await fetch(`${api.httpUrl}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(TINY),
  });
  jobId = ((await res.json()) as { id: string }).id;
});
after(async () => {
  client?.close();
  await api?.stop();
  await deletePrefix(env.QUEUE_PREFIX);
});

test('a body trickled one byte at a time: 408 and the connection closed after REQUEST_TIMEOUT_MS, the api unharmed', async () => {
  const { port } = new URL(api.httpUrl);
  const t0 = Date.now();
  const answer = await new Promise<string>((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1', () => {
      s.write(
        `POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"name":"`,
      );
    });
    let got = '';
    const drip = setInterval(() => !s.destroyed && s.write('x'), 300);
    const giveUp = setTimeout(() => s.destroy(), 20_000); // never closed: the assertion below fails
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp); // or it keeps this file's process alive for the rest of the 20 s
      resolve(got);
    });
  });
  const seconds = (Date.now() - t0) / 1000;
  assert.ok(seconds < 8, `the trickled request stayed open ${seconds} s`);
  assert.match(answer, /^HTTP\/1\.1 408/, JSON.stringify(answer.slice(0, 100)));
  assert.equal((await fetch(`${api.httpUrl}/healthz`)).status, 200);
});

/** An SSE stream of the job with `key`: its status, and a function that closes it. */
async function openSse(key: string): Promise<{ status: number; retryAfter: string | null; close: () => void }> {
  const ac = new AbortController();
  const res = await fetch(`${api.httpUrl}/v1/jobs/${jobId}/events`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${key}` },
    signal: ac.signal,
  });
  if (res.status !== 200) await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), close: () => ac.abort() };
}

/** A WatchJob call: 'open' once the server streams (the job's first event: it holds its place), else its status code. */
function watch(key: string): Promise<{ outcome: string; call: grpc.ClientReadableStream<unknown>; err?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const call = client.WatchJob({ job_id: jobId }, bearer(key)) as grpc.ClientReadableStream<unknown>;
    call.on('data', () => resolve({ outcome: 'open', call }));
    call.on('error', (err: grpc.ServiceError) => resolve({ outcome: grpc.status[err.code], call, err }));
  });
}

test('at most MAX_STREAMS_PER_CLIENT open event streams per client, SSE and gRPC together; closing one frees a place', async () => {
  const a = await openSse(KEY);
  const b = await openSse(KEY);
  const w1 = await watch(KEY);
  assert.deepEqual([a.status, b.status, w1.outcome], [200, 200, 'open']);
  // a fourth: refused over both APIs
  const c = await openSse(KEY);
  assert.equal(c.status, 429);
  assert.ok(Number(c.retryAfter) > 0);
  const w2 = await watch(KEY);
  assert.equal(w2.outcome, 'RESOURCE_EXHAUSTED');
  assert.equal(w2.err!.metadata.get('retry-after')[0], '5');
  const gen = await new Promise<string>((resolve) => {
    const s = client.GenerateStream({ job_id: jobId, prefix: 'time' }, bearer(KEY));
    s.on('data', () => {});
    s.on('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code]));
    s.on('end', () => resolve('OK'));
  });
  assert.equal(gen, 'RESOURCE_EXHAUSTED');
  // another client (the other key) has its own places
  const other = await openSse(KEY2);
  assert.equal(other.status, 200);
  // one closed: a place again
  a.close();
  await new Promise((r) => setTimeout(r, 300));
  const w3 = await watch(KEY);
  assert.equal(w3.outcome, 'open');
  for (const s of [b, other]) s.close();
  for (const w of [w1, w3]) w.call.cancel();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await openSse(KEY)).status, 200);
});

function getFrom(localAddress: string, key: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${api.httpUrl}/v1/jobs?limit=1`, { localAddress, agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
  });
}

test('repeated failed authentications from one address: 429 (Retry-After) for that address only, valid key or not; HTTP and gRPC count together', async () => {
  // 127.0.0.2 is another address on the loopback interface
  for (let i = 0; i < 4; i++) assert.equal((await getFrom('127.0.0.2', `wrong-${i}`)).status, 401);
  const blocked = await getFrom('127.0.0.2', 'wrong-5');
  assert.equal(blocked.status, 429);
  assert.ok(Number(blocked.retryAfter) > 0 && Number(blocked.retryAfter) <= 60, blocked.retryAfter);
  assert.equal((await getFrom('127.0.0.2', KEY)).status, 429, 'a guess cannot be confirmed while throttled');
  assert.equal((await getFrom('127.0.0.1', KEY)).status, 200, 'another address is not affected');
  // gRPC failures from 127.0.0.1 count for that address, and block HTTP from it too
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) {
    codes.push(
      await new Promise<string>((resolve) =>
        client.GetJob({ job_id: jobId }, bearer(`wrong-grpc-${i}`), (e: grpc.ServiceError | null) => {
          if (e?.code === grpc.status.RESOURCE_EXHAUSTED) assert.ok(Number(e.metadata.get('retry-after')[0]) > 0);
          resolve(e ? grpc.status[e.code] : 'OK');
        }),
      ),
    );
  }
  assert.deepEqual(codes, ['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RESOURCE_EXHAUSTED']);
  assert.equal((await getFrom('127.0.0.1', KEY)).status, 429);
  // health stays open
  assert.equal((await fetch(`${api.httpUrl}/healthz`)).status, 200);
});
