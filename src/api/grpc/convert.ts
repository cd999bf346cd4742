// Proto messages <-> the jobs layer's plain objects. Requests become exactly the JSON the HTTP API
// would receive (unset fields left out), so the one zod schema validates both APIs alike.
import { createHash } from 'node:crypto';
import type { ExperimentRow, ExperimentView, JobEvent, JobSpecView, JobState, JobSummary, JobView, ModelView } from '../../jobs/types.js';
import { SpecError } from '../../train/spec.js';
import type { EpochEvent } from '../../train/trainer.js';
import type {
  JobStateName,
  PCreateExperimentRequest,
  PEpochEvent,
  PExperiment,
  PExperimentRow,
  PGenerateRequest,
  PGridAxis,
  PJob,
  PJobEvent,
  PJobSpec,
  PJobSummary,
  PListJobsRequest,
  PModel,
  PValue,
} from './proto.js';

type Plain = Record<string, unknown>;

/** Copies the fields that are present, renamed; proto3 `optional` presence = "the user set it". */
function present(src: object | undefined, names: Record<string, string>): Plain {
  const out: Plain = {};
  if (!src) return out;
  for (const [from, to] of Object.entries(names)) {
    const v = (src as Plain)[from];
    if (v !== undefined && v !== null) out[to] = v;
  }
  return out;
}

/**
 * An enum value as the zod schema's string: UNSPECIFIED (or unset) is left out so the default
 * applies; a value this server does not know is passed through as is, so zod rejects it by name.
 */
function enumValue(v: string | number | undefined, prefix: string): unknown {
  if (v === undefined || v === `${prefix}UNSPECIFIED` || v === 0) return undefined;
  if (typeof v === 'string' && v.startsWith(prefix)) return v.slice(prefix.length).toLowerCase();
  return v;
}

function put(obj: Plain, key: string, v: unknown): void {
  if (v !== undefined) obj[key] = v;
}

/** A SubmitJobRequest.spec as the JSON body POST /v1/jobs would take. */
export function specFromProto(p: PJobSpec | undefined): Plain {
  const out: Plain = {};
  if (!p) return out;
  if (p.model) {
    const m = present(p.model, { num_hiddens: 'numHiddens', num_layers: 'numLayers' });
    put(m, 'kind', enumValue(p.model.kind, 'MODEL_KIND_'));
    out.model = m;
  }
  if (p.data) {
    const d = present(p.data, {
      max_tokens: 'maxTokens',
      batch_size: 'batchSize',
      num_steps: 'numSteps',
      tokenizer: 'tokenizer',
      min_freq: 'minFreq',
      valid_fraction: 'validFraction',
    });
    put(d, 'sampling', enumValue(p.data.sampling, 'SAMPLING_'));
    // oneof source: text given → custom corpus; timemachine or nothing → the book (the default).
    // `timemachine: true` is said, so that an experiment's spec laid over a base can choose the book.
    if (p.data.corpus?.text !== undefined) d.corpus = { text: p.data.corpus.text };
    else if (p.data.corpus?.id !== undefined) d.corpus = { id: p.data.corpus.id };
    else if (p.data.corpus?.timemachine === true) d.corpus = 'timemachine';
    out.data = d;
  }
  if (p.train) {
    out.train = present(p.train, { epochs: 'epochs', lr: 'lr', clip_theta: 'clipTheta', seed: 'seed', timeout_seconds: 'timeoutSeconds' });
    if (p.train.early_stopping) (out.train as Plain).earlyStopping = present(p.train.early_stopping, { patience: 'patience', min_delta: 'minDelta' });
  }
  if (p.report) {
    const r = present(p.report, { predict_every: 'predictEvery', num_preds: 'numPreds' });
    // proto3 cannot tell an empty repeated field from an unset one: empty = the default prefixes.
    if (p.report.prefixes && p.report.prefixes.length > 0) r.prefixes = p.report.prefixes;
    out.report = r;
  }
  // oneof source: the one set becomes init's one field; an InitSpec with none is {} (zod names it)
  if (p.init) out.init = p.init.from_job !== undefined ? { fromJob: p.init.from_job } : p.init.model !== undefined ? { model: p.init.model } : {};
  Object.assign(out, present(p, { name: 'name', idempotency_key: 'idempotencyKey' }));
  // proto3: an empty repeated field is unset
  if (p.tags && p.tags.length > 0) out.tags = p.tags;
  return out;
}

/** A Value as the JSON value it stands for; no kind set is null (which the grid's schema refuses by name). */
export function valueFromProto(v: PValue | undefined): unknown {
  if (v?.number_value !== undefined) return v.number_value;
  if (v?.string_value !== undefined) return v.string_value;
  if (v?.bool_value !== undefined) return v.bool_value;
  if (v?.list_value !== undefined) return (v.list_value.values ?? []).map(valueFromProto);
  return null;
}

/**
 * CreateExperimentRequest.grid as the HTTP body's `grid` object, paths in the request's order (the
 * first varies slowest). An object has each key once, so a path given twice is refused by name
 * rather than one of its axes silently winning.
 */
export function gridFromProto(axes: PGridAxis[]): Plain {
  const grid = new Map<string, unknown[]>();
  const twice = new Set<string>();
  for (const axis of axes) {
    const path = axis.path ?? '';
    if (grid.has(path)) twice.add(path);
    grid.set(path, (axis.values ?? []).map(valueFromProto));
  }
  if (twice.size)
    throw new SpecError([...twice].map((p) => ({ field: `grid.${p}`, message: `grid names ${p} more than once: give each path once, with all its values` })));
  // fromEntries makes own properties, so no path can reach the prototype
  return Object.fromEntries(grid);
}

/** A CreateExperimentRequest as the JSON body POST /v1/experiments would take (proto3: an empty repeated field is unset). */
export function experimentRequestFromProto(p: PCreateExperimentRequest): Plain {
  const out: Plain = {};
  if (p.name !== undefined) out.name = p.name;
  if (p.base) out.base = specFromProto(p.base);
  if (p.grid && p.grid.length > 0) out.grid = gridFromProto(p.grid);
  if (p.specs && p.specs.length > 0) out.specs = p.specs.map(specFromProto);
  return out;
}

/** A GenerateRequest (less job_id) as the JSON body POST /v1/jobs/:id/generate would take. */
export function generateFromProto(p: PGenerateRequest): Plain {
  const out = present(p, { num_chars: 'numChars', temperature: 'temperature', top_k: 'topK', seed: 'seed' });
  out.prefix = p.prefix ?? ''; // a plain proto3 string: unset is ''; zod then says it needs a letter
  return out;
}

/** ExportModelRequest (less job_id) as the ExportModelRequest schema's input (unset / UNSPECIFIED: the default format). */
export function exportModelFromProto(p: { format?: string | number }): Plain {
  const out: Plain = {};
  put(out, 'format', enumValue(p.format, 'MODEL_FORMAT_'));
  return out;
}

/** ListJobsRequest.view / GetJobRequest.view as the ListView schema's string (unset / UNSPECIFIED → undefined: the default). */
export function listViewFromProto(p: { view?: PListJobsRequest['view'] }): unknown {
  return enumValue(p.view, 'JOB_VIEW_');
}

/** ListJobsRequest as the HTTP query; field names in errors are mapped back by listIssueRename. */
export function listQueryFromProto(p: PListJobsRequest): Plain {
  const out: Plain = {};
  put(out, 'state', enumValue(p.state, 'JOB_STATE_'));
  if (p.page_size) out.limit = p.page_size; // 0 = unset = the default page size
  if (p.page_token) out.cursor = p.page_token;
  if (p.tag) out.tag = p.tag;
  if (p.experiment) out.experiment = p.experiment;
  if (p.name) out.name = p.name;
  return out;
}

const LIST_FIELD_NAMES: Record<string, string> = { limit: 'pageSize', cursor: 'pageToken', state: 'state' };

/** The HTTP query's field names (limit, cursor) as the proto's (pageSize, pageToken). */
export function renameListIssues(e: SpecError): SpecError {
  return new SpecError(
    e.issues.map((i) => {
      const to = LIST_FIELD_NAMES[i.field];
      if (!to) return i;
      const message = i.message.startsWith(i.field) ? to + i.message.slice(i.field.length) : i.message;
      return { field: to, message };
    }),
  );
}

// ---- responses ----

export function stateToProto(s: JobState): JobStateName {
  return `JOB_STATE_${s.toUpperCase()}` as JobStateName;
}

export function summaryToProto(s: JobSummary | undefined): PJobSummary | undefined {
  if (!s) return undefined;
  const out: PJobSummary = { epochs: s.epochs, total_ms: s.totalMs, engine: s.engine, backend: s.backend };
  if (s.finalPerplexity !== null && s.finalPerplexity !== undefined) out.final_perplexity = s.finalPerplexity;
  if (s.stopReason !== undefined) out.stop_reason = s.stopReason;
  if (s.bestEpoch !== undefined) out.best_epoch = s.bestEpoch;
  return out;
}

export function epochToProto(e: EpochEvent): PEpochEvent {
  const out: PEpochEvent = {
    epoch: e.epoch,
    epochs: e.epochs,
    perplexity: e.perplexity,
    tokens_per_sec: e.tokensPerSec,
    elapsed_ms: e.elapsedMs,
  };
  if (e.validPerplexity !== undefined && Number.isFinite(e.validPerplexity)) out.valid_perplexity = e.validPerplexity;
  if (e.samples) out.samples = e.samples.map((s) => ({ prefix: s.prefix, text: s.text }));
  return out;
}

export function eventToProto(e: JobEvent): PJobEvent {
  const out: PJobEvent = { seq: e.seq, time: e.time };
  if (e.type === 'state') {
    out.state = { state: stateToProto(e.state), summary: summaryToProto(e.summary) };
    if (e.error !== undefined) out.state.error = e.error;
    if (e.attempt !== undefined) out.state.attempt = e.attempt;
    if (e.message !== undefined) out.state.message = e.message;
  } else {
    out.epoch = epochToProto(e);
  }
  return out;
}

/** The resolved spec, every field set; a custom corpus text only when the view has it and includeText. */
export function specToProto(s: JobSpecView, includeText: boolean): PJobSpec {
  const c = s.data.corpus;
  const corpus = c === 'timemachine' ? { timemachine: true } : 'id' in c ? { id: c.id } : includeText && 'text' in c ? { text: c.text } : {};
  const out: PJobSpec = {
    model: {
      kind: s.model.kind === 'scratch' ? 'MODEL_KIND_SCRATCH' : 'MODEL_KIND_CONCISE',
      num_hiddens: s.model.numHiddens,
      num_layers: s.model.numLayers,
    },
    data: {
      corpus,
      max_tokens: s.data.maxTokens,
      batch_size: s.data.batchSize,
      num_steps: s.data.numSteps,
      sampling: s.data.sampling === 'random' ? 'SAMPLING_RANDOM' : 'SAMPLING_SEQUENTIAL',
      ...(s.data.tokenizer !== undefined ? { tokenizer: s.data.tokenizer, min_freq: s.data.minFreq, valid_fraction: s.data.validFraction } : {}),
    },
    train: { epochs: s.train.epochs, lr: s.train.lr, clip_theta: s.train.clipTheta },
    report: { predict_every: s.report.predictEvery, prefixes: [...s.report.prefixes], num_preds: s.report.numPreds },
  };
  if (s.train.seed !== undefined) out.train!.seed = s.train.seed;
  if (s.train.earlyStopping) out.train!.early_stopping = { patience: s.train.earlyStopping.patience, min_delta: s.train.earlyStopping.minDelta };
  if (s.train.timeoutSeconds !== undefined) out.train!.timeout_seconds = s.train.timeoutSeconds;
  if (s.name !== undefined) out.name = s.name;
  if (s.idempotencyKey !== undefined) out.idempotency_key = s.idempotencyKey;
  if (s.init) out.init = 'fromJob' in s.init ? { from_job: s.init.fromJob } : { model: s.init.model };
  if (s.tags !== undefined) out.tags = [...s.tags];
  return out;
}

/** A job as the proto's Job; `full` keeps a custom corpus text if the view has it (else its size and digest). */
export function jobToProto(j: JobView, full = false): PJob {
  const c = j.spec.data.corpus;
  const out: PJob = {
    id: j.id,
    state: stateToProto(j.state),
    spec: specToProto(j.spec, full),
    created_at: j.createdAt,
    progress: { epoch: j.progress.epoch, epochs: j.progress.epochs },
    summary: summaryToProto(j.summary),
    last_epochs: j.lastEpochs.map(epochToProto),
  };
  if (j.name !== undefined) out.name = j.name;
  if (j.startedAt !== undefined) out.started_at = j.startedAt;
  if (j.finishedAt !== undefined) out.finished_at = j.finishedAt;
  if (j.perplexity !== undefined) out.perplexity = j.perplexity;
  if (j.tokensPerSec !== undefined) out.tokens_per_sec = j.tokensPerSec;
  if (j.engine !== undefined) out.engine = j.engine;
  if (j.backend !== undefined) out.backend = j.backend;
  if (j.error !== undefined) out.error = j.error;
  if (j.checkpointEpoch !== undefined) out.checkpoint_epoch = j.checkpointEpoch;
  if (j.lastSeq !== undefined) out.last_seq = j.lastSeq;
  if (j.attempt !== undefined) out.attempt = j.attempt;
  if (j.owner !== undefined) out.owner = j.owner;
  if (j.experiment !== undefined) out.experiment = j.experiment;
  if (j.estimate) {
    const e = j.estimate;
    out.estimate = { params: e.params, tokens: e.tokens, token_epochs: e.tokenEpochs, teraflops: e.teraflops, memory_mb: e.memoryMb };
  }
  if (j.init) {
    out.init = {};
    if (j.init.fromJob !== undefined) out.init.from_job = j.init.fromJob;
    if (j.init.model !== undefined) out.init.model = j.init.model;
    if (j.init.epoch !== undefined) out.init.epoch = j.init.epoch;
    if (j.init.perplexity !== undefined) out.init.perplexity = j.init.perplexity;
  }
  if (c !== 'timemachine' && !(full && 'text' in c)) {
    if ('text' in c) {
      out.corpus_text_bytes = Buffer.byteLength(c.text, 'utf8');
      out.corpus_text_sha256 = createHash('sha256').update(c.text, 'utf8').digest('hex');
    } else if ('bytes' in c) {
      out.corpus_text_bytes = c.bytes;
      out.corpus_text_sha256 = c.sha256;
    }
  }
  return out;
}

/** An uploaded model as the proto's Model. */
export function modelToProto(m: ModelView): PModel {
  const out: PModel = {
    id: m.id,
    kind: m.kind === 'scratch' ? 'MODEL_KIND_SCRATCH' : 'MODEL_KIND_CONCISE',
    num_hiddens: m.numHiddens,
    num_layers: m.numLayers,
    vocab_size: m.vocabSize,
    vocab: [...m.vocab],
    bytes: m.bytes,
    sha256: m.sha256,
    uploaded_at: m.uploadedAt,
  };
  if (m.epoch !== undefined) out.epoch = m.epoch;
  if (m.perplexity !== undefined) out.perplexity = m.perplexity;
  return out;
}

/** A JSON value as a Value (what a varied path holds: numbers, strings, booleans, lists of them); anything else has no kind (null). */
export function valueToProto(v: unknown): PValue {
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'string') return { string_value: v };
  if (typeof v === 'boolean') return { bool_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(valueToProto) } };
  return {};
}

/** One row of an experiment's table; a deleted job's state is UNSPECIFIED with `deleted` set. */
export function experimentRowToProto(r: ExperimentRow): PExperimentRow {
  const values: Record<string, PValue> = {};
  for (const [path, v] of Object.entries(r.values)) if (v !== undefined) values[path] = valueToProto(v);
  const out: PExperimentRow = {
    id: r.id,
    values,
    state: r.state === 'deleted' ? 'JOB_STATE_UNSPECIFIED' : stateToProto(r.state),
    deleted: r.state === 'deleted',
    epoch: r.epoch,
    epochs: r.epochs,
  };
  if (r.name !== undefined) out.name = r.name;
  if (r.finalPerplexity !== undefined) out.final_perplexity = r.finalPerplexity;
  if (r.bestPerplexity !== undefined) out.best_perplexity = r.bestPerplexity;
  if (r.tokensPerSec !== undefined) out.tokens_per_sec = r.tokensPerSec;
  if (r.elapsedMs !== undefined) out.elapsed_ms = r.elapsedMs;
  return out;
}

/** An experiment's table as the proto's Experiment. */
export function experimentToProto(x: ExperimentView): PExperiment {
  const out: PExperiment = { id: x.id, created_at: x.createdAt, varied: [...x.varied], jobs: x.jobs.map(experimentRowToProto) };
  if (x.name !== undefined) out.name = x.name;
  if (x.owner !== undefined) out.owner = x.owner;
  return out;
}
