// The process one job attempt trains in (forked by TrainingProcess, src/jobs/train-process.ts).
// It never touches Redis: it trains with the Trainer and talks to its worker over the IPC channel
// only, in lockstep — after each epoch it sends the event and waits for the worker to say what
// next (write a checkpoint, go on, stop), so the worker decides everything the history depends on
// (what is published, what is checkpointed, fencing) exactly as when it trained in-process.
// A crash here (a native fault, an out-of-memory kill, an uncaught error) ends this process only.
//
//   worker → child: start {spec, engine, resume?, init?, attempt, name?, corpusText?, testCrash?} | checkpoint | next {keep} | stop {reason}
//   child → worker: epoch {ev} | checkpoint {epoch, data} | done {summary} |
//                   stopped {epoch, current?, atPublished?} | error {message, final}
import { selectEngine } from '../model/engines.js';
import { deserializeCheckpoint, serializeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { describeModelFile, readInitModel } from '../train/import.js';
import { parseJobSpec, SpecError } from '../train/spec.js';
import { AbortedError, Trainer } from '../train/trainer.js';
import { finiteOrUndefined } from './job-view.js';
import type { ChildCommand, ChildMessage, StartMessage } from './train-process.js';

const controller = new AbortController();
const inbox: ChildCommand[] = [];
let wake: (() => void) | undefined;
let started: ((m: StartMessage) => void) | undefined;
const start = new Promise<StartMessage>((r) => (started = r));

process.on('message', (m: StartMessage | ChildCommand) => {
  if (m.t === 'start') return started?.(m);
  if (m.t === 'stop') controller.abort(m.reason);
  inbox.push(m);
  wake?.();
});
// the worker is gone (SIGKILLed, or it closed the channel): nothing here is worth finishing
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the worker decides when this one stops (a hand-back
// needs its checkpoint), so the signals that ask a process to end are left to the worker
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

function send(m: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => process.send!(m, undefined, {}, (e) => (e ? reject(e) : resolve())));
}

async function command(): Promise<ChildCommand> {
  for (;;) {
    const c = inbox.shift();
    if (c) return c;
    if (controller.signal.aborted) return { t: 'stop', reason: String(controller.signal.reason) };
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
}

/** TEST-ONLY: the start message's crash hook (TestCrash, src/jobs/test-hooks.ts), armed for `epoch`. */
function armCrash(s: StartMessage, epoch: number): void {
  const crash = s.testCrash;
  if (!crash || epoch !== crash.epoch) return;
  if (crash.name !== undefined && s.name !== crash.name) return;
  if (crash.attempts !== undefined && s.attempt > crash.attempts) return;
  // a timer fires between two minibatches of the epoch that is starting
  setTimeout(() => {
    process.stderr.write(`LSTM_TEST_CRASH ${crash.how} in epoch ${epoch} (attempt ${s.attempt})\n`, () => {
      if (crash.how === 'abort') process.abort();
      else if (crash.how === 'sigkill') process.kill(process.pid, 'SIGKILL');
      else
        setImmediate(() => {
          throw new Error(`LSTM_TEST_CRASH: training blew up in epoch ${epoch}`);
        });
    });
  }, 1);
}

async function main(): Promise<void> {
  const s = await start;
  let trainer: Trainer | undefined;
  let atPublished: Checkpoint | undefined;
  try {
    const spec = parseJobSpec(s.spec);
    const engine = await selectEngine(s.engine, () => {});
    const resume = s.resume ? deserializeCheckpoint(Buffer.from(s.resume)) : undefined;
    if (!resume && spec.init && !s.init) {
      throw new SpecError([{ field: 'init', message: 'the weights this job starts from (copied at submission) are missing from the job store' }]);
    }
    if (resume || !s.init) {
      trainer = await Trainer.create(spec, engine, resume, undefined, { uploadedText: s.corpusText });
    } else {
      // fine-tuning or continuing: the model's weights, and its vocabulary for the corpus
      const file = Buffer.from(s.init);
      const from = describeModelFile(file);
      trainer = await Trainer.create(spec, engine, undefined, (config) => readInitModel(file, config), { vocab: from.vocab, uploadedText: s.corpusText });
    }
    armCrash(s, trainer.epoch + 1);
    if (controller.signal.aborted) throw new AbortedError(controller.signal.reason);
    await send({ t: 'training' }); // the worker's clock for train.timeoutSeconds starts here
    for await (const ev of trainer.run(controller.signal)) {
      await send({ t: 'epoch', ev });
      for (;;) {
        const c = await command();
        if (c.t === 'checkpoint') {
          await send({ t: 'checkpoint', epoch: trainer.epoch, data: serializeCheckpoint(trainer.checkpoint()) });
        } else if (c.t === 'next') {
          // a copy of the weights at the last published epoch while no checkpoint of it is stored
          atPublished = c.keep ? trainer.checkpoint() : undefined;
          break;
        } else {
          throw new AbortedError(c.reason);
        }
      }
      armCrash(s, trainer.epoch + 1);
    }
    await send({
      t: 'done',
      summary: {
        finalPerplexity: finiteOrUndefined(trainer.perplexity) ?? null,
        epochs: trainer.epoch,
        totalMs: Math.round(trainer.elapsedMs),
        engine: trainer.model.engine,
        backend: trainer.model.backend,
        ...(trainer.stopReason ? { stopReason: trainer.stopReason, bestEpoch: trainer.early.bestEpoch } : {}),
      },
    });
  } catch (e) {
    if (e instanceof AbortedError || controller.signal.aborted) {
      await send({
        t: 'stopped',
        epoch: trainer?.epoch ?? 0,
        current: trainer && trainer.epoch > 0 ? serializeCheckpoint(trainer.checkpoint()) : undefined,
        atPublished: atPublished ? serializeCheckpoint(atPublished) : undefined,
      });
    } else {
      await send({ t: 'error', message: (e as Error).message, final: e instanceof SpecError });
    }
  } finally {
    trainer?.dispose();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`training process: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
