// The BullMQ queue that delivers jobs to workers. BullMQ owns delivery (locks, stalled-job
// detection, attempts); the job record and its history (job-records.ts, events.ts) own the state, so
// the queue job carries only the id, under the same id.
import { Queue, type JobsOptions } from 'bullmq';
import { QUEUE_NAME, bullConnectionFor, type RedisTarget } from './redis.js';

export interface TrainJobData {
  id: string;
}

export class TrainQueue {
  readonly queue: Queue<TrainJobData>;
  private readonly connected: Promise<unknown>;
  private readonly bull: ReturnType<typeof bullConnectionFor>;

  constructor(
    redis: RedisTarget,
    readonly prefix: string,
    private readonly attempts: number,
  ) {
    this.bull = bullConnectionFor(redis, { maxRetriesPerRequest: 1, enableOfflineQueue: true });
    this.queue = new Queue<TrainJobData>(QUEUE_NAME, {
      connection: this.bull.connection,
      prefix,
    });
    this.queue.on('error', () => {}); // reported through the calls that fail
    // closing a Queue whose connection is still being set up leaves BullMQ's own setup promise to
    // reject unhandled ("Connection is closed"): close() lets the setup settle first (for at most
    // a second: with Redis down it never does)
    this.connected = this.queue.waitUntilReady().catch(() => undefined);
  }

  /** Adds the job under its own id; adding an id that is already queued is a no-op. */
  async add(id: string): Promise<void> {
    const opts: JobsOptions = {
      jobId: id,
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: 2000 },
      // the record and the history are the durable view; BullMQ's copy is only for delivery
      removeOnComplete: true,
      removeOnFail: { count: 1000 },
    };
    await this.queue.add('train', { id }, opts);
  }

  /**
   * Removes a waiting job from the queue. Returns false when it is not there or locked by a
   * worker (it is running: the worker sees the cancelled state and stops).
   */
  async remove(id: string): Promise<boolean> {
    try {
      return (await this.queue.remove(id)) === 1;
    } catch {
      return false;
    }
  }

  async waitingCount(): Promise<number> {
    return this.queue.getWaitingCount();
  }

  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.connected, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    await this.queue.close();
    await this.bull.close();
  }
}
