// The dashboard page: jobs table (polled), job view (SSE-driven chart, samples, generate,
// cancel), submit form with the server's validation messages next to the fields, API key.
import uPlot from './uPlot.esm.js';
import { ApiError, createApi } from './api.js';
import { TERMINAL, buildBody, cleanText, describeCorpus, fieldFor, fmtDuration, fmtPerplexity, fmtRate, fmtTime, fmtWhen, logTicks, setPath, splitSample, stateNotice } from './format.js';

const KEY_STORE = 'lstm-trainer.apiKey';
const POLL_MS = 3000;
const PAGE_SIZE = 25;
const CACHE_JOBS = 8;

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

// ---------------------------------------------------------------- API key

function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || '';
  } catch {
    return '';
  }
}

function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    /* storage disabled: the key lasts until reload */
  }
  memoryKey = key;
}
let memoryKey = getKey();

const api = createApi({ getKey: () => memoryKey });

let keyWaiters = [];

function showAuth(message) {
  const panel = $('auth-panel');
  const wasHidden = panel.hidden;
  panel.hidden = false;
  $('auth-toggle').setAttribute('aria-expanded', 'true');
  $('auth-message').textContent = message || '';
  if (wasHidden || message) $('auth-key').focus();
}

function hideAuth() {
  $('auth-panel').hidden = true;
  $('auth-toggle').setAttribute('aria-expanded', 'false');
  $('auth-message').textContent = '';
}

/** A 401: ask for the key; resolves once one is entered. */
let checkingKey = false;
/** Whether the service asked for a key (a 401): the page learns that auth is on from its first call. */
let authSeen = false;

function needKey() {
  authSeen = true;
  keyAccepted = false;
  if (checkingKey) notice('');
  checkingKey = false;
  updateKeyButton();
  showAuth(memoryKey ? 'The service rejected this API key. Enter a valid one.' : 'This service needs an API key. Enter it to continue.');
  return new Promise((resolve) => keyWaiters.push(resolve));
}

/** 'API key ✓' once the service accepted the key this tab sends. */
let keyAccepted = false;
function updateKeyButton() {
  // only where a key matters: the service asked for one, or this tab holds one (which it may forget)
  $('auth-toggle').hidden = !(authSeen || memoryKey);
  $('auth-toggle').textContent = memoryKey && keyAccepted ? 'API key ✓' : 'API key';
}

$('auth-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const key = $('auth-key').value.trim();
  if (!key) {
    $('auth-message').textContent = 'Enter a key.';
    return;
  }
  setKey(key);
  $('auth-key').value = '';
  keyAccepted = false;
  checkingKey = true;
  updateKeyButton();
  hideAuth();
  notice('Checking the API key…');
  const waiters = keyWaiters;
  keyWaiters = [];
  for (const w of waiters) w();
  refreshList();
  if (current) refreshView(current);
});

$('auth-forget').addEventListener('click', () => {
  setKey('');
  keyAccepted = false;
  updateKeyButton();
  notice('API key forgotten.');
});

$('auth-toggle').addEventListener('click', () => {
  if ($('auth-panel').hidden) showAuth('');
  else hideAuth();
});

// ---------------------------------------------------------------- notices and errors

function notice(text, kind = 'info') {
  const n = $('notice');
  if (n.textContent === text && n.dataset.kind === kind) return; // not read out twice
  n.textContent = text;
  n.dataset.kind = kind;
}

/** Common handling of a failed call outside a form; true when it was a 401 (key asked for). */
function reportError(e, what) {
  if (e instanceof ApiError && e.status === 401) {
    needKey();
    return true;
  }
  if (e?.name === 'AbortError') return false;
  notice(`${what}: ${e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : `cannot reach the service (${e?.message ?? e})`}`, 'error');
  return false;
}

// ---------------------------------------------------------------- jobs table

const list = { state: '', cursors: [undefined], page: 0, nextCursor: undefined, inflight: false, rows: new Map() };

function jobLabel(job) {
  return job.name || job.spec?.name || job.id.slice(0, 8);
}

function engineOf(job) {
  if (!job.engine && !job.backend) return '–';
  return [job.engine, job.backend].filter(Boolean).join(' / ');
}

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, text: state });
}

/** data-label of each cell: what a phone's card shows before the value. */
const COLUMNS = ['Name', 'State', 'Epoch', 'Perplexity', 'Tokens/s', 'Started / finished'];
const setText = (e, text) => {
  if (e.textContent !== text) e.textContent = text;
};

/** A job's row, created once and then updated in place (a focused link keeps its focus). */
function jobRow(job) {
  let tr = list.rows.get(job.id);
  if (!tr) {
    tr = el('tr', { 'data-job-id': job.id });
    for (const label of COLUMNS) tr.append(el('td', { 'data-label': label }));
    // the name (two lines at most), and under it the model kind and the engine
    tr.cells[0].append(el('a', { class: 'job-name', href: `#job=${encodeURIComponent(job.id)}` }), el('span', { class: 'job-meta' }));
    tr.cells[1].append(el('span'));
    tr.cells[5].append(el('time', { class: 'started' }), el('time', { class: 'finished' }));
    list.rows.set(job.id, tr);
  }
  const [name, state, epoch, ppl, tps, when] = tr.cells;
  const label = jobLabel(job);
  setText(name.firstChild, label);
  name.firstChild.title = label;
  const kind = job.spec?.model?.kind;
  setText(name.lastChild, [kind, job.engine || job.backend ? engineOf(job) : ''].filter(Boolean).join(' · '));
  state.firstChild.className = `state state-${job.state}`;
  setText(state.firstChild, job.state);
  setText(epoch, `${job.progress?.epoch ?? 0}/${job.progress?.epochs ?? job.spec?.train?.epochs ?? '?'}`);
  setText(ppl, fmtPerplexity(job.perplexity));
  setText(tps, fmtRate(job.tokensPerSec));
  // started, and finished under it (compact; the full timestamps on hover)
  const [started, finished] = when.children;
  setText(started, fmtWhen(job.startedAt));
  started.dateTime = job.startedAt ?? '';
  setText(finished, job.finishedAt ? fmtWhen(job.finishedAt) : '');
  finished.dateTime = job.finishedAt ?? '';
  const title = [job.startedAt && `started ${job.startedAt}`, job.finishedAt && `finished ${job.finishedAt}`].filter(Boolean).join('\n');
  if (when.title !== title) when.title = title;
  const selected = current?.id === job.id;
  tr.classList.toggle('selected', selected);
  if (selected) tr.setAttribute('aria-current', 'true');
  else tr.removeAttribute('aria-current');
  return tr;
}

function renderJobs(jobs) {
  const body = $('jobs-body');
  const keep = new Set(jobs.map((j) => j.id));
  for (const id of [...list.rows.keys()]) if (!keep.has(id)) list.rows.delete(id);
  const rows = jobs.map(jobRow);
  // reorder only when the order changed (moving a row would drop the focus inside it)
  if (rows.length !== body.children.length || rows.some((r, i) => body.children[i] !== r)) body.replaceChildren(...rows);
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs-empty').textContent = list.state ? `No ${list.state} jobs.` : 'No jobs yet.';
  $('page-next').hidden = !list.nextCursor;
  $('page-first').hidden = list.page === 0;
  $('jobs-updated').textContent = `updated ${fmtTime(new Date().toISOString())}`;
}

async function refreshList() {
  if (list.inflight) return;
  list.inflight = true;
  try {
    const r = await api.listJobs({ state: list.state || undefined, limit: PAGE_SIZE, cursor: list.cursors[list.page] });
    list.nextCursor = r.nextCursor;
    renderJobs(r.jobs ?? []);
    if (memoryKey && !keyAccepted) {
      keyAccepted = true;
      updateKeyButton();
      if (checkingKey) notice('API key accepted (kept for this tab).');
      checkingKey = false;
    }
    if ($('notice').dataset.kind === 'error' && /cannot reach/.test($('notice').textContent)) notice('');
  } catch (e) {
    reportError(e, 'Jobs');
  } finally {
    list.inflight = false;
  }
}

$('state-filter').addEventListener('change', (e) => {
  list.state = e.target.value;
  list.cursors = [undefined];
  list.page = 0;
  refreshList();
});
$('page-next').addEventListener('click', () => {
  if (!list.nextCursor) return;
  list.cursors[list.page + 1] = list.nextCursor;
  list.page += 1;
  refreshList();
});
$('page-first').addEventListener('click', () => {
  list.cursors = [undefined];
  list.page = 0;
  refreshList();
});

// ---------------------------------------------------------------- job view

/** Per-job state kept across openings, so reopening a job resumes its stream after lastSeq. */
const cache = new Map();
/** @type {null | ReturnType<typeof newJobState>} */
let current = null;

function newJobState(id) {
  return { id, view: null, state: undefined, epochs: [], samples: [], lastSeq: 0, terminal: false, error: undefined, summary: undefined };
}

/** What the open job's DOM shows; rebuilt on each opening. */
let ui = null;

function openJob(id) {
  if (current?.id === id) return;
  closeJob();
  let st = cache.get(id);
  if (!st) {
    st = newJobState(id);
  }
  cache.delete(id);
  cache.set(id, st); // most recently used last
  while (cache.size > CACHE_JOBS) cache.delete(cache.keys().next().value);
  current = st;
  const controller = new AbortController();
  // liveAfter: the job's lastSeq when this view opened (from its first GET); events up to it are
  // history being replayed and raise no notice. pending: a state change that came before that GET.
  ui = { st, controller, plot: null, shownEpochs: 0, shownSamples: 0, frame: 0, resize: null, generating: null, liveAfter: undefined, pending: null };

  $('job-panel').hidden = false;
  $('job-placeholder').hidden = true;
  $('job-title').textContent = `Job ${id.slice(0, 8)}`;
  $('job-error').hidden = true;
  $('epochs-body').replaceChildren();
  $('samples').replaceChildren();
  $('gen-output').replaceChildren();
  $('gen-errors').hidden = true;
  $('generate-section').hidden = true;
  $('job-cancel').hidden = true;
  $('cancel-confirm').hidden = true;
  $('job-spec').textContent = '';
  $('job-corpus').textContent = '';
  $('job-log').replaceChildren();
  $('job-log-empty').hidden = false;
  if ($('job-log-details').open) refreshLog(st);
  $('chart').dataset.points = '0';
  $('chart-caption').textContent = 'Perplexity by epoch';
  createPlot(st);
  for (const tr of list.rows.values()) {
    const sel = tr.dataset.jobId === id;
    tr.classList.toggle('selected', sel);
    if (sel) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
  }
  render();
  refreshView(st);
  if (!st.terminal) follow(st, controller.signal);
  $('job-title').focus({ preventScroll: true });
  if (window.matchMedia('(max-width: 1099px)').matches) $('job-panel').scrollIntoView({ block: 'start' });
}

function closeJob() {
  if (!ui) return;
  ui.controller.abort();
  ui.generating?.abort();
  cancelAnimationFrame(ui.frame);
  ui.resize?.disconnect();
  ui.plot?.destroy();
  ui = null;
  current = null;
  $('job-panel').hidden = true;
  $('job-placeholder').hidden = false;
  for (const tr of list.rows.values()) {
    tr.classList.remove('selected');
    tr.removeAttribute('aria-current');
  }
}

$('job-close').addEventListener('click', () => {
  history.pushState(null, '', location.pathname + location.search);
  closeJob();
});

async function refreshView(st) {
  try {
    const view = await api.getJob(st.id);
    st.view = view;
    if (!st.state || TERMINAL.has(view.state) || !TERMINAL.has(st.state)) st.state = view.state;
    if (view.error && !st.error) st.error = view.error;
    if (ui?.st === st && ui.liveAfter === undefined) {
      ui.liveAfter = view.lastSeq ?? Infinity; // no lastSeq: no way to tell history from news
      const pending = ui.pending;
      ui.pending = null;
      if (pending && pending.seq > ui.liveAfter) announce(st, pending);
    }
    if (current === st) render();
    if (current === st && unsettled(st)) setTimeout(() => current === st && refreshView(st), SETTLE_POLL_MS);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      if (current === st) {
        $('job-error').hidden = false;
        $('job-error').textContent = `No job ${st.id} on this service.`;
        ui.controller.abort();
      }
      return;
    }
    reportError(e, 'Job');
  }
}

/**
 * A cancelled job's record is still changing: the worker writes the checkpoint of the last epoch
 * after the cancel (the state event comes first), so the view is read again until its
 * checkpointEpoch reaches that epoch (or SETTLE_MS after the final state, at most).
 */
const SETTLE_MS = 20_000;
const SETTLE_POLL_MS = 500;
function unsettled(st) {
  const v = st.view;
  if (!v || v.state !== 'cancelled' || !(Date.now() < (st.settleUntil ?? 0))) return false;
  const epoch = v.progress?.epoch ?? 0;
  return epoch > 0 && (v.checkpointEpoch ?? 0) < epoch;
}

/** The job reached its final state: read its record again (what the final state left there). */
function finalState(st) {
  st.settleUntil = Date.now() + SETTLE_MS;
  if (current === st) refreshView(st);
  // the worker writes its last line about the job just after the final state
  setTimeout(() => refreshLog(st), 1000);
}

/** Follows the job's event stream until its terminal state, reconnecting with Last-Event-ID. */
async function follow(st, signal) {
  let delay = 1000;
  while (!signal.aborted && !st.terminal) {
    try {
      await api.streamEvents(st.id, st.lastSeq, (ev) => applyEvent(st, ev), signal);
      delay = 1000;
      if (!st.terminal) await sleep(500, signal); // the server closed early: resume after lastSeq
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status === 401) {
        await needKey();
        continue;
      }
      if (e instanceof ApiError && e.status === 404) {
        $('job-error').hidden = false;
        $('job-error').textContent = `No job ${st.id} on this service.`;
        return;
      }
      if (current === st) $('job-status-text').textContent = `(stream interrupted, reconnecting…)`;
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 15000);
    }
  }
}

function applyEvent(st, ev) {
  st.lastSeq = ev.seq;
  if (ev.type === 'epoch') {
    const last = st.epochs[st.epochs.length - 1];
    if (!last || ev.epoch > last.epoch) st.epochs.push(ev);
    if (Array.isArray(ev.samples) && ev.samples.length > 0) st.samples.push({ epoch: ev.epoch, perplexity: ev.perplexity, samples: ev.samples });
  } else if (ev.type === 'state') {
    st.state = ev.state;
    if (ev.summary) st.summary = ev.summary;
    if (ev.error) st.error = ev.error;
    if (TERMINAL.has(ev.state)) {
      st.terminal = true;
      finalState(st);
    }
    // a notice only for a change that happened while this view was open, not for the replay of
    // the job's history (opening a finished job replays queued → running → succeeded)
    if (current === st && ui) {
      if (ui.liveAfter === undefined) ui.pending = ev; // decided when the job's GET answers
      else if (ev.seq > ui.liveAfter) announce(st, ev);
    }
  }
  if (current === st) scheduleRender();
}

// ---- the job's log (GET /v1/jobs/:id/logs): read when the panel opens, on every state change, and
// every LOG_POLL_MS while it is open and the job not finished

const LOG_POLL_MS = 3000;
let logTimer = 0;

async function refreshLog(st) {
  clearTimeout(logTimer);
  if (current !== st || !$('job-log-details').open) return;
  try {
    const { lines } = await api.jobLogs(st.id, ui?.controller.signal);
    if (current !== st) return;
    $('job-log-empty').hidden = lines.length > 0;
    $('job-log').replaceChildren(
      ...lines.map((l) => {
        const li = document.createElement('li');
        li.className = `lvl-${l.level}`;
        const t = document.createElement('time');
        t.dateTime = l.time;
        t.textContent = fmtTime(l.time);
        li.append(t, ` ${l.level} ${l.msg}`);
        return li;
      }),
    );
  } catch (e) {
    if (ui?.controller.signal.aborted) return;
    if (!(e instanceof ApiError && e.status === 404)) reportError(e, 'Job log');
  }
  if (current === st && !st.terminal) logTimer = setTimeout(() => refreshLog(st), LOG_POLL_MS);
}

$('job-log-details').addEventListener('toggle', () => {
  if (current) refreshLog(current);
});

/** Tells of a live state change, and refreshes what depends on it. */
function announce(st, ev) {
  refreshLog(st);
  const detail = ev.state === 'failed' ? (ev.error ?? st.error) : ev.message;
  notice(stateNotice(jobLabelOf(st), ev.state, detail), ev.state === 'failed' ? 'error' : 'info');
  refreshView(st);
  refreshList();
}

function jobLabelOf(st) {
  return st.view ? jobLabel(st.view) : st.id.slice(0, 8);
}

function scheduleRender() {
  if (!ui || ui.frame) return;
  ui.frame = requestAnimationFrame(() => {
    if (!ui) return;
    ui.frame = 0;
    render();
  });
}

function createPlot(st) {
  const box = $('chart');
  box.replaceChildren();
  const width = Math.max(280, box.clientWidth || 600);
  const opts = {
    width,
    height: 260,
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: false, range: (_u, min, max) => [1, Math.max(max || 1, ui?.st.view?.spec?.train?.epochs ?? ui?.st.epochs[0]?.epochs ?? 2)] },
      // perplexity ≥ 1, on a log scale from 1: the start (≈ 25) and a converged end (≈ 1.1) both readable
      ppl: { distr: 3, log: 10, auto: true, range: (_u, min, max) => pplRange(min, max) },
      tps: { auto: true, range: (_u, _min, max) => [0, Math.ceil((max || 1) * 1.1)] },
    },
    series: [
      { label: 'epoch' },
      { label: 'perplexity', scale: 'ppl', stroke: '#2563eb', width: 2, value: (_u, v) => fmtPerplexity(v) },
      { label: 'tokens/s', scale: 'tps', stroke: '#a3a3a3', width: 1, dash: [4, 4], value: (_u, v) => fmtRate(v) },
    ],
    axes: [
      { label: 'epoch' },
      {
        scale: 'ppl',
        label: 'perplexity (log scale)',
        size: 50,
        splits: (u, _i, min, max) => logTicks(min, max, Math.max(2, Math.floor(u.bbox.height / devicePixelRatio / 28))),
        values: (_u, ticks) => ticks.map((t) => (t == null ? '' : String(t))),
      },
      { scale: 'tps', side: 1, label: 'tokens/s', grid: { show: false }, size: 60, values: (_u, ticks) => ticks.map((t) => (t >= 1000 ? `${t / 1000}k` : String(t))) },
    ],
    hooks: { setLegend: [(u) => u.legend.idx == null && legendLatest(u)] },
  };
  ui.plot = new uPlot(opts, [[], [], []], box);
  ui.resize = new ResizeObserver(() => {
    const w = Math.max(280, box.clientWidth);
    if (ui?.plot && Math.abs(ui.plot.width - w) > 2) ui.plot.setSize({ width: w, height: 260 });
  });
  ui.resize.observe(box);
}

/** Away from the chart the legend shows the latest epoch (uPlot would show "--" for no point). */
function legendLatest(u) {
  const n = u.data[0]?.length ?? 0;
  if (n > 0 && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 }, false);
}

/** The perplexity scale: from 1 (its least possible value) to a little above the highest value. */
function pplRange(min, max) {
  const lo = Number.isFinite(min) && min > 0 && min < 1 ? 10 ** Math.floor(Math.log10(min)) : 1;
  const hi = Number.isFinite(max) && max > lo ? max * 1.15 : lo * 2;
  return [lo, hi];
}

function render() {
  if (!ui) return;
  const st = ui.st;
  const view = st.view;
  const state = st.state ?? view?.state;
  const last = st.epochs[st.epochs.length - 1];
  const epochs = view?.spec?.train?.epochs ?? last?.epochs;

  if (view) {
    $('job-title').textContent = `Job ${jobLabel(view)}`;
    const specText = JSON.stringify(view.spec, null, 2);
    if ($('job-spec').textContent !== specText) $('job-spec').textContent = specText;
    const corpus = view.spec?.data?.corpus;
    setText($('job-corpus'), describeCorpus(corpus));
    $('job-corpus').title = typeof corpus?.sha256 === 'string' ? `SHA-256 ${corpus.sha256}` : '';
  }
  $('job-state').replaceChildren(...(state ? [stateBadge(state)] : []));
  let status = '';
  if (state === 'queued') status = 'waiting for a worker';
  else if (state === 'running') status = last ? `epoch ${last.epoch} of ${epochs}` : 'starting';
  else if (state === 'succeeded') status = `finished: perplexity ${fmtPerplexity(st.summary?.finalPerplexity ?? view?.summary?.finalPerplexity ?? last?.perplexity)} after ${fmtDuration(st.summary?.totalMs ?? view?.summary?.totalMs)}`;
  else if (state === 'cancelled') status = last ? `cancelled at epoch ${last.epoch}` : 'cancelled';
  else if (state === 'failed') status = 'failed';
  $('job-status-text').textContent = status;

  const error = st.error ?? view?.error;
  $('job-error').hidden = !error;
  if (error) $('job-error').textContent = `Error: ${error}`;
  const cancellable = state === 'queued' || state === 'running';
  $('job-cancel').hidden = !cancellable || !$('cancel-confirm').hidden;
  if (!cancellable) $('cancel-confirm').hidden = true;

  $('stat-epoch').textContent = `${last?.epoch ?? view?.progress?.epoch ?? 0}/${epochs ?? '?'}`;
  $('stat-ppl').textContent = fmtPerplexity(last?.perplexity ?? view?.perplexity);
  $('stat-tps').textContent = fmtRate(last?.tokensPerSec ?? view?.tokensPerSec);
  $('stat-elapsed').textContent = fmtDuration(last?.elapsedMs);
  $('stat-engine').textContent = view ? engineOf(view) : '–';
  $('stat-ckpt').textContent = typeof view?.checkpointEpoch === 'number' ? `epoch ${view.checkpointEpoch}` : 'none yet';
  $('generate-section').hidden = typeof view?.checkpointEpoch !== 'number';

  // the curve and the epoch table grow by the epochs not shown yet
  if (ui.shownEpochs !== st.epochs.length) {
    const rows = [];
    for (let i = ui.shownEpochs; i < st.epochs.length; i++) {
      const e = st.epochs[i];
      rows.push(el('tr', {}, el('td', { text: String(e.epoch) }), el('td', { text: fmtPerplexity(e.perplexity) }), el('td', { text: fmtRate(e.tokensPerSec) }), el('td', { text: fmtDuration(e.elapsedMs) })));
    }
    $('epochs-body').append(...rows);
    ui.shownEpochs = st.epochs.length;
    const finite = (v, above) => (typeof v === 'number' && Number.isFinite(v) && v > above ? v : null); // a log scale takes no 0, NaN or ∞
    ui.plot.setData([st.epochs.map((e) => e.epoch), st.epochs.map((e) => finite(e.perplexity, 0)), st.epochs.map((e) => finite(e.tokensPerSec, -1))]);
    legendLatest(ui.plot);
    $('chart').dataset.points = String(st.epochs.length);
    $('chart-caption').textContent = last ? `Perplexity by epoch (epoch ${last.epoch}: ${fmtPerplexity(last.perplexity)})` : 'Perplexity by epoch';
  }

  // samples: newest first
  if (ui.shownSamples !== st.samples.length) {
    const box = $('samples');
    for (let i = ui.shownSamples; i < st.samples.length; i++) box.prepend(sampleItem(st.samples[i]));
    ui.shownSamples = st.samples.length;
  }
  $('samples-empty').hidden = st.samples.length > 0;
  if (st.samples.length === 0) {
    const every = view?.spec?.report?.predictEvery;
    $('samples-empty').textContent = every ? `No samples yet (one every ${every} epochs).` : 'No samples yet.';
  }
}

function sampleItem({ epoch, perplexity, samples }) {
  const li = el('li', { class: 'sample-item' });
  li.append(el('p', { class: 'sample-head' }, el('strong', { text: `Epoch ${epoch}` }), ` · perplexity ${fmtPerplexity(perplexity)}`));
  for (const s of samples) {
    const { prefix, continuation } = splitSample(s.prefix, s.text);
    const p = el('p', { class: 'sample' }, el('span', { class: 'prefix', text: prefix }), el('span', { class: 'continuation', text: continuation }));
    // an early model often predicts only spaces: say so, since they are invisible
    if (continuation.length > 0 && continuation.trim() === '') p.append(el('span', { class: 'muted note', text: ` (${continuation.length} spaces)` }));
    li.append(p);
  }
  return li;
}

// Cancel asks first, in the view: "Yes, cancel job" or "Keep it running" (the safe answer has the focus)
function closeConfirm() {
  $('cancel-confirm').hidden = true;
  render();
  if (!$('job-cancel').hidden) $('job-cancel').focus();
}

$('job-cancel').addEventListener('click', () => {
  if (!current) return;
  $('cancel-question').textContent = `Cancel job ${jobLabelOf(current)}? Training stops; the checkpoint of its last epoch is kept.`;
  $('cancel-confirm').hidden = false;
  $('job-cancel').hidden = true;
  $('cancel-no').focus();
});

$('cancel-no').addEventListener('click', closeConfirm);
$('cancel-confirm').addEventListener('keydown', (e) => {
  if (e.key === 'Escape') closeConfirm();
});

$('cancel-yes').addEventListener('click', async () => {
  const st = current;
  if (!st) return;
  const button = $('cancel-yes');
  button.disabled = true;
  try {
    const view = await api.cancel(st.id);
    st.view = view;
    st.state = view.state;
    notice(TERMINAL.has(view.state) ? stateNotice(jobLabel(view), view.state) : `Cancel requested for job ${jobLabel(view)}.`);
    // the answer is read before the worker's last checkpoint: read the job again until it is there
    if (TERMINAL.has(view.state)) finalState(st);
    refreshList();
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) notice(`Cannot cancel: ${e.message}`, 'error');
    else reportError(e, 'Cancel');
  } finally {
    button.disabled = false;
    $('cancel-confirm').hidden = true;
    if (current === st) render();
  }
});

// ---------------------------------------------------------------- forms: errors next to fields

function clearErrors(form, summary) {
  for (const f of form.querySelectorAll('[aria-invalid="true"]')) f.removeAttribute('aria-invalid');
  for (const p of form.querySelectorAll('.field-error')) p.remove();
  for (const f of form.querySelectorAll('[data-describedby-base]')) {
    const base = f.dataset.describedbyBase;
    if (base) f.setAttribute('aria-describedby', base);
    else f.removeAttribute('aria-describedby');
    delete f.dataset.describedbyBase;
  }
  summary.hidden = true;
  summary.replaceChildren();
}

/** Shows problem+json errors next to their inputs; returns how many could not be placed. */
function showErrors(form, summary, error) {
  const byField = new Map();
  for (const f of form.querySelectorAll('[data-field]')) byField.set(f.dataset.field, f);
  const known = new Set(byField.keys());
  const unplaced = [];
  let first = null;
  const errors = error.errors.length > 0 ? error.errors : [{ field: '', message: error.message }];
  for (const err of errors) {
    const name = fieldFor(err.field, known);
    const target = name && byField.get(name);
    if (!target) {
      unplaced.push(err.field ? `${err.field}: ${err.message}` : err.message);
      continue;
    }
    const holder = target.tagName === 'FIELDSET' ? target : target.closest('.prefix-row, .field') ?? target.parentElement;
    const id = `${target.id || name.replace(/\W/g, '-')}-error`;
    let p = document.getElementById(id);
    if (!p) {
      p = el('p', { class: 'field-error', id });
      holder.append(p);
    }
    p.textContent = p.textContent ? `${p.textContent} ${err.message}` : err.message;
    const input = target.tagName === 'FIELDSET' ? target.querySelector('input:checked') ?? target.querySelector('input') : target;
    input.setAttribute('aria-invalid', 'true');
    if (input.dataset.describedbyBase === undefined) input.dataset.describedbyBase = input.getAttribute('aria-describedby') ?? '';
    input.setAttribute('aria-describedby', `${input.dataset.describedbyBase} ${id}`.trim());
    const details = target.closest('details');
    if (details) details.open = true;
    first ??= input;
  }
  if (unplaced.length > 0) {
    summary.hidden = false;
    summary.replaceChildren(...unplaced.map((m, i) => (i === 0 ? m : [el('br'), m])).flat());
  } else if (first) {
    summary.hidden = false;
    summary.textContent = `Please correct the ${errors.length === 1 ? 'field' : `${errors.length} fields`} marked below.`;
  }
  first?.focus();
  return unplaced.length;
}

// ---------------------------------------------------------------- submit form

for (const r of document.querySelectorAll('input[name="corpus"]')) {
  r.addEventListener('change', () => {
    $('corpus-text-wrap').hidden = !$('f-corpus-text').checked;
  });
}

// sample prefixes: one input each, added and removed with buttons
const DEFAULT_PREFIXES = ['time traveller', 'traveller'];
const prefixInputs = () => [...$('prefix-list').querySelectorAll('input')];

function renumberPrefixes() {
  prefixInputs().forEach((input, i) => {
    const n = i + 1;
    const row = input.closest('li');
    input.id = `f-prefix-${n}`;
    input.dataset.field = `report.prefixes.${i}`;
    row.querySelector('label').htmlFor = input.id;
    row.querySelector('label').textContent = `Prefix ${n}`;
    row.querySelector('button').setAttribute('aria-label', `Remove prefix ${n}`);
  });
}

function addPrefix(value = '') {
  const input = el('input', { type: 'text', value, maxLength: 200, spellcheck: false });
  const remove = el('button', { type: 'button', class: 'secondary', text: 'Remove' });
  const row = el('li', { class: 'prefix-row' }, el('label'), input, remove);
  remove.addEventListener('click', () => {
    const next = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    renumberPrefixes();
    (next?.querySelector('input') ?? $('prefix-add')).focus();
  });
  $('prefix-list').append(row);
  renumberPrefixes();
  return input;
}

for (const p of DEFAULT_PREFIXES) addPrefix(p);
$('prefix-add').addEventListener('click', () => addPrefix().focus());

function specFromForm() {
  const spec = buildBody([
    { path: 'name', value: $('f-name').value, type: 'string' },
    { path: 'model.kind', value: $('f-kind').value, type: 'string' },
    { path: 'model.numHiddens', value: $('f-hiddens').value, type: 'int' },
    { path: 'model.numLayers', value: $('f-layers').value, type: 'int' },
    { path: 'train.epochs', value: $('f-epochs').value, type: 'int' },
    { path: 'train.lr', value: $('f-lr').value, type: 'number' },
    { path: 'train.clipTheta', value: $('f-clip').value, type: 'number' },
    { path: 'train.seed', value: $('f-seed').value, type: 'int' },
    { path: 'data.batchSize', value: $('f-batch').value, type: 'int' },
    { path: 'data.numSteps', value: $('f-steps').value, type: 'int' },
    { path: 'data.sampling', value: $('f-sampling').value, type: 'string' },
    { path: 'data.maxTokens', value: $('f-maxtokens').value, type: 'int' },
    { path: 'report.predictEvery', value: $('f-predict').value, type: 'int' },
    { path: 'report.numPreds', value: $('f-numpreds').value, type: 'int' },
  ]);
  // one input per prefix, so a prefix may hold commas; all blank: the server's default prefixes.
  // Blank ones in between are sent, so the server's report.prefixes.N names the input
  const prefixes = prefixInputs().map((i) => i.value.trim());
  if (prefixes.some((p) => p !== '')) setPath(spec, 'report.prefixes', prefixes);
  spec.data ??= {};
  // pasted text is sent even when empty, so the server says so rather than training on the book
  spec.data.corpus = $('f-corpus-text').checked ? { text: $('f-text').value } : 'timemachine';
  return spec;
}

// a typed-in number the browser cannot parse reads as '': say so instead of sending the default
function unparsableNumbers(form) {
  return [...form.querySelectorAll('input[type="number"]')]
    .filter((i) => i.validity.badInput)
    .map((i) => ({ field: i.dataset.field, message: `${i.labels?.[0]?.textContent ?? i.dataset.field} must be a number` }));
}

$('submit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const summary = $('submit-errors');
  clearErrors(form, summary);
  const bad = unparsableNumbers(form);
  if (bad.length > 0) {
    showErrors(form, summary, new ApiError(400, { errors: bad }));
    return;
  }
  const button = $('submit-button');
  button.disabled = true;
  try {
    const job = await api.submit(specFromForm());
    notice(`Job ${jobLabel(job)} submitted.`);
    await refreshList();
    location.hash = `job=${encodeURIComponent(job.id)}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      await needKey();
      notice('Key saved: submit the job again.');
    } else if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
      showErrors(form, summary, err);
    } else {
      summary.hidden = false;
      summary.textContent = err instanceof ApiError ? `The service failed: ${err.message} (HTTP ${err.status})` : `Cannot reach the service: ${err?.message ?? err}`;
    }
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- generate

$('generate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const st = current;
  if (!st || !ui) return;
  const form = e.currentTarget;
  const summary = $('gen-errors');
  clearErrors(form, summary);
  const bad = unparsableNumbers(form);
  if (bad.length > 0) {
    showErrors(form, summary, new ApiError(400, { errors: bad }));
    return;
  }
  const body = buildBody([
    { path: 'prefix', value: $('g-prefix').value, type: 'string' },
    { path: 'numChars', value: $('g-chars').value, type: 'int' },
    { path: 'temperature', value: $('g-temp').value, type: 'number' },
    { path: 'topK', value: $('g-topk').value, type: 'int' },
    { path: 'seed', value: $('g-seed').value, type: 'int' },
  ]);
  body.prefix = $('g-prefix').value; // an empty prefix is sent, so the server names the problem
  const out = $('gen-output');
  const prefix = cleanText(body.prefix);
  const prefixSpan = el('span', { class: 'prefix', text: prefix });
  const contSpan = el('span', { class: 'continuation' });
  out.replaceChildren(prefixSpan, contSpan);
  out.setAttribute('aria-busy', 'true');
  const controller = new AbortController();
  ui.generating = controller;
  $('gen-button').disabled = true;
  $('gen-stop').hidden = false;
  let text = '';
  try {
    await api.generate(st.id, body, {
      signal: controller.signal,
      onText: (chunk) => {
        text += chunk;
        // a whole answer may repeat the (cleaned) prefix, as predict_ch8 does
        contSpan.textContent = prefix && text.startsWith(prefix) ? text.slice(prefix.length) : text;
      },
    });
    out.dataset.done = 'true';
  } catch (err) {
    if (err?.name === 'AbortError') {
      contSpan.append(el('span', { class: 'muted', text: ' [stopped]' }));
    } else if (err instanceof ApiError && err.status === 401) {
      await needKey();
    } else if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
      out.replaceChildren();
      showErrors(form, summary, err);
    } else {
      out.replaceChildren();
      summary.hidden = false;
      summary.textContent = err instanceof ApiError ? `Generation failed: ${err.message}` : `Cannot reach the service: ${err?.message ?? err}`;
    }
  } finally {
    out.removeAttribute('aria-busy');
    $('gen-button').disabled = false;
    $('gen-stop').hidden = true;
    if (ui?.generating === controller) ui.generating = null;
  }
});

$('gen-stop').addEventListener('click', () => ui?.generating?.abort());

// ---------------------------------------------------------------- routing and polling

function route() {
  const m = /^#job=(.+)$/.exec(location.hash);
  if (m) openJob(decodeURIComponent(m[1]));
  else closeJob();
}

window.addEventListener('hashchange', route);
window.addEventListener('popstate', route);

setInterval(() => {
  if (document.hidden || keyWaiters.length > 0) return;
  refreshList();
  if (current && (!current.view || !TERMINAL.has(current.view.state))) refreshView(current);
}, POLL_MS);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refreshList();
});

updateKeyButton();
refreshList();
route();
