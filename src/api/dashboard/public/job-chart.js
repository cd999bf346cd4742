// @ts-check
// The open job's chart: perplexity (log scale) and tokens/s by epoch, drawn with uPlot; a job with a
// held-out part (data.validFraction) gets its validation perplexity as a second curve.
import uPlot from './uPlot.esm.js';
import { $ } from './dom.js';
import { fmtPerplexity, fmtRate, logTicks } from './format.js';
import { open } from './job-state.js';

/** The job view's chart (perplexity and tokens/s per epoch), drawn into #chart for the open job. */
export function createPlot() {
  const box = $('chart');
  box.replaceChildren();
  const width = Math.max(280, box.clientWidth || 600);
  const ui = /** @type {import('./job-state.js').JobUi} */ (open.ui);
  /** @type {import('uplot').Options} */
  const opts = {
    width,
    height: 260,
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: {
        time: false,
        range: (_u, _min, max) =>
          /** @type {[number, number]} */ ([1, Math.max(max || 1, open.ui?.st.view?.spec?.train?.epochs ?? open.ui?.st.epochs[0]?.epochs ?? 2)]),
      },
      // perplexity ≥ 1, on a log scale from 1: the start (≈ 25) and a converged end (≈ 1.1) both readable
      ppl: { distr: 3, log: 10, auto: true, range: (_u, min, max) => pplRange(min, max) },
      tps: { auto: true, range: (_u, _min, max) => /** @type {[number, number]} */ ([0, Math.ceil((max || 1) * 1.1)]) },
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
      {
        scale: 'tps',
        side: 1,
        label: 'tokens/s',
        grid: { show: false },
        size: 60,
        values: (_u, ticks) => ticks.map((t) => (t >= 1000 ? `${t / 1000}k` : String(t))),
      },
    ],
    hooks: { setLegend: [(u) => u.legend.idx == null && legendLatest(u)] },
  };
  ui.plot = new uPlot(opts, [[], [], []], box);
  ui.resize = new ResizeObserver(() => {
    const w = Math.max(280, box.clientWidth);
    if (open.ui?.plot && Math.abs(open.ui.plot.width - w) > 2) open.ui.plot.setSize({ width: w, height: 260 });
  });
  ui.resize.observe(box);
}

/** The validation perplexity curve, added (after the training one) once a job's epochs carry it. */
export function addValidSeries() {
  const ui = open.ui;
  if (!ui?.plot || ui.validSeries) return;
  ui.plot.addSeries({ label: 'validation perplexity', scale: 'ppl', stroke: '#ea580c', width: 2, dash: [6, 3], value: (_u, v) => fmtPerplexity(v) }, 2);
  ui.validSeries = true;
}

/** Away from the chart the legend shows the latest epoch (uPlot would show "--" for no point). */
export function legendLatest(u) {
  const n = u.data[0]?.length ?? 0;
  if (n > 0 && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 }, false);
}

/** The perplexity scale: from 1 (its least possible value) to a little above the highest value. */
/**
 * @param {number} min
 * @param {number} max
 * @returns {[number, number]}
 */
function pplRange(min, max) {
  const lo = Number.isFinite(min) && min > 0 && min < 1 ? 10 ** Math.floor(Math.log10(min)) : 1;
  const hi = Number.isFinite(max) && max > lo ? max * 1.15 : lo * 2;
  return [lo, hi];
}
