// @ts-check
// The compare view (#compare=ID,ID,… or #experiment=XID): the jobs' perplexity curves overlaid in one
// chart (one colour each, the legend naming each by its varied values) and a table of their results,
// sortable by any column. An experiment comes from GET /v1/experiments/:id (its varied values and
// results); picked jobs from their records, with the varied values worked out from their specs.
import uPlot from './uPlot.esm.js';
import { api, reportError } from './auth.js';
import { $, el, setText } from './dom.js';
import { fmtDuration, fmtPerplexity, fmtRate, logTicks } from './format.js';
import { uniqueLabels, valueAt, valuesLabel, variedPaths } from './labels.js';
import { legendLatest } from './job-chart.js';

/** One colour per job (Tableau 10: distinct, readable on white). */
export const COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/**
 * @typedef {{ id: string, label: string, title?: string, values: Record<string, unknown>, state: string, epoch: number, epochs: number,
 *   finalPerplexity?: number, bestPerplexity?: number, tokensPerSec?: number, elapsedMs?: number, curve: number[][] }} Row
 */

/** What the view shows. @type {{ key: string, rows: Row[], varied: string[], sort: { col: string, dir: 1 | -1 }, plot: any, resize: ResizeObserver | null }} */
const view = { key: '', rows: [], varied: [], sort: { col: 'finalPerplexity', dir: 1 }, plot: null, resize: null };

/** Every epoch of a job: [epochs, perplexities], a page of 1000 at a time. */
async function curveOf(id) {
  /** @type {number[]} */ const xs = [];
  /** @type {number[]} */ const ys = [];
  let after = 0;
  for (let page = 0; page < 10; page++) {
    const r = await api.epochs(id, after);
    for (const e of r.epochs) {
      xs.push(e.epoch);
      ys.push(e.perplexity);
    }
    if (r.nextAfter === undefined) break;
    after = r.nextAfter;
  }
  return [xs, ys];
}

/** @param {{ jobs?: string[], experiment?: string }} what */
export async function openCompare(what) {
  const key = what.experiment ? `x:${what.experiment}` : `j:${(what.jobs ?? []).join(',')}`;
  $('compare-panel').hidden = false;
  $('job-panel').hidden = true;
  $('job-placeholder').hidden = true;
  if (view.key !== key) {
    view.key = key;
    view.rows = [];
    $('compare-body').replaceChildren();
    $('compare-chart').replaceChildren();
  }
  try {
    if (what.experiment) {
      const exp = await api.getExperiment(what.experiment);
      setText($('compare-title'), `Experiment ${exp.name ?? exp.id}`);
      $('compare-title').title = exp.id;
      view.varied = exp.varied;
      // the varied values have their own columns: the job column needs only a short unique id
      const labels = uniqueLabels(exp.jobs.map((j) => ({ id: j.id })));
      view.rows = await Promise.all(
        exp.jobs.map(async (j, i) => ({
          ...j,
          label: labels[i],
          title: `${j.name ?? ''}\n${j.id}`.trim(),
          curve: j.state === 'deleted' ? [[], []] : await curveOf(j.id),
        })),
      );
    } else {
      const ids = what.jobs ?? [];
      const jobs = await Promise.all(ids.map((id) => api.getJob(id)));
      setText($('compare-title'), `Compare ${jobs.length} jobs`);
      $('compare-title').title = ids.join('\n');
      view.varied = variedPaths(jobs.map((j) => j.spec));
      const labels = uniqueLabels(jobs.map((j) => ({ id: j.id, name: j.name })));
      view.rows = await Promise.all(
        jobs.map(async (j, i) => {
          const curve = await curveOf(j.id);
          const best = curve[1].filter(Number.isFinite);
          return {
            id: j.id,
            label: labels[i],
            title: j.id,
            values: Object.fromEntries(view.varied.map((p) => [p, valueAt(j.spec, p)])),
            state: j.state,
            epoch: j.progress?.epoch ?? 0,
            epochs: j.progress?.epochs ?? 0,
            finalPerplexity: j.summary?.finalPerplexity ?? j.perplexity,
            bestPerplexity: best.length ? Math.min(...best) : undefined,
            tokensPerSec: j.tokensPerSec,
            elapsedMs: j.summary?.totalMs ?? j.lastEpochs?.at(-1)?.elapsedMs,
            curve,
          };
        }),
      );
    }
    renderTable();
    renderChart();
  } catch (e) {
    reportError(e, 'Compare');
  }
}

export function closeCompare() {
  $('compare-panel').hidden = true;
  view.key = '';
  view.plot?.destroy();
  view.plot = null;
  view.resize?.disconnect();
}

/** The legend's name of a row: its varied values when there are any, else its label. */
const seriesName = (/** @type {Row} */ r) => (view.varied.length ? valuesLabel(r.values) : r.label);

function renderChart() {
  const box = $('compare-chart');
  view.plot?.destroy();
  view.resize?.disconnect();
  box.replaceChildren();
  const maxEpoch = Math.max(1, ...view.rows.map((r) => r.curve[0].at(-1) ?? 0));
  const xs = Array.from({ length: maxEpoch }, (_, i) => i + 1);
  const series = view.rows.map((r) => {
    const ys = new Array(maxEpoch).fill(null);
    r.curve[0].forEach((e, i) => (ys[e - 1] = Number.isFinite(r.curve[1][i]) ? r.curve[1][i] : null));
    return ys;
  });
  const width = Math.max(280, box.clientWidth || 600);
  /** @type {import('uplot').Options} */
  const opts = {
    width,
    height: 300,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false }, ppl: { distr: 3, log: 10, auto: true } },
    series: [
      { label: 'epoch' },
      ...view.rows.map((r, i) => ({
        label: seriesName(r),
        scale: 'ppl',
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        spanGaps: true,
        value: (_u, v) => fmtPerplexity(v),
      })),
    ],
    axes: [
      { label: 'epoch' },
      {
        scale: 'ppl',
        label: 'perplexity (log scale)',
        size: 50,
        splits: (_u, _i, min, max) => logTicks(min, max, 6),
        values: (_u, ticks) => ticks.map((t) => (t == null ? '' : String(t))),
      },
    ],
    // away from the chart the legend shows each job's last epoch
    hooks: { setLegend: [(u) => u.legend.idx == null && legendLatest(u)] },
  };
  view.plot = new uPlot(opts, /** @type {any} */ ([xs, ...series]), box);
  box.dataset.series = String(view.rows.length);
  view.resize = new ResizeObserver(() => {
    const w = Math.max(280, box.clientWidth);
    if (view.plot && Math.abs(view.plot.width - w) > 2) view.plot.setSize({ width: w, height: 300 });
  });
  view.resize.observe(box);
}

/** The columns: the job, each varied path, then the results. */
function columns() {
  return [
    { col: 'label', title: 'Job' },
    ...view.varied.map((p) => ({ col: `v:${p}`, title: p })),
    { col: 'state', title: 'State' },
    { col: 'epoch', title: 'Epoch' },
    { col: 'finalPerplexity', title: 'Final ppl' },
    { col: 'bestPerplexity', title: 'Best ppl' },
    { col: 'tokensPerSec', title: 'Tokens/s' },
    { col: 'elapsedMs', title: 'Time' },
  ];
}

/** @param {Row} r @param {string} col */
function cellValue(r, col) {
  if (col.startsWith('v:')) return r.values[col.slice(2)];
  return /** @type {any} */ (r)[col];
}

function renderTable() {
  const cols = columns();
  const head = $('compare-head');
  head.replaceChildren(
    el(
      'tr',
      {},
      ...cols.map((c) => {
        const sorted = view.sort.col === c.col;
        const th = el('th', { scope: 'col', 'aria-sort': sorted ? (view.sort.dir === 1 ? 'ascending' : 'descending') : 'none' });
        const b = el('button', { type: 'button', class: 'sort', text: `${c.title}${sorted ? (view.sort.dir === 1 ? ' ▲' : ' ▼') : ''}` });
        b.addEventListener('click', () => {
          view.sort = { col: c.col, dir: sorted ? /** @type {1 | -1} */ (-view.sort.dir) : 1 };
          renderTable();
        });
        th.append(b);
        return th;
      }),
    ),
  );
  const order = view.rows.map((r, i) => ({ r, i }));
  order.sort((a, b) => {
    const x = cellValue(a.r, view.sort.col);
    const y = cellValue(b.r, view.sort.col);
    if (x === y) return a.i - b.i;
    if (x === undefined || x === null) return 1; // missing values last, either way
    if (y === undefined || y === null) return -1;
    return (x < y ? -1 : 1) * view.sort.dir;
  });
  $('compare-body').replaceChildren(
    ...order.map(({ r, i }) => {
      const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = COLOURS[i % COLOURS.length];
      const link = el('a', { href: `#job=${encodeURIComponent(r.id)}`, text: r.label, title: r.title ?? r.id });
      return el(
        'tr',
        { 'data-job-id': r.id },
        el('td', { 'data-label': 'Job' }, swatch, link),
        ...view.varied.map((p) => el('td', { 'data-label': p, text: String(r.values[p] ?? '–') })),
        el('td', { 'data-label': 'State' }, el('span', { class: `state state-${r.state}`, text: r.state })),
        el('td', { 'data-label': 'Epoch', text: `${r.epoch}/${r.epochs}` }),
        el('td', { 'data-label': 'Final ppl', text: fmtPerplexity(r.finalPerplexity) }),
        el('td', { 'data-label': 'Best ppl', text: fmtPerplexity(r.bestPerplexity) }),
        el('td', { 'data-label': 'Tokens/s', text: fmtRate(r.tokensPerSec) }),
        el('td', { 'data-label': 'Time', text: r.elapsedMs === undefined ? '–' : fmtDuration(r.elapsedMs) }),
      );
    }),
  );
}

$('compare-close').addEventListener('click', () => {
  location.hash = '';
});
