// The document's share for routes/generate.ts: text from a job's latest checkpoint, as JSON or
// streamed as Server-Sent Events.
import { z } from 'zod';
import { GenerateRequest } from '../../schemas.js';
import { jsonSchema, ref } from './json-schema.js';
import { JOB_ID, jobIdParam } from './params.js';
import { type OpenApiPart, problem, tooMany, writes } from './responses.js';

const GenerateResponse = z.object({
  jobId: z.string().describe('the job whose checkpoint generated it'),
  prefix: z.string().describe('the prefix as the model read it (cleaned as the corpus is)'),
  generated: z.string().describe('the generated characters (numChars of them)'),
  text: z.string().describe('prefix + generated'),
});

export const generateDoc: OpenApiPart = {
  schemas: () => ({ GenerateRequest: jsonSchema(GenerateRequest, 'input'), GenerateResponse: jsonSchema(GenerateResponse) }),
  paths: (ctx) => ({
    '/v1/jobs/{id}/generate': {
      post: {
        tags: ['generation'],
        summary: "Generate text from the job's latest checkpoint",
        description:
          'Running jobs too. With Accept: text/event-stream the text streams as `chunk` events ({text}: first the cleaned prefix, then one per character) and ends with a `done` event (GenerateResponse).',
        parameters: [
          jobIdParam,
          {
            name: 'Accept',
            in: 'header',
            required: false,
            description: 'text/event-stream: stream the text as it is generated',
            schema: { type: 'string' },
            example: 'text/event-stream',
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: ref('GenerateRequest'), example: { prefix: 'time traveller', numChars: 30, temperature: 0.8, topK: 5, seed: 42 } },
          },
        },
        responses: {
          '200': {
            description: 'the text (prefix + generated)',
            content: {
              'application/json': {
                schema: ref('GenerateResponse'),
                example: {
                  jobId: JOB_ID,
                  prefix: 'time traveller',
                  generated: ' for so it will be convenient',
                  text: 'time traveller for so it will be convenient',
                },
              },
              'text/event-stream': {
                schema: { type: 'string', description: 'chunk events, then one done event' },
                example:
                  'event: chunk\ndata: {"text":"time traveller"}\n\nevent: chunk\ndata: {"text":" "}\n\nevent: done\ndata: {"jobId":"j0mabc12de3f4g5h6i7k","prefix":"time traveller","generated":" f","text":"time traveller f"}\n\n',
              },
            },
          },
          '400': problem(400, 'an invalid request (fields named), or a prefix without a letter'),
          '404': problem(404, 'no job with this id'),
          '409': problem(409, 'no checkpoint yet (the first is written after epoch 1), or the latest checkpoint is damaged (named with its epoch)'),
          ...writes,
          '429': tooMany(`GENERATE_CONCURRENCY generations are running, or (streamed) the client has MAX_STREAMS_PER_CLIENT streams open.${ctx.authThrottle}`),
          ...ctx.api,
        },
      },
    },
  }),
};
