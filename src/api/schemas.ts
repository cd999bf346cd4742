// Request messages other than the job spec (train/spec.ts), one zod schema each, shared by HTTP and gRPC.
// A field's .describe() is its description in the HTTP API's OpenAPI document.
import { z } from 'zod';
import { EXPERIMENT_ID_RE } from '../jobs/experiments.js';
import { JOB_ID_LENGTH, JOB_ID_RE } from '../jobs/job-records.js';
import { isModelId } from '../jobs/models.js';
import { SpecError, specErrorFrom } from '../train/spec.js';

/**
 * A job id, the one rule for every entry point (HTTP path `:id`, gRPC `job_id`): exactly the shape
 * src/jobs makes (job-records.ts newJobId): "j" and 19 characters of 0-9 a-z, 20 in all. A malformed id
 * is a 400 / INVALID_ARGUMENT naming the field; a well-formed id of no job is 404 / NOT_FOUND.
 */
export const JobId = z.string().regex(JOB_ID_RE);

/** The message of a malformed job id (also for ids the HTTP router refuses before any schema runs). */
export const jobIdMessage = (field: string) => `${field} must be a job id as submit returns it: ${JOB_ID_LENGTH} characters, "j" then 0-9 a-z`;

/** An id checked before any Redis access: the id, or a SpecError naming `field` (required when missing, `malformed` otherwise). */
function parseId(raw: unknown, field: string, valid: (raw: unknown) => raw is string, malformed: string): string {
  if (valid(raw)) return raw;
  throw new SpecError([{ field, message: raw === undefined || raw === '' ? `${field} is required` : malformed }]);
}

/** A job id checked with JobId; a SpecError naming `field` (`id` over HTTP, `jobId` over gRPC) otherwise. */
export function parseJobId(raw: unknown, field: string): string {
  return parseId(raw, field, (r): r is string => JobId.safeParse(r).success, jobIdMessage(field));
}

/** An experiment id, the one rule for HTTP's `:id` and gRPC's `experiment_id` (jobs/experiments.ts newExperimentId). */
export function parseExperimentId(raw: unknown, field: string): string {
  return parseId(
    raw,
    field,
    (r): r is string => typeof r === 'string' && EXPERIMENT_ID_RE.test(r),
    `${field} must be an experiment id as creating the experiment returns it: 20 characters, "x" then 0-9 a-z`,
  );
}

/**
 * An uploaded model's id (HTTP path `:id`, gRPC `model_id`): "m" and 19 hex digits (src/jobs/models.ts
 * MODEL_ID_RE); a SpecError naming `field` otherwise.
 */
export function parseModelId(raw: unknown, field: string): string {
  return parseId(raw, field, isModelId, `${field} must be a model id as the upload returns it: "m" then 19 hex digits`);
}

export const GENERATE_LIMITS = { prefixChars: 1000, numChars: 5000, topK: 1000, temperature: 100 } as const;

export const GenerateRequest = z
  .object({
    prefix: z
      .string({ error: 'prefix must be a string' })
      // what a prefix must hold depends on the job's tokenizer (d2l-chars: a letter A-Z): checked with the job (train/predict.ts cleanPrefix)
      .max(GENERATE_LIMITS.prefixChars, { error: `prefix must be at most ${GENERATE_LIMITS.prefixChars} characters` })
      .describe("text to continue, read as the job's tokenizer reads its corpus (d2l-chars: needs a letter, cleaned as the corpus is)"),
    numChars: z
      .number({ error: 'numChars must be a number' })
      .int({ error: 'numChars must be an integer' })
      .min(1, { error: 'numChars must be ≥ 1' })
      .max(GENERATE_LIMITS.numChars, { error: `numChars must be ≤ ${GENERATE_LIMITS.numChars}` })
      .default(50)
      .describe('characters to generate'),
    temperature: z
      .number({ error: 'temperature must be a number' })
      .min(0, { error: 'temperature must be ≥ 0 (0 = greedy)' })
      .max(GENERATE_LIMITS.temperature, { error: `temperature must be ≤ ${GENERATE_LIMITS.temperature}` })
      .optional()
      .describe('sampling temperature; 0 or unset = greedy (d2l predict_ch8)'),
    topK: z
      .number({ error: 'topK must be a number' })
      .int({ error: 'topK must be an integer' })
      .min(1, { error: 'topK must be ≥ 1' })
      .max(GENERATE_LIMITS.topK, { error: `topK must be ≤ ${GENERATE_LIMITS.topK}` })
      .optional()
      .describe('sample among the k most likely characters only'),
    seed: z
      .number({ error: 'seed must be a number' })
      .int({ error: 'seed must be an integer' })
      .min(0, { error: 'seed must be ≥ 0' })
      .max(2 ** 32 - 1, { error: 'seed must be ≤ 4294967295' })
      .optional()
      .describe('seed of the sampling (same seed, same text)'),
  })
  .strict();
export type GenerateRequest = z.output<typeof GenerateRequest>;

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

/** A list's `limit` query parameter: 1–100, 20 when absent. */
export const PageLimit = z.coerce
  .number({ error: 'limit must be a number' })
  .int({ error: 'limit must be an integer' })
  .min(1, { error: 'limit must be ≥ 1' })
  .max(100, { error: 'limit must be ≤ 100' })
  .default(20);

/** GET /v1/models' query and gRPC ListModels: the newest `limit` uploaded models. */
export const ModelsQuery = z
  .object({
    limit: PageLimit,
  })
  .strict();

export const ListQuery = z
  .object({
    state: z
      .enum(JOB_STATES, { error: `state must be one of ${JOB_STATES.join(', ')}` })
      .optional()
      .describe('only jobs in this state'),
    limit: PageLimit.describe('page size'),
    cursor: z.string().max(200, { error: 'cursor is too long' }).optional().describe("the previous page's nextCursor"),
    tag: z
      .string()
      .min(1, { error: 'tag must not be empty' })
      .max(64, { error: 'tag must be at most 64 characters' })
      .optional()
      .describe('only jobs carrying this tag (spec.tags)'),
    experiment: z
      .string()
      .regex(EXPERIMENT_ID_RE, { error: 'experiment must be an experiment id as POST /v1/experiments returns it' })
      .optional()
      .describe('only the jobs of this experiment'),
    name: z
      .string()
      .min(1, { error: 'name must not be empty' })
      .max(200, { error: 'name must be at most 200 characters' })
      .optional()
      .describe('only jobs of exactly this name'),
  })
  .strict();
export type ListQuery = z.output<typeof ListQuery>;

/**
 * gRPC ListJobs' `view` (JobView less its JOB_VIEW_ prefix; unset / UNSPECIFIED = basic). A value
 * this server does not know is refused (INVALID_ARGUMENT naming `view`), as every other enum is.
 */
export const ListView = z.enum(['basic', 'full'], { error: 'view must be JOB_VIEW_BASIC or JOB_VIEW_FULL (or unset)' }).default('basic');

/** Parse with a schema; a failure becomes a SpecError naming each field. */
export function parseMessage<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw specErrorFrom(r.error);
}

export const MODEL_FORMATS = ['safetensors', 'onnx', 'tfjs', 'checkpoint'] as const;

/** gRPC ExportModel (less job_id): the format, safetensors by default (HTTP: ModelQuery, with tfjs at its own URLs). */
export const ExportModelRequest = z
  .object({
    format: z
      .enum(MODEL_FORMATS, {
        error: `format must be one of MODEL_FORMAT_${MODEL_FORMATS.map((f) => f.toUpperCase()).join(', MODEL_FORMAT_')} (or unset: safetensors)`,
      })
      .default('safetensors'),
  })
  .strict();
