// Experiments and sweeps (docs/service.md, "Experiments"): one request makes a set of jobs from a
// base spec and either a grid (dotted spec paths → values; every combination) or a list of specs
// (each laid over the base). Every point is validated as a full job spec, and the cost caps are
// checked on the sum, before any job is queued. The experiment record keeps the job ids and the
// varied paths; its table shows each job's varied values next to its results.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseJobSpec, SpecError, specErrorFrom, type JobSpec, type SpecIssue } from '../train/spec.js';
import type { JobEstimate, JobCaps } from './limits.js';
import type { ExperimentRow, ExperimentView, JobView } from './types.js';

/** Jobs one experiment may make. */
export const MAX_EXPERIMENT_JOBS = 100;
/** Values one grid path may take. */
export const MAX_GRID_VALUES = 50;

/** "x", 9 base-36 digits of the creation time, 10 hex digits (as job ids, with another letter). */
export const EXPERIMENT_ID_RE = /^x[0-9a-z]{9}[0-9a-f]{10}$/;
export function newExperimentId(now = Date.now()): string {
  return `x${now.toString(36).padStart(9, '0')}${randomBytes(5).toString('hex')}`;
}

const GridValue = z.union([z.number(), z.string().max(200), z.boolean()], { error: 'grid values must be numbers, strings or booleans' });
const DottedPath = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/;
const SpecObject = z.record(z.string(), z.unknown(), { error: 'must be a job spec (a JSON object)' });

export const ExperimentRequest = z
  .object({
    name: z.string().min(1, { error: 'name must not be empty' }).max(200, { error: 'name must be at most 200 characters' }).optional(),
    base: SpecObject.optional(),
    grid: z
      .record(
        z.string().regex(DottedPath),
        z
          .array(GridValue)
          .min(1, { error: 'each grid path needs at least one value' })
          .max(MAX_GRID_VALUES, { error: `each grid path may have at most ${MAX_GRID_VALUES} values` }),
        // a bad key is reported by the record, with the record's message: say what a path must be
        {
          error: (iss) =>
            iss.code === 'invalid_key'
              ? "grid paths must be dotted job spec paths of the spec's JSON names, such as train.lr or model.numHiddens"
              : 'grid must map dotted spec paths to arrays of values',
        },
      )
      .optional(),
    specs: z
      .array(SpecObject)
      .min(1, { error: 'specs must hold at least one spec' })
      .max(MAX_EXPERIMENT_JOBS, { error: `specs may hold at most ${MAX_EXPERIMENT_JOBS} specs` })
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.grid === undefined) === (r.specs === undefined)) ctx.addIssue({ code: 'custom', path: ['grid'], message: 'give exactly one of grid and specs' });
    if (r.grid && Object.keys(r.grid).length === 0) ctx.addIssue({ code: 'custom', path: ['grid'], message: 'grid must name at least one path' });
  });
export type ExperimentRequest = z.output<typeof ExperimentRequest>;

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` laid on `base`: objects merge field by field, anything else replaces. */
export function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  return out;
}

function setPath(obj: Plain, path: string, value: unknown): Plain {
  const [head, ...rest] = path.split('.');
  if (rest.length === 0) return { ...obj, [head]: value };
  const child = isPlain(obj[head]) ? (obj[head] as Plain) : {};
  return { ...obj, [head]: setPath(child, rest.join('.'), value) };
}

function getPath(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) cur = isPlain(cur) ? cur[k] : undefined;
  return cur;
}

export interface PlannedPoint {
  /** The varied paths' values of this point. */
  values: Record<string, unknown>;
  spec: JobSpec;
  /** The point as the client wrote it (base + variation, with its name): what a submission receives. */
  input: Record<string, unknown>;
}

export interface ExperimentPlan {
  name?: string;
  /** The dotted paths whose values differ between the points. */
  varied: string[];
  points: PlannedPoint[];
}

/** A short label for a point: its varied values, `lr=0.5 kind=concise` (the last part of each path). */
export function pointLabel(values: Record<string, unknown>): string {
  return Object.entries(values)
    .map(([p, v]) => `${p.split('.').pop()}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/**
 * Validates the request and every point (as a full job spec), without queuing anything. Each point
 * without a name of its own is named `<experiment name or "sweep"> <varied values>`. A SpecError names
 * each offending point: `grid` (with the point's values) or `specs[i].<field>`.
 */
export function planExperiment(input: unknown): ExperimentPlan {
  if (!isPlain(input)) throw new SpecError([{ field: '', message: 'the experiment must be a JSON object' }]);
  const r = ExperimentRequest.safeParse(input);
  if (!r.success) throw specErrorFrom(r.error);
  const req = r.data;
  const base = req.base ?? {};
  const raw: Plain[] = [];
  let varied: string[];
  if (req.grid) {
    const paths = Object.keys(req.grid);
    const total = paths.reduce((n, p) => n * req.grid![p].length, 1);
    if (total > MAX_EXPERIMENT_JOBS) {
      throw new SpecError([
        { field: 'grid', message: `the grid makes ${total} jobs (${paths.map((p) => req.grid![p].length).join(' × ')}); at most ${MAX_EXPERIMENT_JOBS}` },
      ]);
    }
    for (const p of paths) if (p === 'idempotencyKey' || p === 'name') throw new SpecError([{ field: `grid.${p}`, message: `${p} cannot be a grid path` }]);
    // every combination, the first path varying slowest
    let combos: Record<string, unknown>[] = [{}];
    for (const p of paths) combos = combos.flatMap((c) => req.grid![p].map((v) => ({ ...c, [p]: v })));
    for (const c of combos) raw.push(Object.entries(c).reduce((s, [p, v]) => setPath(s, p, v), base));
    varied = paths.filter((p) => new Set(req.grid![p].map((v) => JSON.stringify(v))).size > 1);
  } else {
    for (const s of req.specs!) raw.push(deepMerge(base, s));
    varied = [];
  }
  const issues: SpecIssue[] = [];
  const specs: (JobSpec | undefined)[] = raw.map((s, i) => {
    if (s.idempotencyKey !== undefined) {
      issues.push({ field: req.grid ? 'base.idempotencyKey' : `specs[${i}].idempotencyKey`, message: "an experiment's jobs cannot carry idempotency keys" });
      return undefined;
    }
    try {
      return parseJobSpec(s);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      for (const iss of e.issues) {
        if (req.grid) {
          const at = pointLabel(Object.fromEntries(Object.keys(req.grid).map((p) => [p, getPath(s, p)])));
          // a path that is a grid path is named as such; anything else comes from the base
          const gridPath = Object.keys(req.grid).find((p) => iss.field === p || iss.field.startsWith(`${p}.`));
          issues.push({ field: gridPath ? `grid.${gridPath}` : `base${iss.field ? `.${iss.field}` : ''}`, message: `at ${at}: ${iss.message}` });
        } else {
          issues.push({ field: `specs[${i}]${iss.field ? `.${iss.field}` : ''}`, message: iss.message });
        }
      }
      return undefined;
    }
  });
  if (issues.length) throw new SpecError(dedupe(issues).slice(0, 50));
  const parsed = specs as JobSpec[];
  // with a list of specs, the varied paths are the leaves whose values differ between the points
  if (!req.grid) varied = differingLeaves(parsed);
  const points = parsed.map((spec, i) => {
    const values = Object.fromEntries(varied.map((p) => [p, getPath(spec, p)]));
    if (spec.name !== undefined) return { values, spec, input: raw[i] };
    const name = `${req.name ?? 'sweep'}${varied.length ? ` ${pointLabel(values)}` : ''}`.slice(0, 200);
    return { values, spec: { ...spec, name }, input: { ...raw[i], name } };
  });
  return { name: req.name, varied, points };
}

function dedupe(issues: SpecIssue[]): SpecIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.field}\n${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Dotted paths of the leaves (not the corpus text, not the name) whose values differ between specs. */
function differingLeaves(specs: JobSpec[]): string[] {
  const leaves = new Map<string, Set<string>>();
  const walk = (v: unknown, path: string) => {
    if (path === 'name' || path === 'data.corpus') return;
    if (isPlain(v)) for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    else {
      let set = leaves.get(path);
      if (!set) leaves.set(path, (set = new Set()));
      set.add(JSON.stringify(v));
    }
  };
  for (const s of specs) walk(s, '');
  return [...leaves].filter(([, vals]) => vals.size > 1).map(([p]) => p);
}

/** The caps on the sum of an experiment's estimates (memory stays per job: jobs run apart). */
export function checkExperimentCaps(estimates: JobEstimate[], caps: JobCaps): void {
  const tokenEpochs = estimates.reduce((n, e) => n + e.tokenEpochs, 0);
  const teraflops = estimates.reduce((n, e) => n + e.teraflops, 0);
  const issues: SpecIssue[] = [];
  if (caps.maxTokenEpochs > 0 && tokenEpochs > caps.maxTokenEpochs) {
    issues.push({
      field: 'grid',
      message: `the experiment's ${estimates.length} jobs need ${tokenEpochs} token-epochs together; MAX_JOB_TOKEN_EPOCHS = ${caps.maxTokenEpochs} applies to their sum`,
    });
  }
  if (caps.maxTeraflops > 0 && teraflops > caps.maxTeraflops) {
    issues.push({
      field: 'grid',
      message: `the experiment's ${estimates.length} jobs need about ${teraflops.toPrecision(3)} TFLOP together; MAX_JOB_TFLOP = ${caps.maxTeraflops} applies to their sum`,
    });
  }
  if (issues.length) throw new SpecError(issues);
}

/** The stored experiment (hash P:experiment:<id>). */
export interface ExperimentRecord {
  id: string;
  name?: string;
  createdAt: string;
  ownerKey?: string;
  ownerName?: string;
  varied: string[];
  jobs: { id: string; values: Record<string, unknown> }[];
}

/** The experiment's table: one row per job, in creation order (a deleted job keeps its row). */
export function experimentTable(
  exp: ExperimentRecord,
  views: (JobView | null)[],
  best: (number | undefined)[],
  elapsed: (number | undefined)[],
): ExperimentView {
  const jobs = exp.jobs.map((j, i): ExperimentRow => {
    const v = views[i];
    if (!v) return { id: j.id, values: j.values, state: 'deleted', epoch: 0, epochs: 0 };
    const row: ExperimentRow = {
      id: j.id,
      name: v.name,
      values: j.values,
      state: v.state,
      epoch: v.progress.epoch,
      epochs: v.progress.epochs,
      finalPerplexity: v.summary?.finalPerplexity ?? v.perplexity ?? undefined,
      bestPerplexity: best[i],
      tokensPerSec: v.tokensPerSec,
      elapsedMs: v.summary?.totalMs ?? elapsed[i],
    };
    for (const k of Object.keys(row) as (keyof ExperimentRow)[]) if (row[k] === undefined) delete row[k];
    return row;
  });
  const out: ExperimentView = { id: exp.id, name: exp.name, owner: exp.ownerName, createdAt: exp.createdAt, varied: exp.varied, jobs };
  if (out.name === undefined) delete out.name;
  if (out.owner === undefined) delete out.owner;
  return out;
}

/** The table as text (the CLI prints it): one line per job, the varied values first. */
export function formatExperimentTable(v: ExperimentView): string {
  const head = [...v.varied.map((p) => p.split('.').pop()!), 'job', 'state', 'epoch', 'final ppl', 'best ppl', 'tokens/s', 'time s'];
  const rows = v.jobs.map((j) => [
    ...v.varied.map((p) => String(j.values[p] ?? '')),
    j.id,
    j.state,
    `${j.epoch}/${j.epochs}`,
    j.finalPerplexity === undefined ? '-' : j.finalPerplexity.toFixed(3),
    j.bestPerplexity === undefined ? '-' : j.bestPerplexity.toFixed(3),
    j.tokensPerSec === undefined ? '-' : Math.round(j.tokensPerSec).toString(),
    j.elapsedMs === undefined ? '-' : (j.elapsedMs / 1000).toFixed(1),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r
      .map((x, c) => x.padEnd(widths[c]))
      .join('  ')
      .trimEnd();
  return [`experiment ${v.id}${v.name ? ` (${v.name})` : ''}: ${v.jobs.length} jobs`, line(head), ...rows.map(line)].join('\n');
}
