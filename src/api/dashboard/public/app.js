// @ts-check
// The dashboard page's entry module (index.html loads it): jobs table (polled), job view
// (SSE-driven chart, samples, generate, cancel), submit form with the server's validation messages
// next to the fields, API key. This module routes (#job=ID) and polls; each part is its own module.
import { onKeyEntered, updateKeyButton, waitingForKey } from './auth.js';
import { TERMINAL } from './format.js';
import { closeJob, openJob, refreshView } from './job-view.js';
import { open } from './job-state.js';
import { refreshList } from './jobs-table.js';
import { closeCompare, openCompare } from './compare.js';
import './submit-form.js';
import './generate.js';
import './job-download.js';

const POLL_MS = 3000;

// a key was entered: read again what the missing key had stopped
onKeyEntered(() => {
  refreshList();
  if (open.current) refreshView(open.current);
});

function route() {
  const m = /^#job=(.+)$/.exec(location.hash);
  const cmp = /^#compare=(.+)$/.exec(location.hash);
  const exp = /^#experiment=(.+)$/.exec(location.hash);
  if (cmp || exp) {
    closeJob();
    openCompare(exp ? { experiment: decodeURIComponent(exp[1]) } : { jobs: (cmp?.[1] ?? '').split(',').map(decodeURIComponent).filter(Boolean) });
    return;
  }
  closeCompare();
  if (m) openJob(decodeURIComponent(m[1]));
  else closeJob();
}

window.addEventListener('hashchange', route);
window.addEventListener('popstate', route);

setInterval(() => {
  if (document.hidden || waitingForKey()) return;
  refreshList();
  if (open.current && (!open.current.view || !TERMINAL.has(open.current.view.state))) refreshView(open.current);
}, POLL_MS);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) refreshList();
});

updateKeyButton();
refreshList();
route();
