// @ts-check
// The one Server-Sent Events reader of the project, over fetch (EventSource cannot send an
// Authorization header): the dashboard's api.js and the CLI's src/cli/sse-client.ts both use it.
// No DOM here, so it runs in the browser and in Node alike.

/** @typedef {{ event: string, data: string, id: string }} SseEvent */

/** Incremental parser of a text/event-stream body (the WHATWG rules that matter here). */
export class SseParser {
  constructor() {
    this.buffer = '';
    /** @type {string[]} */
    this.data = [];
    this.event = '';
    /** @type {string | undefined} */
    this.id = undefined;
    this.lastEventId = '';
  }

  /**
   * Feeds a chunk of text; returns the events it completed: {event, data, id}.
   * @param {string} chunk
   * @returns {SseEvent[]}
   */
  push(chunk) {
    this.buffer += chunk;
    /** @type {SseEvent[]} */
    const out = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // a lone \r at the very end may be the first half of \r\n: wait for more
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line, out);
    }
    return out;
  }

  /**
   * @param {string} line
   * @param {SseEvent[]} out
   */
  line(line, out) {
    if (line === '') {
      if (this.id !== undefined) this.lastEventId = this.id;
      this.id = undefined;
      if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n'), id: this.lastEventId });
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

/**
 * The events of an SSE response body (until the server ends it or the signal aborts).
 * @param {Response} res
 * @param {AbortSignal} [signal]
 * @returns {AsyncGenerator<SseEvent>}
 */
export async function* readSse(res, signal) {
  if (!res.body) return;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const ev of parser.push(decoder.decode(value, { stream: true }))) yield ev;
    }
    // an event cut off without its blank line is dropped, as EventSource does
  } finally {
    signal?.removeEventListener('abort', onAbort);
    try {
      reader.releaseLock();
    } catch {
      /* a read still pending after cancel */
    }
  }
}
