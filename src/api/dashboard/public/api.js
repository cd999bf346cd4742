// @ts-check
// The dashboard's client of the /v1 HTTP API: JSON requests, problem+json errors, and
// Server-Sent Events read with fetch (EventSource cannot send an Authorization header).
// No DOM here, so node:test can exercise it too. The SSE reader itself is sse.js, shared with the CLI.
import { SseParser, readSse } from './sse.js';

export { SseParser, readSse };

/** An HTTP error from the API; `errors` are problem+json's [{field, message}]. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || `HTTP ${status}`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem || {};
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
  }
}

async function problemOf(res) {
  const text = await res.text().catch(() => '');
  try {
    return JSON.parse(text);
  } catch {
    return { title: res.statusText, detail: text.slice(0, 300) || undefined };
  }
}

/** Marks the reads the page repeats every few seconds: the service logs them at debug level. */
const POLL = { 'x-dashboard-poll': '1' };

/**
 * @param {{ getKey: () => string, fetch?: typeof fetch, base?: string }} opts
 * base is where /v1 lives, relative to the page ('' = same directory as the page).
 */
export function createApi({ getKey, fetch: fetchImpl = globalThis.fetch.bind(globalThis), base = '' }) {
  function headers(extra) {
    const h = { ...extra };
    const key = getKey();
    if (key) h.authorization = `Bearer ${key}`;
    return h;
  }

  async function raw(method, path, { body, accept = 'application/json', signal, extraHeaders } = {}) {
    const init = { method, headers: headers({ accept, ...extraHeaders }), signal, cache: 'no-store' };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] = 'application/json';
    }
    const res = await fetchImpl(base + path, init);
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    return res;
  }

  async function json(method, path, opts) {
    const res = await raw(method, path, opts);
    if (res.status === 204) return undefined;
    return res.json();
  }

  return {
    listJobs({ state, limit = 50, cursor } = {}, signal) {
      const q = new URLSearchParams();
      if (state) q.set('state', state);
      q.set('limit', String(limit));
      if (cursor) q.set('cursor', cursor);
      return json('GET', `v1/jobs?${q}`, { signal, extraHeaders: POLL });
    },
    getJob(id, signal) {
      return json('GET', `v1/jobs/${encodeURIComponent(id)}`, { signal, extraHeaders: POLL });
    },
    /** The job's own log: {jobId, lines: [{time, level, msg}]}, oldest first. */
    jobLogs(id, signal) {
      return json('GET', `v1/jobs/${encodeURIComponent(id)}/logs`, { signal, extraHeaders: POLL });
    },
    submit(spec) {
      return json('POST', 'v1/jobs', { body: spec });
    },
    /**
     * The job's model as files to save (GET /v1/jobs/:id/model?format=…; tfjs: its model.json and
     * weights.bin, which must keep those names side by side): [{name, blob}], and the epoch exported.
     */
    async downloadModel(id, format, signal) {
      const base = `v1/jobs/${encodeURIComponent(id)}/model`;
      const get = async (path, fallbackName) => {
        const res = await raw('GET', path, { accept: '*/*', signal });
        const disposition = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '');
        return { name: disposition ? disposition[1] : fallbackName, blob: await res.blob(), epoch: Number(res.headers.get('x-model-epoch')) };
      };
      const files =
        format === 'tfjs'
          ? [await get(`${base}/model.json`, 'model.json'), await get(`${base}/weights.bin`, 'weights.bin')]
          : [await get(`${base}?format=${encodeURIComponent(format)}`, `model.${format}`)];
      return { epoch: files[0].epoch, files: files.map(({ name, blob }) => ({ name, blob })) };
    },
    /** Epoch events with epoch > after, a page: {jobId, after, epochs, nextAfter?}. */
    epochs(id, after = 0, signal) {
      return json('GET', `v1/jobs/${encodeURIComponent(id)}/epochs?after=${after}&limit=1000`, { signal });
    },
    /** An experiment's table (GET /v1/experiments/:id). */
    getExperiment(id, signal) {
      return json('GET', `v1/experiments/${encodeURIComponent(id)}`, { signal });
    },
    cancel(id) {
      return json('POST', `v1/jobs/${encodeURIComponent(id)}/cancel`, { body: {} });
    },

    /**
     * Generates text, calling onText(chunk) as characters arrive: streamed when the server answers
     * text/event-stream, else once with the whole JSON answer's text. Resolves to the full text.
     */
    async generate(id, req, { signal, onText } = {}) {
      const res = await raw('POST', `v1/jobs/${encodeURIComponent(id)}/generate`, {
        body: req,
        signal,
        accept: 'text/event-stream, application/json;q=0.9',
      });
      const type = res.headers.get('content-type') || '';
      if (!type.includes('text/event-stream')) {
        const out = await res.json();
        const text = typeof out === 'string' ? out : String(out.text ?? '');
        onText?.(text, out);
        return text;
      }
      let text = '';
      for await (const ev of readSse(res, signal)) {
        let payload;
        try {
          payload = JSON.parse(ev.data);
        } catch {
          payload = ev.data;
        }
        if (ev.event === 'error' || (payload && typeof payload === 'object' && payload.status >= 400)) {
          throw new ApiError(payload.status || 500, payload);
        }
        if (ev.event === 'done' || ev.event === 'end') {
          if (payload && typeof payload.text === 'string' && payload.text.length > text.length) {
            const rest = payload.text.startsWith(text) ? payload.text.slice(text.length) : '';
            if (rest) {
              text += rest;
              onText?.(rest, payload);
            }
          }
          break;
        }
        const chunk = typeof payload === 'string' ? payload : (payload.text ?? payload.chars ?? payload.chunk ?? payload.delta ?? '');
        if (chunk) {
          text += chunk;
          onText?.(chunk, payload);
        }
      }
      return text;
    },

    /**
     * One connection to a job's event stream. Calls onEvent(jobEvent) for each event and resolves
     * to the last seq seen when the server ends the stream; lastSeq > 0 resumes after that event.
     */
    async streamEvents(id, lastSeq, onEvent, signal) {
      const extraHeaders = lastSeq > 0 ? { 'last-event-id': String(lastSeq) } : undefined;
      const res = await raw('GET', `v1/jobs/${encodeURIComponent(id)}/events`, { accept: 'text/event-stream', signal, extraHeaders });
      let seq = lastSeq;
      for await (const ev of readSse(res, signal)) {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          continue; // not a job event (e.g. a keep-alive payload)
        }
        // the server ends a stream it cannot continue with an `error` event carrying a problem
        if (ev.event === 'error' && data && typeof data.status === 'number') throw new ApiError(data.status, data);
        if (!data || typeof data.seq !== 'number') continue;
        if (data.seq <= seq) continue; // never apply an event twice
        seq = data.seq;
        onEvent(data);
      }
      return seq;
    },
  };
}
