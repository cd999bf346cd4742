// lstm-trainer corpus upload FILE | list | delete ID: uploaded corpora of a running service
// (POST/GET/DELETE /v1/corpora). An upload streams the file; the service checks it (UTF-8, size).
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { ClientOptions } from './client-commands.js';
import { UserError } from './errors.js';
import { addServiceOptions, serviceRequest } from './service-request.js';

interface CorpusView {
  id: string;
  bytes: number;
  characters: number;
  preview: string;
  createdAt: string;
  created?: boolean;
}

const oneLine = (s: string) => s.replace(/\s+/g, ' ').slice(0, 60);

async function uploadCommand(file: string, o: ClientOptions & { json?: boolean }): Promise<void> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new UserError(`${file}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const body = Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>;
  const { body: c } = await serviceRequest<CorpusView>(o, '/v1/corpora', {
    method: 'POST',
    headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(size) },
    body,
    duplex: 'half',
  } as RequestInit);
  if (o.json) return void console.log(JSON.stringify(c));
  console.error(`lstm-trainer: corpus ${c!.created ? 'uploaded' : 'already there'}: ${c!.bytes} bytes, ${c!.characters} characters, "${oneLine(c!.preview)}…"`);
  console.log(c!.id); // stdout: the id alone, for scripts (submit --corpus-id "$(lstm-trainer corpus upload f.txt)")
}

async function listCommand(o: ClientOptions & { json?: boolean }): Promise<void> {
  const { body: r } = await serviceRequest<{ corpora: CorpusView[] }>(o, '/v1/corpora');
  if (o.json) return void console.log(JSON.stringify(r));
  for (const c of r!.corpora) console.log(`${c.id}  ${String(c.bytes).padStart(10)} bytes  ${c.createdAt}  ${oneLine(c.preview)}`);
}

async function deleteCommand(id: string, o: ClientOptions): Promise<void> {
  await serviceRequest(o, `/v1/corpora/${encodeURIComponent(id)}`, { method: 'DELETE' });
  console.error(`lstm-trainer: corpus ${id} deleted`);
}

export function registerCorpusCommands(program: Command): void {
  const corpus = program.command('corpus').description('uploaded corpora of a running service (train on them with submit --corpus-id ID)');
  addServiceOptions(corpus.command('upload <file>').description('upload a UTF-8 text file; prints its id (the SHA-256 of its bytes)'))
    .option('--json', 'print the corpus as JSON')
    .action(uploadCommand);
  addServiceOptions(corpus.command('list').description('the uploaded corpora, newest first')).option('--json', 'print JSON').action(listCommand);
  addServiceOptions(corpus.command('delete <id>').description('delete a corpus (refused while a queued or running job uses it)')).action(deleteCommand);
}
