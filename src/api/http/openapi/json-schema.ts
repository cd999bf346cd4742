// zod → JSON Schema for the OpenAPI document (z.toJSONSchema). A response schema's fields are
// described on the zod schema itself (.describe(), which z.toJSONSchema carries into the output);
// request schemas owned by the layers below (the job spec, the experiment request) are described
// here, by dotted path, so those layers need not know the HTTP document.
import { z } from 'zod';

export type JsonObject = Record<string, unknown>;

/** `s` as JSON Schema (draft 2020-12, as OpenAPI 3.1 takes it), without the `$schema` key. */
export function jsonSchema(s: z.ZodType, io: 'input' | 'output' = 'output'): JsonObject {
  const { $schema, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as JsonObject;
  void $schema;
  return rest;
}

/** A reference to one of the document's component schemas. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * Sets `description` on every property of a JSON schema from `docs` (by dotted path; array items
 * and union branches add nothing to the path), recursively. A description the zod schema already
 * carries is kept.
 */
export function describeFields(s: unknown, docs: Record<string, string>, path = ''): void {
  if (!s || typeof s !== 'object') return;
  const o = s as JsonObject;
  const props = o.properties as Record<string, JsonObject> | undefined;
  for (const [name, sub] of Object.entries(props ?? {})) {
    const p = path ? `${path}.${name}` : name;
    if (docs[p] && !sub.description) sub.description = docs[p];
    describeFields(sub, docs, p);
  }
  if (o.items) describeFields(o.items, docs, path);
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) for (const b of (o[k] as unknown[] | undefined) ?? []) describeFields(b, docs, path);
}
