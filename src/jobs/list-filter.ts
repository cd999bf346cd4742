// Listing with filters (owner, tag, experiment, name): the newest-first index is read in batches and
// each job's few filter fields checked before its view is read. A scan reads at most SCAN_BUDGET
// ids per page, so a page of a sparse filter may hold fewer than `limit` jobs — even none — and
// still carry a nextCursor: the caller keeps asking until there is none.
import type { JobSpecView, JobState } from './types.js';
import type { JobRecord, JobStore } from './job-records.js';

export interface JobMatch {
  state?: JobState;
  /** Only jobs of this owner fingerprint (a caller that is not an admin). */
  ownerKey?: string;
  tag?: string;
  experiment?: string;
  name?: string;
}

export const SCAN_BATCH = 200;
export const SCAN_BUDGET = 5000;

const FILTER_FIELDS = ['state', 'ownerKey', 'tags', 'experiment', 'name'] as const;

export function isFiltered(m: JobMatch): boolean {
  return m.ownerKey !== undefined || m.tag !== undefined || m.experiment !== undefined || m.name !== undefined;
}

function matches(f: Record<(typeof FILTER_FIELDS)[number], string | null>, m: JobMatch): boolean {
  if (m.state && f.state !== m.state) return false;
  if (m.ownerKey !== undefined && f.ownerKey !== m.ownerKey) return false;
  if (m.experiment !== undefined && f.experiment !== m.experiment) return false;
  if (m.name !== undefined && f.name !== m.name) return false;
  if (m.tag !== undefined) {
    let tags: unknown = [];
    try {
      tags = JSON.parse(f.tags ?? '[]');
    } catch {
      return false;
    }
    if (!Array.isArray(tags) || !tags.includes(m.tag)) return false;
  }
  return true;
}

export async function listMatching(
  store: JobStore,
  q: { limit: number; cursor?: string },
  m: JobMatch,
  includeCorpus = false,
): Promise<{ records: JobRecord<JobSpecView>[]; nextCursor?: string }> {
  const key = m.state ? store.keys.byState(m.state) : store.keys.all;
  const picked: string[] = [];
  let cursor = q.cursor;
  let scanned = 0;
  let more = true;
  while (picked.length <= q.limit && scanned < SCAN_BUDGET) {
    const max = cursor ? `(${cursor}` : '+';
    const ids = (await store.redis.call('ZRANGE', key, max, '-', 'BYLEX', 'REV', 'LIMIT', '0', String(SCAN_BATCH))) as string[];
    scanned += ids.length;
    const fields = await store.fieldsOf(ids, FILTER_FIELDS);
    for (let i = 0; i < ids.length && picked.length <= q.limit; i++) {
      const f = fields[i];
      if (f && matches(f, m)) picked.push(ids[i]);
      cursor = ids[i];
    }
    if (ids.length < SCAN_BATCH) {
      more = picked.length > q.limit;
      break;
    }
  }
  const page = picked.slice(0, q.limit);
  const records = (await store.getViews(page, includeCorpus)).filter((r): r is JobRecord<JobSpecView> => r !== null);
  if (picked.length > q.limit) return { records, nextCursor: page[page.length - 1] };
  // the budget ran out before the index did: the caller continues from the last id scanned
  if (more && cursor) return { records, nextCursor: cursor };
  return { records };
}
