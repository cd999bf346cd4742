// Query/parameter schemas of the HTTP routes (the request bodies' schemas are shared with gRPC:
// train/spec.ts and api/schemas.ts). Each field's .describe() is its parameter's description in
// the OpenAPI document.
import { z } from 'zod';

const seqNumber = (name: string) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int({ error: `${name} must be an integer` })
    .min(0, { error: `${name} must be ≥ 0` })
    .max(Number.MAX_SAFE_INTEGER, { error: `${name} is too large` });

/** GET /v1/jobs/:id/epochs: epochs > after, at most `limit` (1–1000, default 100) per page. */
export const EPOCHS_PAGE = { default: 100, max: 1000 } as const;
export const EpochsQuery = z
  .object({
    after: seqNumber('after').default(0).describe('epochs > after (0: from the first)'),
    limit: z.coerce
      .number({ error: 'limit must be a number' })
      .int({ error: 'limit must be an integer' })
      .min(1, { error: 'limit must be ≥ 1' })
      .max(EPOCHS_PAGE.max, { error: `limit must be ≤ ${EPOCHS_PAGE.max}` })
      .default(EPOCHS_PAGE.default)
      .describe('page size'),
  })
  .strict();

/** `fromSeq`: resume after this sequence number (as the Last-Event-ID header does). */
export const EventsQuery = z
  .object({ fromSeq: seqNumber('fromSeq').optional().describe('events with seq > fromSeq (as Last-Event-ID; the larger of the two wins)') })
  .strict();

export const LastEventId = seqNumber('Last-Event-ID');

/** GET /v1/jobs/:id: `include=corpus` adds a custom corpus text (left out by default: it can be 2 MB). */
export const JobQuery = z
  .object({
    include: z.enum(['corpus'], { error: "include must be 'corpus'" }).optional().describe('"corpus": include a custom corpus text in spec.data.corpus'),
  })
  .strict();

/** GET /v1/jobs/:id/model: the file format (tfjs has its own URLs: /model/model.json, /model/weights.bin). */
export const ModelQuery = z
  .object({
    format: z
      .enum(['safetensors', 'onnx', 'checkpoint'], { error: "format must be 'safetensors', 'onnx' or 'checkpoint' (tfjs: GET /v1/jobs/{id}/model/model.json)" })
      .default('safetensors')
      .describe("safetensors (the PyTorch state dict, default), onnx, or checkpoint (this service's own file); for tfjs use /model/model.json"),
  })
  .strict();
