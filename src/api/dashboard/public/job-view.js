// @ts-check
// The job view: opening and closing a job, its record (GET) and its event stream (SSE, resumed with
// Last-Event-ID), live state notices, and cancel.
import { ApiError } from './api.js';
import { api, needKey, reportError } from './auth.js';
import { $, sleep } from './dom.js';
import { TERMINAL, stateNotice } from './format.js';
import { createPlot } from './job-chart.js';
import { refreshLog } from './job-log.js';
import { render, scheduleRender } from './job-render.js';
import { CACHE_JOBS, cache, newJobState, open } from './job-state.js';
import { jobLabel, list, refreshList } from './jobs-table.js';
import { notice } from './notice.js';

export function openJob(id) {
  if (open.current?.id === id) return;
  closeJob();
  let st = cache.get(id);
  if (!st) {
    st = newJobState(id);
  }
  cache.delete(id);
  cache.set(id, st); // most recently used last
  while (cache.size > CACHE_JOBS) cache.delete(/** @type {string} */ (cache.keys().next().value));
  open.current = st;
  const controller = new AbortController();
  // liveAfter and pending: see JobUi in job-state.js
  open.ui = { st, controller, plot: null, shownEpochs: 0, shownSamples: 0, frame: 0, resize: null, generating: null, liveAfter: undefined, pending: null };

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
  createPlot();
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

export function closeJob() {
  if (!open.ui) return;
  open.ui.controller.abort();
  open.ui.generating?.abort();
  cancelAnimationFrame(open.ui.frame);
  open.ui.resize?.disconnect();
  open.ui.plot?.destroy();
  open.ui = null;
  open.current = null;
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

/** @param {import('./job-state.js').JobState} st */
export async function refreshView(st) {
  try {
    const view = await api.getJob(st.id);
    st.view = view;
    if (!st.state || TERMINAL.has(view.state) || !TERMINAL.has(st.state)) st.state = view.state;
    if (view.error && !st.error) st.error = view.error;
    if (open.ui?.st === st && open.ui.liveAfter === undefined) {
      open.ui.liveAfter = view.lastSeq ?? Infinity; // no lastSeq: no way to tell history from news
      const pending = open.ui.pending;
      open.ui.pending = null;
      if (pending && pending.seq > open.ui.liveAfter) announce(st, pending);
    }
    if (open.current === st) render();
    if (open.current === st && unsettled(st)) setTimeout(() => open.current === st && refreshView(st), SETTLE_POLL_MS);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      if (open.current === st) {
        $('job-error').hidden = false;
        $('job-error').textContent = `No job ${st.id} on this service.`;
        open.ui?.controller.abort();
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
  if (v?.state !== 'cancelled' || !(Date.now() < (st.settleUntil ?? 0))) return false;
  const epoch = v.progress?.epoch ?? 0;
  return epoch > 0 && (v.checkpointEpoch ?? 0) < epoch;
}

/** The job reached its final state: read its record again (what the final state left there). */
export function finalState(st) {
  st.settleUntil = Date.now() + SETTLE_MS;
  if (open.current === st) refreshView(st);
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
      if (open.current === st) $('job-status-text').textContent = `(stream interrupted, reconnecting…)`;
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
    if (open.current === st && open.ui) {
      if (open.ui.liveAfter === undefined)
        open.ui.pending = ev; // decided when the job's GET answers
      else if (ev.seq > open.ui.liveAfter) announce(st, ev);
    }
  }
  if (open.current === st) scheduleRender();
}

/** Tells of a live state change, and refreshes what depends on it. */
function announce(st, ev) {
  refreshLog(st);
  const detail = ev.state === 'failed' ? (ev.error ?? st.error) : ev.message;
  notice(stateNotice(jobLabelOf(st), ev.state, detail), ev.state === 'failed' ? 'error' : 'info');
  refreshView(st);
  refreshList();
}

export function jobLabelOf(st) {
  return st.view ? jobLabel(st.view) : st.id.slice(0, 8);
}

// Cancel asks first, in the view: "Yes, cancel job" or "Keep it running" (the safe answer has the focus)
function closeConfirm() {
  $('cancel-confirm').hidden = true;
  render();
  if (!$('job-cancel').hidden) $('job-cancel').focus();
}

$('job-cancel').addEventListener('click', () => {
  if (!open.current) return;
  $('cancel-question').textContent = `Cancel job ${jobLabelOf(open.current)}? Training stops; the checkpoint of its last epoch is kept.`;
  $('cancel-confirm').hidden = false;
  $('job-cancel').hidden = true;
  $('cancel-no').focus();
});

$('cancel-no').addEventListener('click', closeConfirm);
$('cancel-confirm').addEventListener('keydown', (e) => {
  if (e.key === 'Escape') closeConfirm();
});

$('cancel-yes').addEventListener('click', async () => {
  const st = open.current;
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
    if (open.current === st) render();
  }
});
