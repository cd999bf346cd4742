// @ts-check
// Pure helpers of the dashboard: number and time formats, spec building, error-to-field mapping.
// No DOM here, so node:test can exercise it too.

const dash = '–';

export function fmtPerplexity(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return dash;
  if (n >= 1000) return Math.round(n).toLocaleString('en-US');
  if (n >= 10) return n.toFixed(2);
  return n.toFixed(3);
}

export function fmtRate(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return dash;
  return Math.round(n).toLocaleString('en-US');
}

export function fmtDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return dash;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

const pad = (n) => String(n).padStart(2, '0');

/** Local time: HH:MM:SS today, else YYYY-MM-DD HH:MM. */
export function fmtTime(iso, now = new Date()) {
  if (!iso) return dash;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return dash;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === now.toDateString()) return `${hm}:${pad(d.getSeconds())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Compact local time for the jobs table: HH:MM:SS today, '5 Mar 14:03' this year, else YYYY-MM-DD. */
export function fmtWhen(iso, now = new Date()) {
  if (!iso) return dash;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return dash;
  if (d.toDateString() === now.toDateString()) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (d.getFullYear() === now.getFullYear()) return `${d.getDate()} ${MONTHS[d.getMonth()]} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The corpus's cleaning rule (d2l): non-letters → one space, trimmed, lower case. */
export function cleanText(s) {
  return String(s)
    .replace(/[^A-Za-z]+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * A sample's text is the cleaned prefix followed by the generated characters (predict_ch8);
 * split it so the page can show the two in different styles.
 */
export function splitSample(prefix, text) {
  const p = cleanText(prefix);
  if (p && text.startsWith(p)) return { prefix: p, continuation: text.slice(p.length) };
  return { prefix: '', continuation: text };
}

/**
 * Builds a nested request body from form entries [{path, value, type}] where type is
 * 'int' | 'number' | 'string' | 'list'. Blank values are left out (the server's default applies);
 * a number that does not parse is sent as typed so the server's message names the field.
 */
export function buildBody(entries) {
  const out = {};
  for (const { path, value, type } of entries) {
    const raw = typeof value === 'string' ? value.trim() : value;
    if (raw === '' || raw === undefined || raw === null) continue;
    let v = raw;
    if (type === 'int' || type === 'number') {
      const n = Number(raw);
      v = Number.isFinite(n) ? n : raw;
    } else if (type === 'list') {
      v = String(raw)
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    }
    setPath(out, path, v);
  }
  return out;
}

export function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k];
  }
  o[keys[keys.length - 1]] = value;
  return obj;
}

/**
 * The form field an error belongs to: the error's dotted path, or its nearest parent that is a
 * field ('report.prefixes.0' → 'report.prefixes'); undefined when none (shown at form level).
 */
export function fieldFor(errorField, known) {
  if (typeof errorField !== 'string' || errorField === '') return undefined;
  const parts = errorField.split('.');
  while (parts.length > 0) {
    const p = parts.join('.');
    if (known.has(p)) return p;
    parts.pop();
  }
  return undefined;
}

/**
 * Ticks of the perplexity axis (a log scale) within [min, max]: 1, 2, 5, 10, 20, … — the finest of
 * the series 1–10–100, 1–3–10, 1–2–5, 1–1.5–2–3–5–7, 1–1.1–1.2… that gives at most `most` ticks.
 */
export function logTicks(min, max, most = 7) {
  if (!(min > 0) || !(max >= min)) return [];
  const series = [[1], [1, 3], [1, 2, 5], [1, 1.5, 2, 3, 5, 7], [1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2, 2.5, 3, 4, 5, 6, 7, 8, 9]];
  let best = [];
  for (const mantissas of series) {
    const ticks = [];
    for (let p = Math.floor(Math.log10(min)); 10 ** p <= max; p++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** p).toPrecision(6));
        if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) ticks.push(v);
      }
    }
    if (best.length > 0 && ticks.length > most) break;
    best = ticks;
  }
  return best;
}

/**
 * A job's corpus in words. Views carry 'timemachine' or, for pasted text, {bytes, sha256} (the
 * text itself only with ?include=corpus).
 */
export function describeCorpus(corpus) {
  if (corpus === undefined || corpus === null || corpus === 'timemachine') return 'The Time Machine (H. G. Wells), d2l’s corpus';
  if (typeof corpus === 'object') {
    const parts = [];
    if (typeof corpus.bytes === 'number') parts.push(`${corpus.bytes.toLocaleString('en-US')} ${corpus.bytes === 1 ? 'byte' : 'bytes'}`);
    else if (typeof corpus.text === 'string') parts.push(`${corpus.text.length.toLocaleString('en-US')} characters`);
    if (typeof corpus.sha256 === 'string') parts.push(`SHA-256 ${corpus.sha256.slice(0, 12)}…`);
    if (typeof corpus.id === 'string') return `uploaded corpus ${corpus.id.slice(0, 12)}…`;
    return parts.length > 0 ? `pasted text, ${parts.join(', ')}` : 'pasted text';
  }
  return String(corpus);
}

/**
 * A job's vocabulary as the view shows it (the job's `data`, measured at submission): its size, the
 * tokenizer, and the most frequent tokens (white space shown as ␣ and ↵).
 * @param {any} data
 * @returns {string}
 */
export function describeVocab(data) {
  if (!data || typeof data.vocabSize !== 'number') return '–';
  const show = (/** @type {string} */ t) => t.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\r/g, '');
  const top = Array.isArray(data.topTokens)
    ? ` · ${data.topTokens
        .slice(0, 8)
        .map(([t]) => show(String(t)))
        .join(' ')}`
    : '';
  return `${data.vocabSize.toLocaleString('en-US')} ${data.tokenizer ?? ''} tokens${top}`;
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * The notice for a job reaching `state` (label: its name, else a short id); detail: a failed
 * job's error, or why a job is queued or running again (a state event's message).
 */
export function stateNotice(label, state, detail) {
  const job = `Job ${label}`;
  const why = typeof detail === 'string' ? detail.trim() : '';
  switch (state) {
    case 'succeeded':
      return `${job} succeeded.`;
    case 'failed':
      return why ? `${job} failed: ${why}${/[.!?]$/.test(why) ? '' : '.'}` : `${job} failed.`;
    case 'cancelled':
      return `${job} was cancelled.`;
    case 'running':
    case 'queued':
      return `${job} is ${state}${why ? ` (${why})` : ''}.`;
    default:
      return `${job}: ${state}.`;
  }
}
