// @ts-check
// The jobs table: polled, filtered by state, paged; rows updated in place. Names are never ambiguous
// (labels.js: the name when unique on the page, else with enough of the id; the full id on hover),
// and ticked rows open the compare view.
import { api, keyWorked, reportError } from './auth.js';
import { $, el, setText } from './dom.js';
import { fmtPerplexity, fmtRate, fmtTime, fmtWhen } from './format.js';
import { open } from './job-state.js';
import { notice } from './notice.js';
import { uniqueLabels } from './labels.js';

/** Ticked jobs (kept across polls and pages), for the compare view. @type {Set<string>} */
export const picked = new Set();

const PAGE_SIZE = 25;

/**
 * The table's query and rows (kept across polls, keyed by job id).
 * @type {{ state: string, cursors: (string | undefined)[], page: number, nextCursor: string | undefined, inflight: boolean, rows: Map<string, HTMLTableRowElement> }}
 */
export const list = { state: '', cursors: [undefined], page: 0, nextCursor: undefined, inflight: false, rows: new Map() };

export function jobLabel(job) {
  return job.name || job.spec?.name || job.id.slice(0, 8);
}

export function engineOf(job) {
  if (!job.engine && !job.backend) return '–';
  return [job.engine, job.backend].filter(Boolean).join(' / ');
}

export function stateBadge(state) {
  return el('span', { class: `state state-${state}`, text: state });
}

/** data-label of each cell: what a phone's card shows before the value. */
const COLUMNS = ['Name', 'State', 'Epoch', 'Perplexity', 'Tokens/s', 'Started / finished'];

/**
 * A job's row, created once and then updated in place (a focused link keeps its focus).
 * @param {any} job
 * @param {string} label the job's unambiguous name on this page
 */
function jobRow(job, label) {
  /** @type {any} the row and its cells, as built just below */
  let tr = list.rows.get(job.id);
  if (!tr) {
    tr = el('tr', { 'data-job-id': job.id });
    for (const label of COLUMNS) tr.append(el('td', { 'data-label': label }));
    const box = el('input', { type: 'checkbox', class: 'pick-box' });
    box.checked = picked.has(job.id);
    box.addEventListener('change', () => {
      if (box.checked) picked.add(job.id);
      else picked.delete(job.id);
      updateCompareButton();
    });
    // the tick box (in the name cell: the table keeps its six columns) has a real label, hidden;
    // then the name (two lines at most), and under it the model kind and the engine
    tr.cells[0].classList.add('has-pick');
    tr.cells[0].append(
      el('label', { class: 'pick-label' }, box, el('span', { class: 'visually-hidden' })),
      el('a', { class: 'job-name', href: `#job=${encodeURIComponent(job.id)}` }),
      el('span', { class: 'job-meta' }),
    );
    tr.cells[1].append(el('span'));
    tr.cells[5].append(el('time', { class: 'started' }), el('time', { class: 'finished' }));
    list.rows.set(job.id, tr);
  }
  const [name, state, epoch, ppl, tps, when] = tr.cells;
  const [pick, link] = name.children;
  setText(pick.lastChild, `pick ${label} to compare`);
  setText(link, label);
  // the full id on hover (and the owner with API keys on)
  link.title = `${label}\n${job.id}${job.owner ? `\nowner ${job.owner}` : ''}`;
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
  const selected = open.current?.id === job.id;
  tr.classList.toggle('selected', selected);
  if (selected) tr.setAttribute('aria-current', 'true');
  else tr.removeAttribute('aria-current');
  return tr;
}

function renderJobs(jobs) {
  const body = $('jobs-body');
  const keep = new Set(jobs.map((j) => j.id));
  for (const id of [...list.rows.keys()]) if (!keep.has(id)) list.rows.delete(id);
  const labels = uniqueLabels(jobs.map((j) => ({ id: j.id, name: j.name || j.spec?.name })));
  const rows = jobs.map((j, i) => jobRow(j, labels[i]));
  // reorder only when the order changed (moving a row would drop the focus inside it)
  if (rows.length !== body.children.length || rows.some((r, i) => body.children[i] !== r)) body.replaceChildren(...rows);
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs-empty').textContent = list.state ? `No ${list.state} jobs.` : 'No jobs yet.';
  $('page-next').hidden = !list.nextCursor;
  $('page-first').hidden = list.page === 0;
  $('jobs-updated').textContent = `updated ${fmtTime(new Date().toISOString())}`;
}

export async function refreshList() {
  if (list.inflight) return;
  list.inflight = true;
  try {
    const r = await api.listJobs({ state: list.state || undefined, limit: PAGE_SIZE, cursor: list.cursors[list.page] });
    list.nextCursor = r.nextCursor;
    renderJobs(r.jobs ?? []);
    keyWorked();
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
function updateCompareButton() {
  const b = $('compare-picked');
  b.disabled = picked.size < 2;
  b.textContent = picked.size ? `Compare ${picked.size}` : 'Compare';
}
$('compare-picked').addEventListener('click', () => {
  if (picked.size >= 2) location.hash = `#compare=${[...picked].map(encodeURIComponent).join(',')}`;
});
$('page-first').addEventListener('click', () => {
  list.cursors = [undefined];
  list.page = 0;
  refreshList();
});
