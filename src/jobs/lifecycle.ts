// A job's state machine in one place (docs/architecture.md, "A job's life"). Every state change of a
// job goes through one of JobRun's methods, each of which names the states it may start from and
// whose token must own the job; EventLog.transition (one Lua script: check, append the state event,
// update the record and the state indexes, publish) makes each one atomic.
//
//   submit
//     │
//     ▼          start                succeed
//   queued ──────────────────▶ running ─────────▶ succeeded
//    ▲ │                        │ │ │   fail
//    │ │                        │ │ └───────────▶ failed ◀── giveUp (from queued or running)
//    │ │                        │ │   timeOut
//    │ └──────── cancel ────────┼─┴─────────────▶ cancelled ◀── cancel (from running)
//    │                          │
//    └──────────────────────────┘
//      retry · handBack · markLost · takeOver
//
// Invariants:
// - Owner fencing: a worker's steps out of `running` (succeed, fail, retry, handBack, timeOut) and
//   its epoch events (publishEpoch) need its own lock token to be the record's owner, so a worker
//   that was frozen and came back after its job moved on changes nothing. Every step out of
//   `running` clears the owner.
// - markLost (the stalled checker, any worker) moves a running job back to queued only while
//   nobody holds its queue lock (requireNoLock): its worker is really gone, not just slow.
// - takeOver (the worker that now holds the lock) fences by the previous owner's token instead.
// - cancel (the API) applies to queued and running only, and only if no event was appended since
//   the caller read the record (ifLastSeq), so its summary is the job's last epoch.
// - succeeded, failed and cancelled are final: no method leaves them.
// Callers own the words (messages, errors, summaries); this module owns which change is allowed.
import type { EpochEvent } from '../train/trainer.js';
import type { AppendResult, EventLog, TransitionResult } from './events.js';
import type { JobState, JobSummary } from './types.js';

export type { AppendResult, TransitionResult };

/** The states a user's cancel applies to (the non-final ones). */
export const CANCELLABLE_STATES: readonly JobState[] = ['queued', 'running'];

/**
 * One job's state changes, as seen by one party: a worker with its BullMQ lock token (`token`), or,
 * without one, the API (cancel) and another worker's stalled checker (markLost, giveUp).
 */
export class JobRun {
  constructor(
    private readonly events: EventLog,
    readonly id: string,
    readonly token?: string,
  ) {}

  /** queued → running: this worker takes the job; its token becomes the owner. */
  start(o: { attempt: number; message?: string; fields?: Record<string, string | number> }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'running', { from: ['queued'], setOwner: this.owner(), attempt: o.attempt, message: o.message, fields: o.fields });
  }

  /** An epoch's event, appended only by the owner while running and only as lastEpoch+1. */
  publishEpoch(ev: EpochEvent): Promise<AppendResult> {
    return this.events.appendEpoch(this.id, this.owner(), ev);
  }

  /** running → succeeded, by the owner. */
  succeed(o: { summary: JobSummary; message?: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'succeeded', {
      from: ['running'],
      requireOwner: this.owner(),
      setOwner: '-',
      summary: o.summary,
      message: o.message,
    });
  }

  /** running → failed, by the owner: its last attempt failed. */
  fail(o: { error: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'failed', { from: ['running'], requireOwner: this.owner(), setOwner: '-', error: o.error });
  }

  /** running → queued, by the owner: an attempt failed and another one follows. */
  retry(o: { message: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'queued', { from: ['running'], requireOwner: this.owner(), setOwner: '-', message: o.message });
  }

  /** running → queued, by the owner: it shuts down and hands the job back (no attempt used). */
  handBack(o: { message: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'queued', { from: ['running'], requireOwner: this.owner(), setOwner: '-', message: o.message });
  }

  /** running → cancelled, by the owner: the job's training time passed train.timeoutSeconds. */
  timeOut(o: { summary: JobSummary; message: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'cancelled', {
      from: ['running'],
      requireOwner: this.owner(),
      setOwner: '-',
      summary: o.summary,
      message: o.message,
    });
  }

  /** running → queued, by anyone, only while nobody holds the job's queue lock: its worker is gone. */
  markLost(o: { message: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'queued', { from: ['running'], requireNoLock: true, setOwner: '-', message: o.message });
  }

  /**
   * running → queued while `previousOwner` still owns it: the worker now holding the job's lock
   * found it running under a worker that died without handing it back ('' checks no owner).
   */
  takeOver(o: { previousOwner: string; message: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'queued', { from: ['running'], requireOwner: o.previousOwner, setOwner: '-', message: o.message });
  }

  /** queued | running → failed, unfenced: out of attempts, or failed before it could start. */
  giveUp(o: { error: string }): Promise<TransitionResult> {
    return this.events.transition(this.id, 'failed', { from: ['queued', 'running'], setOwner: '-', error: o.error });
  }

  /**
   * queued | running → cancelled (the user's cancel): only from the state the caller read and only
   * if nothing was appended since (`seen.lastSeq`). A final `seen.state` is refused here.
   */
  async cancel(o: { seen: { state: JobState; lastSeq: number }; summary: JobSummary; message: string }): Promise<TransitionResult> {
    if (!CANCELLABLE_STATES.includes(o.seen.state)) return { ok: false, reason: 'state', current: o.seen.state };
    return this.events.transition(this.id, 'cancelled', { from: [o.seen.state], ifLastSeq: o.seen.lastSeq, summary: o.summary, message: o.message });
  }

  private owner(): string {
    if (!this.token) throw new Error(`internal error: job ${this.id}: a worker's step needs its lock token`);
    return this.token;
  }
}
