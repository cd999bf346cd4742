// The document's share for routes/experiments.ts: create a sweep (ExperimentRequest) and read its
// table (ExperimentView).
import { z } from 'zod';
import { ExperimentRequest } from '../../../jobs/experiments.js';
import { JOB_STATES } from '../../schemas.js';
import { describeFields, jsonSchema, ref } from './json-schema.js';
import { JOB_ID } from './params.js';
import { ok, type OpenApiPart, problem, tooMany, writes } from './responses.js';

/** The request's fields, by path (the schema is src/jobs/experiments.ts's, shared with gRPC). */
const EXPERIMENT_REQUEST_DOCS: Record<string, string> = {
  name: 'the experiment\'s name; each job without a name of its own is named "<name> <varied values>"',
  base: 'the job spec every point starts from (see JobSpec)',
  grid: 'dotted spec paths → the values each takes ({"train.lr": [0.5, 1, 2], "model.kind": ["scratch", "concise"]}): one job per combination, at most 100',
  specs: 'instead of a grid: job specs, each laid over the base (objects merge field by field), at most 100',
};

const ExperimentView = z.object({
  id: z.string().describe('the experiment id (20 characters: "x" then 0-9 a-z)'),
  name: z.string().optional().describe('the name given'),
  owner: z.string().optional().describe("with API keys on: the creating key's name, else its fingerprint"),
  createdAt: z.string().describe('when it was created (RFC 3339)'),
  varied: z.array(z.string()).describe('the dotted spec paths whose values differ between the jobs'),
  jobs: z
    .array(
      z.object({
        id: z.string().describe('the job id'),
        name: z.string().optional().describe('the job name'),
        values: z.record(z.string(), z.unknown()).describe("this job's values of the varied paths"),
        state: z.enum([...JOB_STATES, 'deleted']).describe("the job's state; deleted when it has been deleted since"),
        epoch: z.number().int().describe('epochs published so far'),
        epochs: z.number().int().describe('epochs in all'),
        finalPerplexity: z.number().optional().describe('the final perplexity (or the latest while running)'),
        bestPerplexity: z.number().optional().describe('the lowest perplexity of any epoch'),
        tokensPerSec: z.number().optional().describe('training speed of the latest epoch'),
        elapsedMs: z.number().optional().describe('training time (ms)'),
      }),
    )
    .describe('one row per job, in the order of the points'),
});

const exampleExperimentRequest = {
  name: 'lr-sweep',
  base: { model: { numHiddens: 64 }, train: { epochs: 50 }, tags: ['lr'] },
  grid: { 'train.lr': [0.5, 1, 2], 'model.kind': ['scratch', 'concise'] },
};
const exampleExperiment = {
  id: 'x0mabc12de3f4a5b6c7d',
  name: 'lr-sweep',
  createdAt: '2025-03-05T14:03:11.204Z',
  varied: ['train.lr', 'model.kind'],
  jobs: [
    {
      id: JOB_ID,
      name: 'lr-sweep lr=0.5 kind=scratch',
      values: { 'train.lr': 0.5, 'model.kind': 'scratch' },
      state: 'succeeded',
      epoch: 50,
      epochs: 50,
      finalPerplexity: 7.91,
      bestPerplexity: 7.91,
      tokensPerSec: 61200,
      elapsedMs: 8120,
    },
    {
      id: 'j0mabc12de3f4g5h6i7m',
      name: 'lr-sweep lr=0.5 kind=concise',
      values: { 'train.lr': 0.5, 'model.kind': 'concise' },
      state: 'running',
      epoch: 12,
      epochs: 50,
      finalPerplexity: 11.2,
      bestPerplexity: 11.2,
      tokensPerSec: 88100,
      elapsedMs: 1904,
    },
  ],
};

function experimentRequestSchema() {
  const s = jsonSchema(ExperimentRequest, 'input');
  describeFields(s, EXPERIMENT_REQUEST_DOCS);
  return s;
}

export const experimentsDoc: OpenApiPart = {
  schemas: () => ({ ExperimentRequest: experimentRequestSchema(), ExperimentView: jsonSchema(ExperimentView) }),
  paths: (ctx) => ({
    '/v1/experiments': {
      post: {
        tags: ['experiments'],
        summary: 'Create an experiment (a sweep)',
        description:
          'One job per point: every combination of the grid, or each of specs laid over base. Every point is validated as a full job spec, and MAX_JOB_TOKEN_EPOCHS and MAX_JOB_TFLOP apply to the sum, before any job is queued. Jobs cannot carry idempotency keys here.',
        requestBody: { required: true, content: { 'application/json': { schema: ref('ExperimentRequest'), example: exampleExperimentRequest } } },
        responses: {
          '201': ok('the experiment and its queued jobs', 'ExperimentView', exampleExperiment, {
            Location: { description: 'the experiment: /v1/experiments/{id}', schema: { type: 'string' } },
          }),
          '400': problem(
            400,
            "an invalid request or point (named: grid.<path> with the point's values, specs[i].<field>, base.<field>), or a sum of estimates above a cap",
          ),
          ...writes,
          '429': tooMany(
            `the submit rate, waiting jobs per client (MAX_QUEUED_PER_CLIENT) or the queue (MAX_QUEUED_JOBS) cannot take the experiment.${ctx.authThrottle}`,
          ),
          ...ctx.api,
        },
      },
    },
    '/v1/experiments/{id}': {
      get: {
        tags: ['experiments'],
        summary: "An experiment's table: each job's varied values, state and results",
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            description: 'the experiment id, as POST /v1/experiments answered it',
            schema: { type: 'string', pattern: '^x[0-9a-z]{19}$' },
            example: exampleExperiment.id,
          },
        ],
        responses: {
          '200': ok('the experiment', 'ExperimentView', exampleExperiment),
          '400': problem(400, 'a malformed id'),
          '404': problem(404, "no experiment with this id (or another key's)"),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
  }),
};
