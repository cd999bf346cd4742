// @ts-check
// Draws the open job's view from its state: status, stats, epoch table and chart, samples.
import { $, el, setText } from './dom.js';
import { describeCorpus, describeVocab, fmtDuration, fmtPerplexity, fmtRate, splitSample } from './format.js';
import { addValidSeries, legendLatest } from './job-chart.js';
import { open } from './job-state.js';
import { engineOf, jobLabel, stateBadge } from './jobs-table.js';

export function scheduleRender() {
  if (!open.ui || open.ui.frame) return;
  open.ui.frame = requestAnimationFrame(() => {
    if (!open.ui) return;
    open.ui.frame = 0;
    render();
  });
}

export function render() {
  if (!open.ui) return;
  const st = open.ui.st;
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
    $('job-corpus').title = typeof corpus?.sha256 === 'string' ? `SHA-256 ${corpus.sha256}` : typeof corpus?.id === 'string' ? `corpus ${corpus.id}` : '';
    setText($('stat-vocab'), describeVocab(view.data));
    // generation starts from the job's own first prefix (a Russian corpus's first words, not the book's)
    const first = view.spec?.report?.prefixes?.[0];
    if (!open.ui.prefixSet && typeof first === 'string') {
      /** @type {HTMLInputElement} */ ($('g-prefix')).value = first;
      open.ui.prefixSet = true;
    }
    $('stat-vocab').title = Array.isArray(view.data?.topTokens)
      ? `most frequent: ${view.data.topTokens.map(([t, n]) => `${JSON.stringify(t)} ${n}`).join(', ')}`
      : '';
  }
  $('job-state').replaceChildren(...(state ? [stateBadge(state)] : []));
  let status = '';
  if (state === 'queued') status = 'waiting for a worker';
  else if (state === 'running') status = last ? `epoch ${last.epoch} of ${epochs}` : 'starting';
  else if (state === 'succeeded') {
    status = `finished: perplexity ${fmtPerplexity(st.summary?.finalPerplexity ?? view?.summary?.finalPerplexity ?? last?.perplexity)} after ${fmtDuration(st.summary?.totalMs ?? view?.summary?.totalMs)}`;
    const stop = st.summary?.stopReason ?? view?.summary?.stopReason;
    if (stop) status += ` (${stop})`;
  } else if (state === 'cancelled') status = last ? `cancelled at epoch ${last.epoch}` : 'cancelled';
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
  $('job-download').hidden = typeof view?.checkpointEpoch !== 'number';

  // the curve and the epoch table grow by the epochs not shown yet
  if (open.ui.shownEpochs !== st.epochs.length) {
    const rows = [];
    for (let i = open.ui.shownEpochs; i < st.epochs.length; i++) {
      const e = st.epochs[i];
      rows.push(
        el(
          'tr',
          {},
          el('td', { text: String(e.epoch) }),
          el('td', { text: fmtPerplexity(e.perplexity) }),
          el('td', { text: fmtRate(e.tokensPerSec) }),
          el('td', { text: fmtDuration(e.elapsedMs) }),
        ),
      );
    }
    $('epochs-body').append(...rows);
    open.ui.shownEpochs = st.epochs.length;
    const finite = (v, above) => (typeof v === 'number' && Number.isFinite(v) && v > above ? v : null); // a log scale takes no 0, NaN or ∞
    const xs = st.epochs.map((e) => e.epoch);
    const ppl = st.epochs.map((e) => finite(e.perplexity, 0));
    const tps = st.epochs.map((e) => finite(e.tokensPerSec, -1));
    if (st.epochs.some((e) => typeof e.validPerplexity === 'number')) addValidSeries();
    open.ui.plot.setData(open.ui.validSeries ? [xs, ppl, st.epochs.map((e) => finite(e.validPerplexity, 0)), tps] : [xs, ppl, tps]);
    legendLatest(open.ui.plot);
    $('chart').dataset.points = String(st.epochs.length);
    const valid = typeof last?.validPerplexity === 'number' ? `, validation ${fmtPerplexity(last.validPerplexity)}` : '';
    $('chart-caption').textContent = last ? `Perplexity by epoch (epoch ${last.epoch}: ${fmtPerplexity(last.perplexity)}${valid})` : 'Perplexity by epoch';
  }

  // samples: newest first
  if (open.ui.shownSamples !== st.samples.length) {
    const box = $('samples');
    for (let i = open.ui.shownSamples; i < st.samples.length; i++) box.prepend(sampleItem(st.samples[i]));
    open.ui.shownSamples = st.samples.length;
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
