// @ts-check
// Forms: the server's validation errors (problem+json) shown next to their fields.
import { el } from './dom.js';
import { fieldFor } from './format.js';

export function clearErrors(form, summary) {
  for (const f of form.querySelectorAll('[aria-invalid="true"]')) f.removeAttribute('aria-invalid');
  for (const p of form.querySelectorAll('.field-error')) p.remove();
  for (const f of form.querySelectorAll('[data-describedby-base]')) {
    const base = f.dataset.describedbyBase;
    if (base) f.setAttribute('aria-describedby', base);
    else f.removeAttribute('aria-describedby');
    delete f.dataset.describedbyBase;
  }
  summary.hidden = true;
  summary.replaceChildren();
}

/** Shows problem+json errors next to their inputs; returns how many could not be placed. */
export function showErrors(form, summary, error) {
  const byField = new Map();
  for (const f of form.querySelectorAll('[data-field]')) byField.set(f.dataset.field, f);
  const known = new Set(byField.keys());
  const unplaced = [];
  let first = null;
  const errors = error.errors.length > 0 ? error.errors : [{ field: '', message: error.message }];
  for (const err of errors) {
    const name = fieldFor(err.field, known);
    const target = name && byField.get(name);
    if (!target) {
      unplaced.push(err.field ? `${err.field}: ${err.message}` : err.message);
      continue;
    }
    const holder = target.tagName === 'FIELDSET' ? target : (target.closest('.prefix-row, .field') ?? target.parentElement);
    const id = `${target.id || name.replace(/\W/g, '-')}-error`;
    /** @type {HTMLElement} */
    const p = document.getElementById(id) ?? el('p', { class: 'field-error', id });
    if (!p.isConnected) holder.append(p);
    p.textContent = p.textContent ? `${p.textContent} ${err.message}` : err.message;
    const input = target.tagName === 'FIELDSET' ? (target.querySelector('input:checked') ?? target.querySelector('input')) : target;
    input.setAttribute('aria-invalid', 'true');
    if (input.dataset.describedbyBase === undefined) input.dataset.describedbyBase = input.getAttribute('aria-describedby') ?? '';
    input.setAttribute('aria-describedby', `${input.dataset.describedbyBase} ${id}`.trim());
    const details = target.closest('details');
    if (details) details.open = true;
    first ??= input;
  }
  if (unplaced.length > 0) {
    summary.hidden = false;
    summary.replaceChildren(...unplaced.flatMap((m, i) => (i === 0 ? m : [el('br'), m])));
  } else if (first) {
    summary.hidden = false;
    summary.textContent = `Please correct the ${errors.length === 1 ? 'field' : `${errors.length} fields`} marked below.`;
  }
  first?.focus();
  return unplaced.length;
}

// a typed-in number the browser cannot parse reads as '': say so instead of sending the default
export function unparsableNumbers(form) {
  return [...form.querySelectorAll('input[type="number"]')]
    .filter((i) => i.validity.badInput)
    .map((i) => ({ field: i.dataset.field, message: `${i.labels?.[0]?.textContent ?? i.dataset.field} must be a number` }));
}
