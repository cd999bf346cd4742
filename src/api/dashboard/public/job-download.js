// @ts-check
// The open job's Download menu: its latest checkpoint as safetensors, ONNX, TensorFlow.js (two
// files) or our checkpoint, fetched with the tab's API key and saved under the server's file names.
import { api, reportError } from './auth.js';
import { $ } from './dom.js';
import { open } from './job-state.js';

/** Saves a blob as a download (an object URL on a temporary link). */
function save(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

$('job-download').addEventListener('click', async (e) => {
  const button = /** @type {HTMLElement} */ (e.target).closest('button[data-format]');
  const st = open.current;
  if (!button || !st) return;
  const format = /** @type {'safetensors' | 'onnx' | 'tfjs' | 'checkpoint'} */ (button.getAttribute('data-format'));
  const status = $('job-download-status');
  status.textContent = `Preparing ${format}…`;
  try {
    const { epoch, files } = await api.downloadModel(st.id, format, open.ui?.controller.signal);
    for (const f of files) save(f.name, f.blob);
    status.textContent = `Saved ${files.map((f) => f.name).join(' and ')} (epoch ${epoch}).`;
  } catch (err) {
    status.textContent = '';
    if (!open.ui?.controller.signal.aborted) reportError(err, 'Download');
  }
});
