// The client commands of a running service: submit, watch, and the model download of export
// (lstm-trainer export <jobId>). They talk HTTP to the api (LSTM_TRAINER_URL, else HOST:HTTP_PORT).
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { checkSavePath, makeDirectory, writeAtomically } from './files.js';
import { int } from './options.js';
import { EpochProgress } from './progress.js';
import { addSpecFlags, applySpecFlags, readTextFile, setIn, type Obj, type SpecFlags } from './spec-flags.js';
import type { JobEvent, JobView } from '../jobs/types.js';
import { UserError } from './errors.js';
import { parseKeyList } from '../jobs/owners.js';
import { authHeaders, followJob, HttpProblemError } from './sse-client.js';

const log = (line: string) => console.error(line);

export interface ClientOptions {
  url?: string;
  apiKey?: string;
}

export function baseUrl(o: ClientOptions): string {
  const fromEnv = process.env.LSTM_TRAINER_URL;
  const def = `http://${process.env.HOST?.trim() || '127.0.0.1'}:${process.env.HTTP_PORT?.trim() || '8080'}`;
  return (o.url ?? fromEnv ?? def).replace(/\/+$/, '');
}

export function apiKey(o: ClientOptions): string | undefined {
  // API_KEYS' first entry (name:KEY or KEY) when nothing else is given: the key, without its name
  return o.apiKey ?? process.env.LSTM_TRAINER_API_KEY ?? parseKeyList(process.env.API_KEYS, false)[0]?.key ?? undefined;
}

export function problemText(e: HttpProblemError): string {
  const lines = [`HTTP ${e.status}: ${e.problem?.detail ?? e.problem?.title ?? 'request failed'}`];
  for (const i of e.problem?.errors ?? []) if (i.field) lines.push(`  ${i.field}: ${i.message}`);
  return lines.join('\n');
}

async function call<T>(url: string, init: RequestInit): Promise<{ status: number; body: T }> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new UserError(`cannot reach ${new URL(url).origin}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new UserError(problemText(new HttpProblemError(res.status, body)));
  return { status: res.status, body: body as T };
}

interface SubmitOptions extends ClientOptions, SpecFlags {
  file?: string;
  prefix?: string[];
  corpusId?: string;
  initJob?: string;
  initModel?: string;
  numPreds?: number;
  name?: string;
  idempotencyKey?: string;
  watch?: boolean;
  json?: boolean;
}

/** The spec: the JSON file (if any), then the flags on top. The server validates it. */
export function specFromSubmitOptions(o: SubmitOptions): Obj {
  let spec: Obj = {};
  if (o.file) {
    try {
      spec = JSON.parse(readTextFile(o.file, 'spec file', true));
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${o.file} is not valid JSON: ${(e as Error).message}`);
    }
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new UserError(`${o.file} must hold a JSON object (the job spec)`);
  }
  applySpecFlags(spec, o, { corpusDashIsStdin: true });
  setIn(spec, ['report', 'prefixes'], o.prefix);
  if (o.corpusId !== undefined) setIn(spec, ['data', 'corpus'], { id: o.corpusId });
  const init = initSpec(o);
  if (init) spec.init = init;
  setIn(spec, ['report', 'numPreds'], o.numPreds);
  setIn(spec, ['name'], o.name);
  setIn(spec, ['idempotencyKey'], o.idempotencyKey);
  return spec;
}

/** `--init-job ID` / `--init-model ID` as the spec's `init` (one of them; undefined if neither). */
export function initSpec(o: { initJob?: string; initModel?: string }): Obj | undefined {
  if (o.initJob !== undefined && o.initModel !== undefined) throw new UserError('--init-job and --init-model are two ways to start: give one of them');
  if (o.initJob !== undefined) return { fromJob: o.initJob };
  if (o.initModel !== undefined) return { model: o.initModel };
  return undefined;
}

async function submitCommand(o: SubmitOptions): Promise<void> {
  const base = baseUrl(o);
  const key = apiKey(o);
  const { status, body: job } = await call<JobView>(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(key) },
    body: JSON.stringify(specFromSubmitOptions(o)),
  });
  console.log(o.json ? JSON.stringify(job) : job.id);
  if (!o.json) log(`lstm-trainer: job ${job.id} ${status === 201 ? 'queued' : `already exists (${job.state})`}: ${base}/v1/jobs/${job.id}`);
  if (o.watch) await watchCommand(job.id, { url: o.url, apiKey: o.apiKey, json: o.json });
}

function printEvent(ev: JobEvent, json: boolean, bar?: EpochProgress): void {
  if (json) {
    console.log(JSON.stringify(ev));
    return;
  }
  if (ev.type === 'epoch' && bar) {
    bar.update(ev);
    return;
  }
  bar?.stop();
  if (ev.type === 'epoch') {
    const ppl = ev.perplexity === null || !Number.isFinite(ev.perplexity) ? 'n/a' : ev.perplexity.toFixed(3);
    console.log(`epoch ${ev.epoch}/${ev.epochs} perplexity ${ppl} ${Math.round(ev.tokensPerSec)} tokens/s ${(ev.elapsedMs / 1000).toFixed(1)} s`);
    for (const s of ev.samples ?? []) console.log(`  [epoch ${ev.epoch}] ${s.text}`);
    return;
  }
  let line = `state ${ev.state}`;
  if (ev.attempt) line += ` (attempt ${ev.attempt})`;
  if (ev.message) line += `: ${ev.message}`;
  if (ev.error) line += `: ${ev.error}`;
  if (ev.summary) {
    const s = ev.summary;
    // a job cancelled (or failed) while queued never trained: no epochs, no engine
    if (s.epochs > 0) {
      line += ` — ${s.epochs} epochs, perplexity ${s.finalPerplexity?.toFixed(3) ?? 'n/a'}, ${(s.totalMs / 1000).toFixed(1)} s`;
      if (s.engine) line += ` on ${s.engine}${s.backend ? `/${s.backend}` : ''}`;
    } else {
      line += ' — before any epoch was trained';
    }
  }
  console.log(line);
}

const WATCH_RETRIES = 30;
const WATCH_RETRY_MS = 2000;

async function watchCommand(id: string, o: ClientOptions & { fromSeq?: number; json?: boolean }): Promise<void> {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const base = baseUrl(o);
  let final: string | undefined;
  let told = false;
  const bar = EpochProgress.onTerminal(!o.json);
  // a server that does not answer is said at once (then retried: it may be restarting)
  const onRetry = (reason: string, left: number) => {
    if (told) return;
    told = true;
    log(
      `lstm-trainer watch: ${base}: ${reason}; retrying every ${WATCH_RETRY_MS / 1000} s for up to ${Math.round(((left + 1) * WATCH_RETRY_MS) / 1000)} s (Ctrl-C to stop)`,
    );
  };
  try {
    for await (const ev of followJob(id, {
      baseUrl: base,
      apiKey: apiKey(o),
      fromSeq: o.fromSeq,
      signal: ac.signal,
      retries: WATCH_RETRIES,
      retryMs: WATCH_RETRY_MS,
      onRetry,
    })) {
      if (told) {
        told = false;
        bar?.stop();
        log('lstm-trainer watch: connected');
      }
      printEvent(ev, o.json ?? false, bar);
      if (ev.type === 'state') final = ev.state;
    }
  } catch (e) {
    bar?.stop();
    if (ac.signal.aborted) return;
    if (e instanceof HttpProblemError) throw new UserError(problemText(e));
    throw new UserError(`lost the event stream of job ${id} at ${base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (ac.signal.aborted) return;
  if (!final) {
    // the stream ended with nothing to show (--from-seq past the job's last event): the job's state says how it ended
    const { body: job } = await call<JobView>(`${base}/v1/jobs/${encodeURIComponent(id)}`, { headers: authHeaders(apiKey(o)) });
    final = job.state;
    if (o.json) console.log(JSON.stringify({ type: 'job', id: job.id, state: job.state }));
    else console.log(`job ${id} is ${job.state} (no events after seq ${o.fromSeq ?? 0})`);
  }
  if (final !== 'succeeded') process.exitCode = 1;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * `lstm-trainer export <jobId> --format F -o OUT`: the job's model from a running service (its
 * latest checkpoint; GET /v1/jobs/:id/model). tfjs: model.json and weights.bin into the directory OUT.
 */
export async function exportJobModel(id: string, o: ClientOptions & { format: string; output: string }): Promise<void> {
  const base = baseUrl(o);
  const headers = authHeaders(apiKey(o));
  const fetchFile = async (path: string): Promise<{ data: Buffer; epoch: string | null }> => {
    let res: Response;
    try {
      res = await fetch(`${base}/v1/jobs/${encodeURIComponent(id)}${path}`, { headers });
    } catch (e) {
      throw new UserError(`cannot reach ${base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    if (!res.ok) throw new UserError(problemText(new HttpProblemError(res.status, await res.json().catch(() => undefined))));
    return { data: Buffer.from(await res.arrayBuffer()), epoch: res.headers.get('x-model-epoch') };
  };
  let epoch: string | null;
  if (o.format === 'tfjs') {
    const json = await fetchFile('/model/model.json');
    const bin = await fetchFile('/model/weights.bin');
    if (json.epoch !== bin.epoch)
      throw new UserError(`the job's checkpoint moved on between the two files (epochs ${json.epoch} and ${bin.epoch}): run export again`);
    makeDirectory(o.output, '-o');
    writeAtomically(resolve(o.output, 'model.json'), json.data);
    writeAtomically(resolve(o.output, 'weights.bin'), bin.data);
    epoch = json.epoch;
  } else {
    const f = await fetchFile(`/model?format=${encodeURIComponent(o.format)}`);
    checkSavePath(o.output, '-o');
    writeAtomically(o.output, f.data);
    epoch = f.epoch;
  }
  log(`lstm-trainer: exported job ${id} at epoch ${epoch ?? '?'} as ${o.format} to ${o.output}`);
}

export function registerClientCommands(program: Command): void {
  addSpecFlags(
    program
      .command('submit')
      .description('submit a training job to a running service; prints the job id')
      .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
      .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)')
      .option('-f, --file <spec.json>', "job spec as JSON ('-' = stdin); flags override its fields"),
    { corpusHelp: 'train on this text file (sent in the spec) instead of the Time Machine', predictEveryHelp: 'samples every N epochs' },
  )
    .option('--corpus-id <id>', 'train on an uploaded corpus (lstm-trainer corpus upload FILE prints its id)')
    .option('--init-job <jobId>', "start from that job's latest checkpoint (a fine-tune, or more epochs of it) instead of fresh weights")
    .option('--init-model <modelId>', 'start from an uploaded model (lstm-trainer model upload FILE prints its id)')
    .option('--prefix <text>', 'a prefix to sample from (repeatable)', collect)
    .option('--num-preds <n>', 'characters per sample', int('--num-preds'))
    .option('--name <name>', 'job name')
    .option('--idempotency-key <key>', 'submitting again with the same key returns the same job')
    .option('--watch', 'then follow the job until it ends')
    .option('--json', 'print the job (and with --watch, the events) as JSON')
    .action(submitCommand);

  program
    .command('watch <jobId>')
    .description("follow a job's events (epochs, samples, state) until it ends; exit code 0 if it succeeded")
    .option('--url <url>', 'service URL (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
    .option('--api-key <key>', 'API key (default: LSTM_TRAINER_API_KEY)')
    .option('--from-seq <n>', 'only events after this sequence number', int('--from-seq'))
    .option('--json', 'one JSON event per line')
    .action(watchCommand);
}
