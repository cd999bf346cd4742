// An event stream whose client leaves before the stream starts (while the route still awaits its
// store) gives its per-client place back: the place is charged to the client's own address, not
// to "unknown", and nothing of it stays open after the job ends.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildHttpApp } from '../../../src/api/http/app.js';
import { StreamLimiter } from '../../../src/api/streams.js';
import { InMemoryJobService } from '../../support/in-memory-job-service.js';

/** A store whose reads take a while (a slow Redis round trip). */
class SlowStore extends InMemoryJobService {
  override async get(id: string) {
    await new Promise((r) => setTimeout(r, 300));
    return super.get(id);
  }
}

let app: FastifyInstance;
let port: number;
const service = new SlowStore();
const streams = new StreamLimiter(32);

before(async () => {
  app = await buildHttpApp({ service, apiKeys: [], streams, sseHeartbeatMs: 50 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as net.AddressInfo).port;
});
// (with the leak, close() would wait for the suspended handlers: give it 2 s)
after(() => Promise.race([app.close(), new Promise((r) => setTimeout(r, 2000).unref())]));

test('a client that leaves while the events route awaits the store releases its stream place', { timeout: 20_000 }, async () => {
  const { job } = await service.submit({ model: { kind: 'scratch', numHiddens: 8 }, train: { epochs: 2 } });
  for (let i = 0; i < 5; i++) {
    // the request, then the socket destroyed 50 ms later: before the slow get() answers
    await new Promise<void>((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.write(`GET /v1/jobs/${job.id}/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
        setTimeout(() => {
          sock.destroy();
          resolve();
        }, 50);
      });
      sock.on('error', () => resolve());
    });
  }
  // the routes finish their awaits, then see the client gone
  const deadline = Date.now() + 5000;
  while ((streams.count('ip:127.0.0.1') > 0 || service.openStreams > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(streams.count('ip:unknown'), 0, 'no place charged to an unknown address');
  assert.equal(streams.count('ip:127.0.0.1'), 0, 'every place given back');
  assert.equal(service.openStreams, 0, 'no watch left open');
});
