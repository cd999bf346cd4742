// The TEST-ONLY hooks of the worker and its training processes, with which the fault tests stop or
// crash them at exact points. Each is an explicit option, never read from the environment deep in
// the code: `lstm-trainer worker` reads LSTM_TEST_PAUSE_* and LSTM_TEST_CRASH* once (the *FromEnv
// functions) into the worker's options, and the worker passes the crash hook to each training
// process in its start message (train-process.ts). Unset (always, outside tests), each costs one
// comparison. docs/service.md ("Faults: what survives what") lists them.
import type { Logger } from './log.js';

/**
 * The worker prints a marker line and hangs at this point — after publishing an epoch ≥ `epoch`,
 * just before writing a checkpoint of such an epoch, or just before recording `succeeded` — once
 * per worker, so a test can SIGKILL it exactly there (test/faults/worker-faults.test.ts).
 */
export type PausePoint = 'epoch' | 'checkpoint' | 'final';
export interface TestPause {
  at: PausePoint;
  /** The first epoch it pauses at (epoch and checkpoint points). */
  epoch: number;
}

/** The pause hook from LSTM_TEST_PAUSE_AT=epoch|checkpoint|final and LSTM_TEST_PAUSE_EPOCH (default 1). */
export function testPauseFromEnv(env: NodeJS.ProcessEnv): TestPause | undefined {
  if (!env.LSTM_TEST_PAUSE_AT) return undefined;
  return { at: env.LSTM_TEST_PAUSE_AT as PausePoint, epoch: Number(env.LSTM_TEST_PAUSE_EPOCH ?? 1) };
}

/** A worker's pause hook: it hangs the first time one of its jobs reaches the point, never again. */
export class TestPauseHook {
  private paused = false;
  constructor(
    private readonly pause: TestPause,
    private readonly logger: Logger,
  ) {}

  async at(point: PausePoint, id: string, epoch: number): Promise<void> {
    if (this.pause.at !== point || this.paused || epoch < this.pause.epoch) return;
    this.paused = true;
    this.logger.warn({ jobId: id }, `LSTM_TEST_PAUSED at=${point} job=${id} epoch=${epoch}`);
    await new Promise(() => {}); // until killed (the lock renewal keeps running meanwhile)
  }
}

/**
 * The training process crashes in the middle of `epoch` — abort() (SIGABRT, as a native fault),
 * SIGKILL itself (as the OOM killer), or an uncaught error — for jobs named `name` (when set) and
 * attempts ≤ `attempts` (when set), printing one line first (the worker's failure message quotes
 * the last stderr line): test/faults/job-process-faults.test.ts.
 */
export interface TestCrash {
  how: 'abort' | 'sigkill' | 'throw';
  epoch: number;
  name?: string;
  attempts?: number;
}

/**
 * The crash hook from LSTM_TEST_CRASH=abort|sigkill|throw, LSTM_TEST_CRASH_EPOCH (default 2),
 * LSTM_TEST_CRASH_NAME and LSTM_TEST_CRASH_ATTEMPTS (default all).
 */
export function testCrashFromEnv(env: NodeJS.ProcessEnv): TestCrash | undefined {
  if (!env.LSTM_TEST_CRASH) return undefined;
  return {
    how: env.LSTM_TEST_CRASH as TestCrash['how'],
    epoch: Number(env.LSTM_TEST_CRASH_EPOCH ?? 2),
    ...(env.LSTM_TEST_CRASH_NAME ? { name: env.LSTM_TEST_CRASH_NAME } : {}),
    ...(env.LSTM_TEST_CRASH_ATTEMPTS ? { attempts: Number(env.LSTM_TEST_CRASH_ATTEMPTS) } : {}),
  };
}
