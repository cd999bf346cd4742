// lstm-trainer model upload FILE | list | get ID | delete ID: uploaded models of a running service
// (POST/GET/DELETE /v1/models; docs/export.md, "Models in"). A job starts from one with
// `submit --init-model ID` (or from another job's checkpoint with `--init-job ID`).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ModelView } from '../jobs/types.js';
import type { ClientOptions } from './client-commands.js';
import { UserError } from './errors.js';
import { int } from './options.js';
import { addServiceOptions, serviceRequest } from './service-request.js';

/** One line saying what a model is: `concise, 1 layer × 256 hidden units, vocabulary 28, epoch 500 (perplexity 1.05)`. */
export function describeModel(m: ModelView): string {
  let s = `${m.kind}, ${m.numLayers} layer${m.numLayers === 1 ? '' : 's'} × ${m.numHiddens} hidden units, vocabulary ${m.vocabSize}`;
  if (m.epoch !== undefined) s += `, epoch ${m.epoch}`;
  if (m.perplexity !== undefined) s += ` (perplexity ${m.perplexity.toFixed(3)})`;
  return `${s}, ${m.bytes} bytes`;
}

async function uploadCommand(file: string, o: ClientOptions & { json?: boolean }): Promise<void> {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new UserError(`${file}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // the file whole (at most 64 MiB, the server's limit): the server validates it before storing anything
  const { status, body: m } = await serviceRequest<ModelView>(o, '/v1/models', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  if (o.json) return void console.log(JSON.stringify(m));
  console.error(`lstm-trainer: model ${status === 201 ? 'uploaded' : 'already there'}: ${describeModel(m)}`);
  console.log(m.id); // stdout: the id alone, for scripts (submit --init-model "$(lstm-trainer model upload m.safetensors)")
}

async function listCommand(o: ClientOptions & { limit?: number; json?: boolean }): Promise<void> {
  const { body } = await serviceRequest<{ models: ModelView[] }>(o, `/v1/models?limit=${o.limit ?? 20}`);
  if (o.json) return void console.log(JSON.stringify(body));
  if (body.models.length === 0) return void console.log('no models');
  for (const m of body.models) console.log(`${m.id}  ${m.uploadedAt.replace(/\.\d+Z$/, 'Z')}  ${describeModel(m)}`);
}

async function getCommand(id: string, o: ClientOptions): Promise<void> {
  const { body } = await serviceRequest<ModelView>(o, `/v1/models/${encodeURIComponent(id)}`);
  console.log(JSON.stringify(body, null, 2));
}

async function deleteCommand(id: string, o: ClientOptions): Promise<void> {
  await serviceRequest(o, `/v1/models/${encodeURIComponent(id)}`, { method: 'DELETE' });
  console.error(`lstm-trainer: model ${id} deleted`);
}

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('uploaded models of a running service (start a job from one with submit --init-model ID)');
  addServiceOptions(
    model.command('upload <file>').description("upload a safetensors state dict (the export's layout, e.g. a PyTorch-trained d2l model); prints its id"),
  )
    .option('--json', 'print the model as JSON')
    .action(uploadCommand);
  addServiceOptions(model.command('list').description('the uploaded models, newest first'))
    .option('--limit <n>', 'at most this many (1–100, default 20)', int('--limit'))
    .option('--json', 'print JSON')
    .action(listCommand);
  addServiceOptions(model.command('get <modelId>').description('a model as JSON (kind, sizes, vocabulary, epoch)')).action(getCommand);
  addServiceOptions(
    model.command('delete <modelId>').description('delete an uploaded model (jobs already submitted from it keep their copy of its weights)'),
  ).action(deleteCommand);
}
