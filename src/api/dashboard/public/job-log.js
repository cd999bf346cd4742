// @ts-check
// The open job's own log lines.
import { ApiError } from './api.js';
import { api, reportError } from './auth.js';
import { $ } from './dom.js';
import { fmtTime } from './format.js';
import { open } from './job-state.js';

// ---- the job's log (GET /v1/jobs/:id/logs): read when the panel opens, on every state change, and
// every LOG_POLL_MS while it is open and the job not finished

const LOG_POLL_MS = 3000;
/** @type {ReturnType<typeof setTimeout> | number} */
let logTimer = 0;

export async function refreshLog(st) {
  clearTimeout(logTimer);
  if (open.current !== st || !$('job-log-details').open) return;
  try {
    const { lines } = await api.jobLogs(st.id, open.ui?.controller.signal);
    if (open.current !== st) return;
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
    if (open.ui?.controller.signal.aborted) return;
    if (!(e instanceof ApiError && e.status === 404)) reportError(e, 'Job log');
  }
  if (open.current === st && !st.terminal) logTimer = setTimeout(() => refreshLog(st), LOG_POLL_MS);
}

$('job-log-details').addEventListener('toggle', () => {
  if (open.current) refreshLog(open.current);
});
