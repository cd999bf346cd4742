// The job specification (docs/service.md): one zod schema, shared by the CLI, REST and gRPC.
// Every field defaults to d2l's value, so `{}` is a valid job; every number is bounded so one
// job cannot exhaust a worker, and every error names the field and the bound.
import { z } from 'zod';
import { prefixTokens, TOKENIZERS } from '../text/tokenizers.js';

export const LIMITS = {
  numHiddens: 1024,
  numLayers: 4,
  epochs: 5000,
  batchSize: 512,
  numSteps: 512,
  maxTokens: 2_000_000,
  corpusTextBytes: 2_000_000,
  /** Tokens of a vocabulary (with `<unk>`): the one-hot input and the output layer grow with it. */
  vocabSize: 50_000,
  minFreq: 1_000_000,
  /** data.validFraction: at most half the corpus held out. */
  validFraction: 0.5,
  patience: 1000,
  lr: 100,
  clipTheta: 1000,
  predictEvery: 5000,
  prefixes: 8,
  prefixChars: 200,
  numPreds: 2000,
  nameChars: 200,
  idempotencyKeyChars: 200,
  tags: 16,
  /** train.timeoutSeconds: at most 7 days. */
  timeoutSeconds: 604_800,
  /** Σ over the prefixes of (prefix length + numPreds): the characters of one epoch's samples. */
  sampleCharsPerEpoch: 4000,
  /** The same over every sampled epoch of the job (every predictEvery epochs and the last). */
  sampleCharsPerJob: 1_000_000,
} as const;

/** How many epochs of a job carry samples: every predictEvery epochs, and the last one. */
export function sampledEpochs(epochs: number, predictEvery: number): number {
  return Math.floor(epochs / predictEvery) + (epochs % predictEvery === 0 ? 0 : 1);
}

const int = (name: string, min: number, max: number) =>
  z
    .number({ error: (iss) => (iss.input === undefined ? `${name} is required` : `${name} must be a number`) })
    .int({ error: `${name} must be an integer` })
    .min(min, { error: `${name} must be ≥ ${min}` })
    .max(max, { error: `${name} must be ≤ ${max}` });

const positive = (name: string, max: number) =>
  z
    .number({ error: `${name} must be a number` })
    .gt(0, { error: `${name} must be > 0` })
    .max(max, { error: `${name} must be ≤ ${max}` });

export const ModelSpec = z
  .object({
    kind: z.enum(['scratch', 'concise'], { error: "model.kind must be 'scratch' or 'concise'" }).default('scratch'),
    numHiddens: int('model.numHiddens', 1, LIMITS.numHiddens).default(256),
    numLayers: int('model.numLayers', 1, LIMITS.numLayers).default(1),
  })
  .strict()
  .refine((m) => m.kind === 'concise' || m.numLayers === 1, {
    error: 'model.numLayers must be 1 for the scratch kind (the seed has one layer); use kind concise for more',
    path: ['numLayers'],
  });

/** A corpus id: the SHA-256 (hex) of its bytes. */
export const CORPUS_ID_RE = /^[0-9a-f]{64}$/;

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export const CorpusSpec = z.union(
  [
    z.literal('timemachine'),
    z
      .object({
        text: z
          .string({ error: 'data.corpus.text must be a string' })
          .min(1, { error: 'data.corpus.text must not be empty' })
          .refine((s) => utf8Bytes(s) <= LIMITS.corpusTextBytes, {
            error: `data.corpus.text must be at most ${LIMITS.corpusTextBytes} bytes`,
          }),
      })
      .strict(),
    // an uploaded corpus (POST /v1/corpora), by its id: the SHA-256 of its bytes
    z
      .object({
        id: z
          .string({ error: 'data.corpus.id must be a string' })
          .regex(CORPUS_ID_RE, { error: 'data.corpus.id must be a corpus id (64 hex digits, as POST /v1/corpora answers)' }),
      })
      .strict(),
  ],
  { error: "data.corpus must be 'timemachine', {text: string} or {id: string}" },
);

/** maxTokens when not given: 10,000 for the book and pasted texts (d2l's recipe); an uploaded corpus's whole length is filled in at submission. */
export const DEFAULT_MAX_TOKENS = 10000;

export const DataSpec = z
  .object({
    corpus: CorpusSpec.default('timemachine'),
    /** Absent only for an uploaded corpus before submission fills in its length (docs/corpora.md). */
    maxTokens: int('data.maxTokens', 1, LIMITS.maxTokens).optional(),
    tokenizer: z.enum(TOKENIZERS, { error: `data.tokenizer must be one of ${TOKENIZERS.map((t) => `'${t}'`).join(', ')}` }).default('d2l-chars'),
    /** d2l's Vocab(min_freq): tokens seen fewer times become `<unk>`. */
    minFreq: int('data.minFreq', 0, LIMITS.minFreq).default(0),
    /** The corpus tail held out for validation perplexity (0: none, d2l's recipe). */
    validFraction: z
      .number({ error: 'data.validFraction must be a number' })
      .min(0, { error: 'data.validFraction must be ≥ 0' })
      .max(LIMITS.validFraction, { error: `data.validFraction must be ≤ ${LIMITS.validFraction}` })
      .default(0),
    batchSize: int('data.batchSize', 1, LIMITS.batchSize).default(32),
    numSteps: int('data.numSteps', 1, LIMITS.numSteps).default(35),
    sampling: z.enum(['sequential', 'random'], { error: "data.sampling must be 'sequential' or 'random'" }).default('sequential'),
  })
  .strict()
  .transform((d) => (d.maxTokens === undefined && !(typeof d.corpus === 'object' && 'id' in d.corpus) ? { ...d, maxTokens: DEFAULT_MAX_TOKENS } : d));

export const TrainSpec = z
  .object({
    epochs: int('train.epochs', 1, LIMITS.epochs).default(500),
    lr: positive('train.lr', LIMITS.lr).default(1),
    clipTheta: positive('train.clipTheta', LIMITS.clipTheta).default(1),
    seed: int('train.seed', 0, 2 ** 32 - 1).optional(),
    /** Training time allowed (elapsedMs, across resumes); past it the worker cancels the job. */
    timeoutSeconds: int('train.timeoutSeconds', 1, LIMITS.timeoutSeconds).optional(),
    /** Stop when validation perplexity has not improved by minDelta for patience epochs (needs data.validFraction > 0). */
    earlyStopping: z
      .object({
        patience: int('train.earlyStopping.patience', 1, LIMITS.patience),
        minDelta: z.number({ error: 'train.earlyStopping.minDelta must be a number' }).min(0, { error: 'train.earlyStopping.minDelta must be ≥ 0' }).default(0),
      })
      .strict()
      .optional(),
  })
  .strict();

export const ReportSpec = z
  .object({
    predictEvery: int('report.predictEvery', 1, LIMITS.predictEvery).default(10),
    prefixes: z
      .array(
        z
          .string({ error: 'report.prefixes must be strings' })
          .max(LIMITS.prefixChars, { error: `report.prefixes entries must be at most ${LIMITS.prefixChars} characters` }),
        { error: 'report.prefixes must be an array of strings' },
      )
      .max(LIMITS.prefixes, { error: `report.prefixes must have at most ${LIMITS.prefixes} entries` })
      .default(['time traveller', 'traveller']),
    numPreds: int('report.numPreds', 0, LIMITS.numPreds).default(50),
  })
  .strict();

/**
 * Where a job's weights start (docs/export.md, "Models in"): another job's latest checkpoint, or a
 * model uploaded with POST /v1/models. The service checks at submission that it exists and fits
 * model.* (a 400 naming the mismatch); the job's vocabulary is then the model's.
 */
const refId = (name: string) =>
  z
    .string({ error: `${name} must be a string` })
    .regex(/^[0-9a-z]{1,64}$/, { error: `${name} must be an id as the service gives them (letters a-z and digits)` });
export const InitSpec = z.union([z.object({ fromJob: refId('init.fromJob') }).strict(), z.object({ model: refId('init.model') }).strict()], {
  error: 'init must be {fromJob: "<job id>"} or {model: "<model id>"}',
});

export const JobSpec = z
  .object({
    model: ModelSpec.default(() => ModelSpec.parse({})),
    data: DataSpec.default(() => DataSpec.parse({})),
    train: TrainSpec.default(() => TrainSpec.parse({})),
    report: ReportSpec.default(() => ReportSpec.parse({})),
    init: InitSpec.optional(),
    name: z
      .string()
      .max(LIMITS.nameChars, { error: `name must be at most ${LIMITS.nameChars} characters` })
      .optional(),
    tags: z
      .array(z.string().regex(/^[A-Za-z0-9_.:=@-]{1,64}$/, { error: 'tags must be 1–64 characters of A-Z a-z 0-9 _ . : = @ -' }), {
        error: 'tags must be an array of strings',
      })
      .max(LIMITS.tags, { error: `tags must have at most ${LIMITS.tags} entries` })
      .optional(),
    idempotencyKey: z
      .string()
      .min(1, { error: 'idempotencyKey must not be empty' })
      .max(LIMITS.idempotencyKeyChars, { error: `idempotencyKey must be at most ${LIMITS.idempotencyKeyChars} characters` })
      .optional(),
  })
  .strict()
  // the job's history budget: samples are the only part of an epoch event whose size the spec sets
  .superRefine((spec, ctx) => {
    const { prefixes, numPreds, predictEvery } = spec.report;
    // a prefix must leave at least one token to warm the model up on, under the job's tokenizer
    prefixes.forEach((p, i) => {
      if (prefixTokens(p, spec.data.tokenizer).length > 0) return;
      const message =
        spec.data.tokenizer === 'd2l-chars'
          ? 'report.prefixes entries must contain at least one letter (A-Z, a-z)'
          : `report.prefixes entries must not be ${spec.data.tokenizer === 'words' ? 'blank (tokenizer words)' : 'empty'}`;
      ctx.addIssue({ code: 'custom', path: ['report', 'prefixes', i], message });
    });
    if (spec.train.earlyStopping && spec.data.validFraction === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'earlyStopping'],
        message: 'train.earlyStopping needs data.validFraction > 0 (a held-out part to watch)',
      });
    }
    const perEpoch = prefixes.reduce((n, p) => n + p.length + numPreds, 0);
    if (perEpoch > LIMITS.sampleCharsPerEpoch) {
      const why = `${prefixes.length} prefixes × (their length + numPreds ${numPreds}) = ${perEpoch} sample characters per epoch; at most ${LIMITS.sampleCharsPerEpoch}`;
      ctx.addIssue({ code: 'custom', path: ['report', 'numPreds'], message: `report.numPreds: ${why}` });
      ctx.addIssue({ code: 'custom', path: ['report', 'prefixes'], message: `report.prefixes: ${why}` });
      return;
    }
    const total = perEpoch * sampledEpochs(spec.train.epochs, predictEvery);
    if (total > LIMITS.sampleCharsPerJob) {
      const why = `${perEpoch} sample characters × ${sampledEpochs(spec.train.epochs, predictEvery)} sampled epochs = ${total}; at most ${LIMITS.sampleCharsPerJob} per job`;
      for (const f of ['predictEvery', 'numPreds'] as const) ctx.addIssue({ code: 'custom', path: ['report', f], message: `report.${f}: ${why}` });
    }
  });

export type JobSpecInput = z.input<typeof JobSpec>;
export type JobSpec = z.output<typeof JobSpec>;

export interface SpecIssue {
  /** Dotted path of the offending field, e.g. 'model.numHiddens' ('' for the whole body). */
  field: string;
  message: string;
}

export class SpecError extends Error {
  constructor(readonly issues: SpecIssue[]) {
    super(issues.map((i) => (!i.field || i.message.startsWith(i.field) ? i.message : `${i.field}: ${i.message}`)).join('; '));
    this.name = 'SpecError';
  }
}

/** Validate and fill defaults; throws SpecError naming every offending field. */
export function parseJobSpec(input: unknown): JobSpec {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new SpecError([{ field: '', message: 'the job spec must be a JSON object' }]);
  }
  const r = JobSpec.safeParse(input);
  if (!r.success) throw specErrorFrom(r.error);
  return r.data;
}

/** A zod error as a SpecError: one issue per offending field, unknown fields named in full. */
export function specErrorFrom(error: z.ZodError): SpecError {
  return new SpecError(
    error.issues.map((iss) => {
      const parent = iss.path.map(String).join('.');
      if (iss.code === 'unrecognized_keys') {
        const names = iss.keys.map((k) => (parent ? `${parent}.${k}` : k));
        return { field: names[0], message: `unknown field${names.length > 1 ? 's' : ''} ${names.join(', ')}` };
      }
      return { field: parent, message: iss.message };
    }),
  );
}
