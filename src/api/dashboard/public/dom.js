// @ts-check
// Small DOM helpers the page's modules share.

/**
 * The page's element of that id (index.html has them all).
 * @param {string} id
 * @returns {any}
 */
export const $ = (id) => document.getElementById(id);
export const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};
/**
 * Waits ms, or less if the signal aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve(undefined);
      },
      { once: true },
    );
  });
export const setText = (e, text) => {
  if (e.textContent !== text) e.textContent = text;
};
