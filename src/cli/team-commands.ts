// Client commands for a shared service: list, get, cancel, delete, sweep, experiment, and
// `generate --job` (text from a job's checkpoint on the service). They talk HTTP to the api with the
// caller's key (LSTM_TRAINER_API_KEY), so each sees and acts on its own jobs (all with an admin key).
import type { Command } from 'commander';
import { formatExperimentTable } from '../jobs/experiments.js';
import type { ExperimentView } from '../jobs/types.js';
import type { JobView } from '../jobs/types.js';
import { UserError } from './errors.js';
import { int } from './options.js';
import { readTextFile } from './spec-flags.js';
import { apiKey, baseUrl, initSpec, problemText, type ClientOptions } from './client-commands.js';
import { authHeaders, HttpProblemError } from './sse-client.js';
import { uniqueLabels } from '../api/dashboard/public/labels.js';

async function request<T>(o: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  const base = baseUrl(o);
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { ...authHeaders(apiKey(o)), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new UserError(`cannot reach ${base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const parsed = await res.json().catch(() => undefined);
  if (!res.ok) throw new UserError(problemText(new HttpProblemError(res.status, parsed)));
  return parsed as T;
}

const jobPath = (id: string) => `/v1/jobs/${encodeURIComponent(id)}`;

// one rule for job names in tables, the dashboard's (unique name, else the shortest unique id prefix)
export { uniqueLabels };

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((x, c) => x.padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

interface ListOptions extends ClientOptions {
  state?: string;
  tag?: string;
  experiment?: string;
  name?: string;
  limit?: number;
  json?: boolean;
}

async function listCommand(o: ListOptions): Promise<void> {
  const q = new URLSearchParams();
  for (const k of ['state', 'tag', 'experiment', 'name'] as const) if (o[k]) q.set(k, o[k]!);
  q.set('limit', String(o.limit ?? 20));
  const { jobs } = await request<{ jobs: JobView[] }>(o, 'GET', `/v1/jobs?${q}`);
  if (o.json) return console.log(JSON.stringify(jobs));
  if (jobs.length === 0) return console.log('no jobs');
  const labels = uniqueLabels(jobs);
  const rows = [['job', 'id', 'owner', 'state', 'epoch', 'perplexity', 'created']];
  jobs.forEach((j, i) =>
    rows.push([
      labels[i],
      j.id,
      j.owner ?? '-',
      j.state,
      `${j.progress.epoch}/${j.progress.epochs}`,
      j.perplexity?.toFixed(3) ?? '-',
      j.createdAt.replace(/\.\d+Z$/, 'Z'),
    ]),
  );
  console.log(table(rows));
}

/** Parses "0.5,1,2" into values: numbers where they are numbers, else strings. */
export function gridValues(text: string): (string | number)[] {
  const vals = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (vals.length === 0) throw new UserError(`no values in "${text}"`);
  return vals.map((v) => (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(v) ? Number(v) : v));
}

/** Sweep flags → dotted spec paths. */
export const SWEEP_FLAGS = {
  lr: 'train.lr',
  kind: 'model.kind',
  seed: 'train.seed',
  epochs: 'train.epochs',
  numHiddens: 'model.numHiddens',
  numLayers: 'model.numLayers',
  batchSize: 'data.batchSize',
  numSteps: 'data.numSteps',
  maxTokens: 'data.maxTokens',
  clipTheta: 'train.clipTheta',
  sampling: 'data.sampling',
} as const;
type SweepFlag = keyof typeof SWEEP_FLAGS;

interface SweepOptions extends ClientOptions, Partial<Record<SweepFlag, string>> {
  file?: string;
  grid?: string[];
  name?: string;
  tag?: string[];
  initJob?: string;
  initModel?: string;
  watch?: boolean;
  json?: boolean;
}

/** The POST /v1/experiments body of `lstm-trainer sweep`. */
export function sweepRequest(o: SweepOptions): { name?: string; base: Record<string, unknown>; grid: Record<string, (string | number)[]> } {
  let base: Record<string, unknown> = {};
  if (o.file) {
    try {
      base = JSON.parse(readTextFile(o.file, 'spec file', true));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${o.file} is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (o.tag?.length) base = { ...base, tags: o.tag };
  const init = initSpec(o);
  if (init) base = { ...base, init };
  const grid: Record<string, (string | number)[]> = {};
  for (const [flag, path] of Object.entries(SWEEP_FLAGS)) {
    const v = o[flag as SweepFlag];
    if (v !== undefined) grid[path] = gridValues(v);
  }
  for (const g of o.grid ?? []) {
    const m = /^([A-Za-z][\w.]*)=(.*)$/.exec(g);
    if (!m) throw new UserError(`--grid takes path=v1,v2,… (e.g. train.lr=0.5,1), not "${g}"`);
    grid[m[1]] = gridValues(m[2]);
  }
  if (Object.keys(grid).length === 0) throw new UserError('sweep needs at least one grid flag (--lr 0.5,1,2, --kind scratch,concise, --grid path=v1,v2, …)');
  return { ...(o.name ? { name: o.name } : {}), base, grid };
}

const TERMINAL = ['succeeded', 'failed', 'cancelled', 'deleted'];

async function sweepCommand(o: SweepOptions): Promise<void> {
  let exp = await request<ExperimentView>(o, 'POST', '/v1/experiments', sweepRequest(o));
  if (!o.json) console.error(`lstm-trainer: experiment ${exp.id}: ${exp.jobs.length} jobs queued`);
  if (o.watch) {
    let shown = '';
    while (!exp.jobs.every((j) => TERMINAL.includes(j.state))) {
      await new Promise((r) => setTimeout(r, 2000));
      exp = await request<ExperimentView>(o, 'GET', `/v1/experiments/${exp.id}`);
      const done = exp.jobs.filter((j) => TERMINAL.includes(j.state)).length;
      const line = `${done}/${exp.jobs.length} jobs finished`;
      if (!o.json && line !== shown) console.error(`lstm-trainer: ${line}`);
      shown = line;
    }
  }
  console.log(o.json ? JSON.stringify(exp) : formatExperimentTable(exp));
}

export function registerTeamCommands(program: Command): void {
  const client = (c: Command) =>
    c
      .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
      .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)');

  client(program.command('list').description('list jobs, newest first (with API keys on: your own; an admin key: all)'))
    .option('--state <state>', 'queued | running | succeeded | failed | cancelled')
    .option('--tag <tag>', 'only jobs with this tag')
    .option('--experiment <id>', 'only the jobs of this experiment')
    .option('--name <name>', 'only jobs of this name')
    .option('--limit <n>', 'at most this many (≤ 100)', int('--limit'))
    .option('--json', 'the jobs as JSON')
    .action(listCommand);

  client(program.command('get <jobId>').description('a job as JSON')).action(async (id: string, o: ClientOptions) => {
    console.log(JSON.stringify(await request<JobView>(o, 'GET', jobPath(id)), null, 2));
  });

  client(program.command('cancel <jobId>').description('cancel a queued or running job')).action(async (id: string, o: ClientOptions) => {
    const job = await request<JobView>(o, 'POST', `${jobPath(id)}/cancel`, {});
    console.log(`job ${job.id} ${job.state}`);
  });

  client(program.command('delete <jobId>').description('delete a job (cancelled first if it is running): its record, history, checkpoints and log')).action(
    async (id: string, o: ClientOptions) => {
      await request(o, 'DELETE', jobPath(id));
      console.log(`job ${id} deleted`);
    },
  );

  const sweep = client(
    program
      .command('sweep')
      .description(
        'queue one job per combination of the given values (comma-separated), e.g. --lr 0.5,1,2 --kind scratch,concise --seed 1,2; prints the experiment table',
      )
      .option('-f, --file <spec.json>', "the base job spec as JSON ('-' = stdin)")
      .option('--grid <path=values>', 'any spec path, e.g. report.numPreds=20,50 (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--name <name>', 'experiment name (jobs are named "<name> <values>")')
      .option('--tag <tag>', 'a tag for every job (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--init-job <jobId>', "every job starts from that job's latest checkpoint")
      .option('--init-model <modelId>', 'every job starts from this uploaded model')
      .option('--watch', 'wait until every job has finished, then print the table')
      .option('--json', 'the experiment as JSON'),
  );
  for (const [flag, path] of Object.entries(SWEEP_FLAGS)) sweep.option(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} <values>`, path);
  sweep.action(sweepCommand);

  client(program.command('experiment <experimentId>').description("an experiment's table: each job's varied values, state and results"))
    .option('--json', 'as JSON')
    .action(async (id: string, o: ClientOptions & { json?: boolean }) => {
      const exp = await request<ExperimentView>(o, 'GET', `/v1/experiments/${encodeURIComponent(id)}`);
      console.log(o.json ? JSON.stringify(exp) : formatExperimentTable(exp));
    });
}

/** `lstm-trainer generate --job ID`: text from a job's latest checkpoint on the service. */
export async function generateFromJob(
  id: string,
  o: ClientOptions & { prefix: string; chars: number; temperature?: number; topK?: number; seed?: number },
): Promise<void> {
  const body = { prefix: o.prefix, numChars: o.chars, temperature: o.temperature, topK: o.topK, seed: o.seed };
  const r = await request<{ text: string }>(o, 'POST', `${jobPath(id)}/generate`, body);
  console.log(r.text);
}
