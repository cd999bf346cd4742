// Parameters shared by the routes: the job id in /v1/jobs/{id}/… paths (its example is the job of
// every example answer), and query parameters from the zod schemas the routes parse them with.
import type { z } from 'zod';
import { type JsonObject, jsonSchema } from './json-schema.js';

/** The example job's id (all the example answers show this job). */
export const JOB_ID = 'j0mabc12de3f4g5h6i7k';

export const jobIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'the job id, as POST /v1/jobs answered it',
  schema: { type: 'string', pattern: '^j[0-9a-z]{19}$' },
  example: JOB_ID,
};

/**
 * Query parameters of an object schema, as OpenAPI parameter objects: each field's `.describe()`
 * text becomes the parameter's description (the parameter, not its schema, carries it).
 */
export function queryParams(s: z.ZodObject): JsonObject[] {
  const js = jsonSchema(s, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, { description, ...sch }]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    description,
    schema: sch,
  }));
}
