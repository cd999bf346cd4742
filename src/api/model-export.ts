// A job's model as files to send, the one code path of HTTP (GET /v1/jobs/:id/model…) and gRPC
// (ExportModel): the service builds the export from the job's latest checkpoint (NotFoundError,
// FailedPreconditionError when it has none), and each file gets its content type and the name a
// download is saved under.
import { FailedPreconditionError } from '../jobs/errors.js';
import type { JobService } from '../jobs/types.js';
import type { Caller } from '../jobs/owners.js';
import type { ExportFormat } from '../train/export.js';

const EXTENSIONS: Record<ExportFormat, string> = { safetensors: 'safetensors', onnx: 'onnx', checkpoint: 'ckpt', tfjs: '' };

export interface ExportedFile {
  /** As the export names it: model.safetensors, model.onnx, model.ckpt, model.json, weights.bin. */
  name: string;
  contentType: string;
  /** The name to save it under: `<job id>-epoch<N>.<ext>`; tfjs files keep their own names (model.json refers to weights.bin). */
  filename: string;
  data: Buffer;
}

export interface JobModelExport {
  format: ExportFormat;
  epoch: number;
  files: ExportedFile[];
}

export async function jobModelExport(service: JobService, id: string, format: ExportFormat, as?: Caller): Promise<JobModelExport> {
  if (!service.exportModel) throw new FailedPreconditionError('this service does not export models');
  const out = await service.exportModel(id, format, { as });
  return {
    format,
    epoch: out.epoch,
    files: out.files.map((f) => ({
      name: f.name,
      contentType: f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      filename: format === 'tfjs' ? f.name : `${id}-epoch${out.epoch}.${EXTENSIONS[format]}`,
      data: f.data,
    })),
  };
}
