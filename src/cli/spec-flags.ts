// The job-spec flags that `train` (one local run) and `submit` (a job for the service) share:
// their declarations, and how their values become fields of a job spec (JobSpecInput).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseJobSpec, type SpecError } from '../train/spec.js';
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
  tokenizer?: string;
  minFreq?: number;
  validFraction?: number;
}

/** What differs between the commands: `--kind`'s default and the help of two flags. */
export interface SpecFlagTexts {
  kindDefault?: string;
  corpusHelp: string;
  predictEveryHelp: string;
}

/** Each shared flag and the job-spec field it sets (one table: declarations, mapping and errors). */
const FLAG_FIELDS: { flag: string; key: keyof SpecFlags; field: string }[] = [
  { flag: '--kind', key: 'kind', field: 'model.kind' },
  { flag: '--epochs', key: 'epochs', field: 'train.epochs' },
  { flag: '--hidden', key: 'hidden', field: 'model.numHiddens' },
  { flag: '--layers', key: 'layers', field: 'model.numLayers' },
  { flag: '--lr', key: 'lr', field: 'train.lr' },
  { flag: '--clip', key: 'clip', field: 'train.clipTheta' },
  { flag: '--corpus', key: 'corpus', field: 'data.corpus' },
  { flag: '--max-tokens', key: 'maxTokens', field: 'data.maxTokens' },
  { flag: '--batch-size', key: 'batchSize', field: 'data.batchSize' },
  { flag: '--num-steps', key: 'numSteps', field: 'data.numSteps' },
  { flag: '--sampling', key: 'sampling', field: 'data.sampling' },
  { flag: '--seed', key: 'seed', field: 'train.seed' },
  { flag: '--predict-every', key: 'predictEvery', field: 'report.predictEvery' },
  { flag: '--tokenizer', key: 'tokenizer', field: 'data.tokenizer' },
  { flag: '--min-freq', key: 'minFreq', field: 'data.minFreq' },
  { flag: '--valid-fraction', key: 'validFraction', field: 'data.validFraction' },
];

/** Declares the shared flags on `cmd`, in this order, after the options it already has; the help shows d2l's defaults. */
export function addSpecFlags(cmd: Command, t: SpecFlagTexts): Command {
  const d = parseJobSpec({});
  const dflt = (v: unknown) => ` (default ${v})`;
  return cmd
    .option('--kind <kind>', 'scratch | concise', t.kindDefault)
    .option('--epochs <n>', `epochs${dflt(d.train.epochs)}`, int('--epochs'))
    .option('--hidden <n>', `hidden units${dflt(d.model.numHiddens)}`, int('--hidden'))
    .option('--layers <n>', `LSTM layers (concise)${dflt(d.model.numLayers)}`, int('--layers'))
    .option('--lr <x>', `learning rate${dflt(d.train.lr)}`, num('--lr'))
    .option('--clip <x>', `gradient clipping theta${dflt(d.train.clipTheta)}`, num('--clip'))
    .option('--corpus <file>', `${t.corpusHelp} (default: the Time Machine)`)
    .option('--max-tokens <n>', `cut the corpus to this many tokens${dflt(d.data.maxTokens)}`, int('--max-tokens'))
    .option('--batch-size <n>', `minibatch size${dflt(d.data.batchSize)}`, int('--batch-size'))
    .option('--num-steps <n>', `time steps per minibatch${dflt(d.data.numSteps)}`, int('--num-steps'))
    .option('--sampling <s>', `sequential | random${dflt(d.data.sampling)}`)
    .option('--seed <n>', 'random seed (default: a random one)', int('--seed'))
    .option('--predict-every <n>', `${t.predictEveryHelp}${dflt(d.report.predictEvery)}`, int('--predict-every'))
    .option('--tokenizer <name>', `d2l-chars | chars (every character kept) | words${dflt(d.data.tokenizer)}`)
    .option('--min-freq <n>', `tokens seen fewer times become <unk>${dflt(d.data.minFreq)}`, int('--min-freq'))
    .option(
      '--valid-fraction <x>',
      `hold out this fraction of the corpus tail for validation perplexity${dflt(d.data.validFraction)}`,
      num('--valid-fraction'),
    );
}

/**
 * A spec error in the words of the flags that set the offending fields: `train.epochs must be ≥ 1`
 * → `--epochs must be ≥ 1`. Fields no given flag set (defaults, a spec file) keep their names.
 */
export function flagError(e: SpecError, given: SpecFlags): UserError {
  const parts = e.issues.map((i) => {
    const f = FLAG_FIELDS.find((x) => given[x.key] !== undefined && (i.field === x.field || i.field.startsWith(`${x.field}.`)));
    if (!f) return !i.field || i.message.startsWith(i.field) ? i.message : `${i.field}: ${i.message}`;
    return i.message.startsWith(i.field) ? `${f.flag}${i.message.slice(i.field.length)}` : `${f.flag}: ${i.message}`;
  });
  return new UserError(parts.join('; '));
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
  for (const { key, field } of FLAG_FIELDS) {
    const value = key === 'corpus' ? (o.corpus ? { text: readTextFile(o.corpus, 'corpus', opts.corpusDashIsStdin) } : undefined) : o[key];
    setIn(spec, field.split('.'), value);
  }
  return spec;
}
