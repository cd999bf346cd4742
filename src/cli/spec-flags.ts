// The job-spec flags that `train` (one local run) and `submit` (a job for the service) share:
// their declarations, and how their values become fields of a job spec (JobSpecInput).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { int, num } from './options.js';
import { UserError } from './errors.js';

/** The values commander gives the shared flags (undefined where a flag was left out). */
export interface SpecFlags {
  kind?: string;
  epochs?: number;
  hidden?: number;
  layers?: number;
  lr?: number;
  clip?: number;
  corpus?: string;
  maxTokens?: number;
  batchSize?: number;
  numSteps?: number;
  sampling?: string;
  seed?: number;
  predictEvery?: number;
}

/** What differs between the commands: `--kind`'s default and the help of two flags. */
export interface SpecFlagTexts {
  kindDefault?: string;
  corpusHelp: string;
  predictEveryHelp: string;
}

/** Declares the shared flags on `cmd`, in this order, after the options it already has. */
export function addSpecFlags(cmd: Command, t: SpecFlagTexts): Command {
  return cmd
    .option('--kind <kind>', 'scratch | concise', t.kindDefault)
    .option('--epochs <n>', 'epochs', int('--epochs'))
    .option('--hidden <n>', 'hidden units', int('--hidden'))
    .option('--layers <n>', 'LSTM layers (concise)', int('--layers'))
    .option('--lr <x>', 'learning rate', num('--lr'))
    .option('--clip <x>', 'gradient clipping theta', num('--clip'))
    .option('--corpus <file>', t.corpusHelp)
    .option('--max-tokens <n>', 'cut the corpus to this many tokens', int('--max-tokens'))
    .option('--batch-size <n>', 'minibatch size', int('--batch-size'))
    .option('--num-steps <n>', 'time steps per minibatch', int('--num-steps'))
    .option('--sampling <s>', 'sequential | random')
    .option('--seed <n>', 'random seed', int('--seed'))
    .option('--predict-every <n>', t.predictEveryHelp, int('--predict-every'));
}

/** A text file's contents; with `dashIsStdin`, '-' reads standard input. A failure is a UserError. */
export function readTextFile(file: string, what: string, dashIsStdin = false): string {
  try {
    return readFileSync(dashIsStdin && file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export type Obj = Record<string, unknown>;

/** Sets `obj[path[0]][path[1]]…` to `value`, making the objects on the way; undefined sets nothing. */
export function setIn(obj: Obj, path: string[], value: unknown): void {
  if (value === undefined) return;
  let o = obj;
  for (const k of path.slice(0, -1)) o = (o[k] ??= {}) as Obj;
  o[path[path.length - 1]] = value;
}

/**
 * Lays the flags that were given over `spec` (flags left out leave its fields as they are) and
 * returns it; `--corpus` is read here and sent as `{ text }`. Validation is the caller's (the
 * job-spec schema, locally or on the server).
 */
export function applySpecFlags(spec: Obj, o: SpecFlags, opts: { corpusDashIsStdin?: boolean } = {}): Obj {
  setIn(spec, ['model', 'kind'], o.kind);
  setIn(spec, ['model', 'numHiddens'], o.hidden);
  setIn(spec, ['model', 'numLayers'], o.layers);
  setIn(spec, ['data', 'corpus'], o.corpus ? { text: readTextFile(o.corpus, 'corpus', opts.corpusDashIsStdin) } : undefined);
  setIn(spec, ['data', 'maxTokens'], o.maxTokens);
  setIn(spec, ['data', 'batchSize'], o.batchSize);
  setIn(spec, ['data', 'numSteps'], o.numSteps);
  setIn(spec, ['data', 'sampling'], o.sampling);
  setIn(spec, ['train', 'epochs'], o.epochs);
  setIn(spec, ['train', 'lr'], o.lr);
  setIn(spec, ['train', 'clipTheta'], o.clip);
  setIn(spec, ['train', 'seed'], o.seed);
  setIn(spec, ['report', 'predictEvery'], o.predictEvery);
  return spec;
}
