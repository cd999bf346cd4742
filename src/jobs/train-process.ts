// One job attempt's own process, seen from the worker: forks src/jobs/train-child.ts, relays its
// output, and turns everything it says — and its death — into one ordered stream of messages.
//
// Why our own child_process.fork rather than BullMQ's sandboxed processor: the sandbox runs the
// whole processor in the child, so the child would write the history and checkpoints itself and
// the worker could neither stop it within a minibatch (its only handle is kill) nor tell, when it
// dies, what was published and checkpointed; it also reuses child processes across jobs, so one
// job's leaked memory or broken device context is the next one's. Here the child only computes;
// the worker keeps every Redis write (and so every fence and invariant) in one place, a cancel is a
// message that stops the child between two minibatches, and a child that dies is one 'exit'
// message with its signal, exit code and last stderr line.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EpochEvent } from '../train/trainer.js';
import type { TestCrash } from './test-hooks.js';
import type { JobSummary } from './types.js';

export interface StartMessage {
  t: 'start';
  /** The job's spec as stored (validated again in the child). */
  spec: unknown;
  /** ENGINE of the worker: the child selects the same engine. */
  engine?: string;
  /** The checkpoint to resume from (its stored bytes). */
  resume?: Uint8Array;
  /** Without resume: the model file the job starts from (spec.init; a checkpoint or safetensors). */
  init?: Uint8Array;
  attempt: number;
  name?: string;
  /** The text of an uploaded corpus the spec names by id (read from Redis by the worker). */
  corpusText?: string;
  /** TEST-ONLY: crash in the middle of an epoch (TestCrash, test-hooks.ts). */
  testCrash?: TestCrash;
}

export type ChildCommand = { t: 'checkpoint' } | { t: 'next'; keep: boolean } | { t: 'stop'; reason: string };

export type ChildMessage =
  /** The trainer is built (corpus, engine, weights): its training time starts now. */
  | { t: 'training' }
  | { t: 'epoch'; ev: EpochEvent }
  | { t: 'checkpoint'; epoch: number; data: Uint8Array }
  | { t: 'done'; summary: JobSummary }
  | { t: 'stopped'; epoch: number; current?: Uint8Array; atPublished?: Uint8Array }
  | { t: 'error'; message: string; final: boolean };

/** What the worker reads: the child's messages, then (always last) its exit. */
export type ProcessMessage = ChildMessage | { t: 'exit'; code: number | null; signal: NodeJS.Signals | null; lastStderr?: string };

const here = fileURLToPath(import.meta.url);
const CHILD = path.join(path.dirname(here), `train-child${path.extname(here)}`);

export class TrainingProcess {
  readonly child: ChildProcess;
  private readonly queue: ProcessMessage[] = [];
  private waiter?: (m: ProcessMessage) => void;
  private readonly stderrTail: string[] = [];
  private partial = '';
  exited = false;

  constructor(start: Omit<StartMessage, 't'>, o: { env?: NodeJS.ProcessEnv } = {}) {
    this.child = fork(CHILD, [], {
      execArgv: process.execArgv, // tsx's loader when the worker runs from source
      env: o.env ?? process.env,
      serialization: 'advanced', // checkpoints travel as bytes, not JSON arrays
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.stdout!.on('data', (d: Buffer) => process.stdout.write(d));
    this.child.stderr!.on('data', (d: Buffer) => {
      process.stderr.write(d);
      this.keepStderr(d.toString());
    });
    this.child.on('message', (m: ChildMessage) => this.push(m));
    this.child.on('error', () => undefined); // a failed send: the exit follows
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      if (this.partial.trim()) this.stderrTail.push(this.partial.trim());
      this.push({ t: 'exit', code, signal, lastStderr: lastMeaningfulLine(this.stderrTail) });
    });
    this.send({ t: 'start', ...start });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private keepStderr(s: string): void {
    const lines = (this.partial + s).split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) this.stderrTail.push(l.trim());
    if (this.stderrTail.length > 40) this.stderrTail.splice(0, this.stderrTail.length - 40);
  }

  private push(m: ProcessMessage): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(m);
    } else this.queue.push(m);
  }

  /** The next message (after the exit message, the exit again). */
  next(): Promise<ProcessMessage> {
    const m = this.queue.shift();
    if (m) {
      if (m.t === 'exit') this.queue.unshift(m);
      return Promise.resolve(m);
    }
    return new Promise((resolve) => {
      this.waiter = (x) => {
        if (x.t === 'exit') this.queue.unshift(x);
        resolve(x);
      };
    });
  }

  /** Puts a message back: the next call of next() returns it. */
  unread(m: ProcessMessage): void {
    this.queue.unshift(m);
  }

  /** Waits for the process to end (it ends by itself after its last message); SIGKILL after `graceMs`. */
  async end(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const t = setTimeout(() => this.kill(), graceMs);
    await new Promise<void>((resolve) => (this.exited ? resolve() : this.child.once('exit', () => resolve())));
    clearTimeout(t);
  }

  send(m: StartMessage | ChildCommand): void {
    if (this.exited || !this.child.connected) return;
    try {
      this.child.send(m);
    } catch {
      // the child is gone: its exit message follows
    }
  }

  /** Ends the process now (SIGKILL); its exit message follows. */
  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

/** How a child that died without saying why ended, for the job's error and state message. */
export function describeExit(m: { code: number | null; signal: NodeJS.Signals | null; lastStderr?: string }): string {
  const how = m.signal
    ? `was killed by ${m.signal}${m.signal === 'SIGKILL' ? ' (out of memory, or killed)' : m.signal === 'SIGABRT' || m.signal === 'SIGSEGV' ? ' (a native fault)' : ''}`
    : `exited with code ${m.code}`;
  return `the training process ${how}${m.lastStderr ? `; its last stderr line: ${m.lastStderr}` : ''}`;
}

/**
 * The last stderr line that says something: not a JavaScript or native stack frame (abort() and V8's
 * fatal errors print a native backtrace), not node's version footer.
 */
function lastMeaningfulLine(lines: string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i];
    if (/^at\s|^Node\.js v\d|^\^+$|^throw\s|^\d+: |^-+ .* -+$/.test(l) || /^\s*$/.test(l)) continue;
    return l.length > 300 ? `${l.slice(0, 300)}…` : l;
  }
  return undefined;
}
