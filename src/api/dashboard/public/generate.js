// @ts-check
// The open job's generate form: text from its latest checkpoint, streamed as it comes.
import { ApiError } from './api.js';
import { api, needKey } from './auth.js';
import { $, el } from './dom.js';
import { buildBody, cleanText } from './format.js';
import { clearErrors, showErrors, unparsableNumbers } from './form-errors.js';
import { open } from './job-state.js';

$('generate-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const st = open.current;
  if (!st || !open.ui) return;
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
  open.ui.generating = controller;
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
    if (open.ui?.generating === controller) open.ui.generating = null;
  }
});

$('gen-stop').addEventListener('click', () => open.ui?.generating?.abort());
