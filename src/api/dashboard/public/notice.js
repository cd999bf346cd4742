// @ts-check
// The page's one live notice line (role=status in index.html).
import { $ } from './dom.js';

export function notice(text, kind = 'info') {
  const n = $('notice');
  if (n.textContent === text && n.dataset.kind === kind) return; // not read out twice
  n.textContent = text;
  n.dataset.kind = kind;
}
