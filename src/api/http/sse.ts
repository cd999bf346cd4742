// Server-Sent Events on a hijacked fastify reply: backpressure-aware writes, heartbeat comments
// (so proxies and clients see a live connection), and an AbortSignal for the client going away.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface SseMessage {
  id?: number | string;
  event?: string;
  data: unknown;
}

export class SseStream {
  private readonly controller = new AbortController();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;

  constructor(
    req: FastifyRequest,
    private readonly reply: FastifyReply,
    heartbeatMs: number,
    retryMs = 2000,
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: do not buffer the stream
    });
    raw.write(`retry: ${retryMs}\n\n`);
    this.heartbeat = setInterval(() => this.comment('heartbeat'), heartbeatMs);
    const gone = () => {
      if (!raw.writableFinished) this.controller.abort('client disconnected');
      this.dispose();
    };
    // the response's close also fires when the client goes away (no socket listener: sockets
    // outlive a response under keep-alive)
    raw.on('close', gone);
    // a client that left before the stream started (while the route awaited Redis): that close
    // has fired already, and will not again. (Not req.raw.destroyed: a request whose body was
    // read is destroyed too, with its client still there.)
    if (raw.destroyed || req.raw.socket?.destroyed) gone();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async send(m: SseMessage): Promise<void> {
    let out = '';
    if (m.id !== undefined) out += `id: ${m.id}\n`;
    if (m.event) out += `event: ${m.event}\n`;
    const data = typeof m.data === 'string' ? m.data : JSON.stringify(m.data);
    for (const line of data.split('\n')) out += `data: ${line}\n`;
    await this.write(`${out}\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.reply.raw.write(`: ${text}\n\n`);
  }

  private write(chunk: string): Promise<void> {
    if (this.closed || this.reply.raw.destroyed || this.reply.raw.writableEnded) return Promise.resolve();
    if (this.reply.raw.write(chunk)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.reply.raw.off('drain', done);
        this.reply.raw.off('close', done);
        resolve();
      };
      this.reply.raw.once('drain', done);
      this.reply.raw.once('close', done);
    });
  }

  private dispose(): void {
    this.closed = true;
    clearInterval(this.heartbeat);
  }

  end(): void {
    if (!this.closed) {
      this.dispose();
      this.reply.raw.end();
    }
  }
}

/** True when the client asked for an event stream (Accept: text/event-stream, not q=0). */
export function wantsEventStream(req: FastifyRequest): boolean {
  const accept = String(req.headers.accept ?? '');
  return accept.split(',').some((part) => {
    const [type, ...params] = part.trim().split(';');
    if (type.trim().toLowerCase() !== 'text/event-stream') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  });
}
