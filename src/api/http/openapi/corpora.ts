// The document's share for routes/corpora.ts: upload a text (text/plain, content-addressed), list,
// read and delete corpora.
import { z } from 'zod';
import { jsonSchema } from './json-schema.js';
import { ok, type OpenApiPart, problem } from './responses.js';

const CorpusView = z.object({
  id: z.string().describe('the corpus id: SHA-256 (hex) of its bytes; jobs name it as data.corpus = {id}'),
  bytes: z.number().int().describe('size in bytes (UTF-8)'),
  characters: z.number().int().describe('Unicode code points'),
  preview: z.string().describe('its first 200 characters'),
  createdAt: z.string().describe('when it was first uploaded (RFC 3339)'),
  created: z.boolean().optional().describe('on upload: false when the same bytes were already stored (the same corpus)'),
});
const CorpusList = z.object({ corpora: z.array(CorpusView).describe('the uploaded corpora, newest first') });

const corpusExample = {
  id: '3f1c2a9e5b7d4c6f8a0e1d2c3b4a59687766554433221100ffeeddccbbaa9988',
  bytes: 52_431_872,
  characters: 42_837_076,
  preview: 'Однажды вечером, в 1895 году, Путешественник во Времени рассказал нам о своей машине.',
  createdAt: '2025-03-05T14:01:02.117Z',
};

const corpusIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'a corpus id (64 hex digits: the SHA-256 of its bytes)',
  schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  example: corpusExample.id,
};

export const corporaDoc: OpenApiPart = {
  schemas: () => ({ CorpusView: jsonSchema(CorpusView), CorpusList: jsonSchema(CorpusList) }),
  paths: (ctx) => ({
    '/v1/corpora': {
      post: {
        tags: ['corpora'],
        summary: 'Upload a corpus (a UTF-8 text file)',
        description:
          'The body is the text itself, `Content-Type: text/plain` (charset utf-8 or none), streamed into the store: up to CORPUS_MAX_BYTES (64 MiB by default). ' +
          'Content-addressed: the id is the SHA-256 of the bytes, so the same text uploaded twice is one corpus (201 the first time, 200 after). Train on it with data.corpus = {id}.',
        requestBody: {
          required: true,
          description: 'the text (UTF-8)',
          content: { 'text/plain': { schema: { type: 'string', description: 'UTF-8 text' }, example: 'Однажды вечером…' } },
        },
        responses: {
          '201': ok('stored', 'CorpusView', corpusExample, { Location: { description: '/v1/corpora/{id}', schema: { type: 'string' } } }),
          '200': ok('the same bytes were already stored', 'CorpusView', { ...corpusExample, created: false }),
          '400': problem(400, 'not valid UTF-8, empty, or a charset other than UTF-8'),
          '413': problem(413, 'larger than CORPUS_MAX_BYTES (nothing is stored)'),
          '415': problem(415, 'not text/plain'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
      get: {
        tags: ['corpora'],
        summary: 'The uploaded corpora, newest first (never their texts)',
        responses: {
          '200': ok('the corpora', 'CorpusList', { corpora: [corpusExample] }),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
    '/v1/corpora/{id}': {
      get: {
        tags: ['corpora'],
        summary: 'One corpus (its size, character count and preview)',
        parameters: [corpusIdParam],
        responses: {
          '200': ok('the corpus', 'CorpusView', corpusExample),
          '400': problem(400, 'a malformed id (named)'),
          '404': problem(404, 'no corpus with this id'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
      delete: {
        tags: ['corpora'],
        summary: 'Delete a corpus',
        description: 'Refused (409) while a queued or running job names it; finished jobs keep their models (checkpoints hold the vocabulary).',
        parameters: [corpusIdParam],
        responses: {
          '200': ok('deleted: the corpus as it was', 'CorpusView', corpusExample),
          '400': problem(400, 'a malformed id (named)'),
          '404': problem(404, 'no corpus with this id'),
          '409': problem(409, 'a queued or running job uses it (their ids are named)'),
          ...ctx.authFailures,
          ...ctx.api,
        },
      },
    },
  }),
};
