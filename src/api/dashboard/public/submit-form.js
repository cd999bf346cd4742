// @ts-check
// The submit form: a training job's spec from the form's fields, sent to POST /v1/jobs.
import { ApiError } from './api.js';
import { api, needKey } from './auth.js';
import { $, el } from './dom.js';
import { buildBody, setPath } from './format.js';
import { clearErrors, showErrors, unparsableNumbers } from './form-errors.js';
import { jobLabel, refreshList } from './jobs-table.js';
import { notice } from './notice.js';

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
      summary.textContent =
        err instanceof ApiError ? `The service failed: ${err.message} (HTTP ${err.status})` : `Cannot reach the service: ${err?.message ?? err}`;
    }
  } finally {
    button.disabled = false;
  }
});
