// @ts-check
// Names for jobs side by side (tables, the compare view): never ambiguous, and what differs between them.

/**
 * A label per job that no other job in `jobs` shares: the job's name when it is unique among them,
 * else the name (or nothing) with the shortest id prefix (8 characters at least) no other job shares.
 * @param {{ id: string, name?: string }[]} jobs
 * @returns {string[]}
 */
export function uniqueLabels(jobs) {
  /** @type {Map<string, number>} */
  const names = new Map();
  for (const j of jobs) if (j.name) names.set(j.name, (names.get(j.name) ?? 0) + 1);
  return jobs.map((j) => {
    if (j.name && names.get(j.name) === 1) return j.name;
    let n = 8;
    while (n < j.id.length && jobs.some((k) => k.id !== j.id && k.id.startsWith(j.id.slice(0, n)))) n++;
    return j.name ? `${j.name} (${j.id.slice(0, n)})` : j.id.slice(0, n);
  });
}

/**
 * The dotted paths of the spec leaves whose values differ between the specs (the name, the corpus
 * and the idempotency key left out).
 * @param {any[]} specs
 * @returns {string[]}
 */
export function variedPaths(specs) {
  /** @type {Map<string, Set<string>>} */
  const leaves = new Map();
  /** @param {any} v @param {string} path */
  const walk = (v, path) => {
    if (path === 'name' || path === 'idempotencyKey' || path === 'data.corpus') return;
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    else {
      let set = leaves.get(path);
      if (!set) leaves.set(path, (set = new Set()));
      set.add(JSON.stringify(v));
    }
  };
  for (const s of specs) walk(s ?? {}, '');
  return [...leaves].filter(([, vals]) => vals.size > 1).map(([p]) => p);
}

/**
 * @param {any} obj
 * @param {string} path
 */
export function valueAt(obj, path) {
  let cur = obj;
  for (const k of path.split('.')) cur = cur && typeof cur === 'object' ? cur[k] : undefined;
  return cur;
}

/** `lr=0.5 kind=concise`: the last part of each path and its value. */
export function valuesLabel(/** @type {Record<string, unknown>} */ values) {
  return Object.entries(values)
    .map(([p, v]) => `${p.split('.').pop()}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}
