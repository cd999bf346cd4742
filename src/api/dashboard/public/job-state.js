// @ts-check
// The job view's state, shared by its modules: what is known of each job opened lately, and what
// the open job's DOM shows.

/**
 * What the page knows of one job: its last GET, and what its event stream told.
 * @typedef {{
 *   id: string, view: any, state: string | undefined, epochs: any[], samples: { epoch: number, perplexity: number, samples: { prefix: string, text: string }[] }[],
 *   lastSeq: number, terminal: boolean, error: string | undefined, summary: any, settleUntil?: number
 * }} JobState
 */

/**
 * The open job's view; rebuilt on each opening. liveAfter: the job's lastSeq when this view opened
 * (from its first GET); events up to it are history being replayed and raise no notice. pending: a
 * state change that came before that GET.
 * @typedef {{
 *   st: JobState, controller: AbortController, plot: any, shownEpochs: number, shownSamples: number, frame: number,
 *   resize: ResizeObserver | null, generating: AbortController | null, liveAfter: number | undefined, pending: any
 * }} JobUi
 */

export const CACHE_JOBS = 8;

/**
 * Per-job state kept across openings, so reopening a job resumes its stream after lastSeq.
 * @type {Map<string, JobState>}
 */
export const cache = new Map();

/** The open job (null: none) and its view. @type {{ current: JobState | null, ui: JobUi | null }} */
export const open = { current: null, ui: null };

/**
 * @param {string} id
 * @returns {JobState}
 */
export function newJobState(id) {
  return { id, view: null, state: undefined, epochs: [], samples: [], lastSeq: 0, terminal: false, error: undefined, summary: undefined };
}
