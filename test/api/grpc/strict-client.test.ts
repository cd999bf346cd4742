// Server reflection through a strict, independent client: Python's grpcio and protobuf (Debian's
// python3-grpcio and python3-protobuf), driven by strict_reflection_client.py, which has no .proto
// file and learns every message from the reflection service. Its DescriptorPool validates each
// reflected file as protoc would (map entries, oneofs, proto3 optional): a descriptor grpc-js
// tolerates but grpcurl or Python reject fails here. The server is the real one: startGrpcServer
// over the Redis-backed JobService, with a worker process training the job it submits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startGrpcServer, type GrpcServer } from '../../../src/api/grpc/index.js';
import { loadConfig } from '../../../src/jobs/config.js';
import { RedisJobService } from '../../../src/jobs/service.js';
import { REDIS_URL, ROOT, WorkerProcess, redisReachable, deletePrefix } from '../../support/processes.js';
import { KeyRing } from '../../../src/jobs/owners.js';

const run = promisify(execFile);
/** Debian's interpreter, whatever python3 comes first on PATH (a venv has no python3-grpcio). */
const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(ROOT, 'test/api/grpc/strict_reflection_client.py');
const KEY = 'strict-client-key-5e1';

async function pythonMissing(): Promise<string | false> {
  try {
    await run(PYTHON, ['-c', 'import grpc, google.protobuf.descriptor_pool']);
    return false;
  } catch (e) {
    const why = String((e as { stderr?: string }).stderr || (e as Error).message)
      .trim()
      .split('\n')
      .at(-1);
    return `${PYTHON} with grpc and protobuf is needed (apt-get install python3-grpcio python3-protobuf): ${why}`;
  }
}

const skip = (await pythonMissing()) || ((await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`);

/** Runs the Python client's steps; one parsed JSON object per step. Throws with its stderr on failure. */
async function strict(port: number, ...steps: string[]): Promise<any[]> {
  try {
    const { stdout } = await run(PYTHON, [CLIENT, `127.0.0.1:${port}`, ...steps], { timeout: 120_000, maxBuffer: 16 << 20 });
    return stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`strict client failed: ${err.stderr?.trim() || err.message}\n${err.stdout ?? ''}`);
  }
}

/** `optional` fields of the service's .proto, as Message.field. */
function optionalFieldsOfProto(): string[] {
  const src = readFileSync(path.join(ROOT, 'proto/lstm_trainer/v1/lstm_trainer.proto'), 'utf8');
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of src.split('\n')) {
    const msg = /^\s*message\s+(\w+)\s*\{/.exec(line);
    if (msg) stack.push(msg[1]);
    const opt = /^\s*optional\s+[\w.]+\s+(\w+)\s*=/.exec(line);
    if (opt) out.push(`${stack.at(-1)}.${opt[1]}`);
    if (/^\s*}/.test(line) && !/^\s*message/.test(line)) stack.pop();
  }
  return out.sort();
}

describe('reflection through a strict Python client (grpcio + protobuf, no .proto)', { skip }, () => {
  const prefix = `grpcstrict-${process.pid}-${Date.now().toString(36)}`;
  const env = { ...process.env, REDIS_URL, QUEUE_PREFIX: prefix, CHECKPOINT_EVERY: '5', API_KEYS: '' };
  let service: RedisJobService;
  let open: GrpcServer;
  let authed: GrpcServer;
  let worker: WorkerProcess | undefined;

  before(async () => {
    service = new RedisJobService({ config: loadConfig(env) });
    [open, authed, worker] = await Promise.all([
      startGrpcServer({ service, host: '127.0.0.1', port: 0 }),
      // an admin key: the jobs it lists were submitted with keys off (no owner: admins see them)
      startGrpcServer({ service, host: '127.0.0.1', port: 0, apiKeys: [KEY], keyRing: new KeyRing([{ key: KEY, admin: true }]) }),
      WorkerProcess.start(env, { readyTimeoutMs: 60_000 }),
    ]);
  });

  after(async () => {
    await worker?.stop(10_000);
    await Promise.allSettled([open?.close(), authed?.close()]);
    await service?.close();
    await deletePrefix(prefix);
  });

  test("lists every service, and each one's file passes a strict DescriptorPool, in protoc's shape", async () => {
    const [list, { describe: d }] = await strict(open.port, 'list', 'describe');
    assert.deepEqual(list.services.sort(), [
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'lstm_trainer.v1.LstmTrainer',
    ]);
    const trainer = d['lstm_trainer.v1.LstmTrainer'];
    assert.equal(trainer.file, 'lstm_trainer/v1/lstm_trainer.proto', 'the file under its path in proto/');
    assert.deepEqual(trainer.dependencies, [], 'self-contained');
    assert.deepEqual(trainer.methods, [
      'SubmitJob',
      'GetJob',
      'ListJobs',
      'CancelJob',
      'WatchJob',
      'Generate',
      'GenerateStream',
      'ExportModel',
      'UploadModel',
      'GetModel',
      'DeleteModel',
      'ListModels',
      'DeleteJob',
      'UploadCorpus',
      'ListCorpora',
      'GetCorpus',
      'DeleteCorpus',
      'CreateExperiment',
      'GetExperiment',
    ]);
    assert.deepEqual(trainer.proto3Optional, optionalFieldsOfProto(), 'every proto3 optional field is flagged as one');
    assert.deepEqual(trainer.mapEntries, ['ValuesEntry'], "ExperimentRow.values' entry has protoc's name");
    const health = d['grpc.health.v1.Health'];
    assert.equal(health.file, 'grpc/health/v1/health.proto');
    assert.deepEqual(health.mapEntries, ['StatusesEntry'], "the map's entry has protoc's name");
    assert.deepEqual(d['grpc.reflection.v1.ServerReflection'].methods, ['ServerReflectionInfo']);
  });

  test('Health/Check, SubmitJob and WatchJob called with reflected descriptors only', async () => {
    const spec = {
      model: { kind: 'MODEL_KIND_SCRATCH', numHiddens: 16 },
      data: { maxTokens: 2000, batchSize: 8, numSteps: 10 },
      train: { epochs: 6, seed: 7 },
      report: { predictEvery: 3, prefixes: ['time traveller'], numPreds: 0 },
      name: 'strict-python',
    };
    const [whole, trainer, submitted] = await strict(
      open.port,
      'call',
      'grpc.health.v1.Health/Check',
      '{}',
      'call',
      'grpc.health.v1.Health/Check',
      '{"service": "lstm_trainer.v1.LstmTrainer"}',
      'call',
      'lstm_trainer.v1.LstmTrainer/SubmitJob',
      JSON.stringify({ spec }),
    );
    assert.deepEqual(whole.response, { status: 'SERVING' });
    assert.deepEqual(trainer.response, { status: 'SERVING' });
    const job = submitted.response.job;
    assert.equal(submitted.response.created, true);
    assert.equal(job.name, 'strict-python');
    assert.equal(job.state, 'JOB_STATE_QUEUED');
    assert.equal(job.spec.model.numHiddens, 16);
    assert.equal(job.spec.report.numPreds, 0, 'an explicit 0 keeps its presence (proto3 optional)');
    assert.ok(job.estimate.teraflops > 0);

    const [watched] = await strict(open.port, 'stream', 'lstm_trainer.v1.LstmTrainer/WatchJob', JSON.stringify({ jobId: job.id }), '0');
    assert.equal(watched.error, undefined, JSON.stringify(watched.error));
    const events = watched.responses as any[];
    assert.deepEqual(
      events.map((e) => Number(e.seq)),
      events.map((_, i) => i + 1),
      'seq 1, 2, 3, ...',
    );
    assert.deepEqual(
      events.filter((e) => e.epoch).map((e) => e.epoch.epoch),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(events.at(-1).state.state, 'JOB_STATE_SUCCEEDED');
    assert.equal(events.at(-1).state.summary.epochs, 6);

    // resuming from a seq through the same reflected descriptors
    const from = events.length - 2;
    const [resumed] = await strict(open.port, 'stream', 'lstm_trainer.v1.LstmTrainer/WatchJob', JSON.stringify({ jobId: job.id, fromSeq: from }), '0');
    assert.deepEqual(
      resumed.responses.map((e: any) => Number(e.seq)),
      [from + 1, from + 2],
    );
  });

  test('with API keys: reflection and calls need the key, health does not', async () => {
    const [noKey] = await strict(authed.port, 'call', 'lstm_trainer.v1.LstmTrainer/ListJobs', '{}').catch((e: Error) => [{ failed: e.message }]);
    assert.match(noKey.failed, /UNAUTHENTICATED|Unauthenticated/, 'reflection without the key is refused');
    const [list, health, jobs] = await strict(
      authed.port,
      '--metadata',
      `authorization=Bearer ${KEY}`,
      'list',
      'call',
      'grpc.health.v1.Health/Check',
      '{}',
      'call',
      'lstm_trainer.v1.LstmTrainer/ListJobs',
      '{"pageSize": 5}',
    );
    assert.ok(list.services.includes('lstm_trainer.v1.LstmTrainer'));
    assert.deepEqual(health.response, { status: 'SERVING' });
    assert.deepEqual(
      jobs.response.jobs.map((j: any) => j.name),
      ['strict-python'],
    );
  });

  // last: the worker trains this experiment's jobs, which the listing above must not see
  test('CreateExperiment and GetExperiment with reflected descriptors: the grid in proto3 JSON, the table back', async () => {
    const request = {
      name: 'strict-sweep',
      base: { model: { numHiddens: 8 }, data: { maxTokens: 2000, batchSize: 8, numSteps: 10 }, train: { epochs: 1 } },
      grid: [
        { path: 'train.lr', values: [{ numberValue: 0.5 }, { numberValue: 2 }] },
        { path: 'model.kind', values: [{ stringValue: 'scratch' }] },
      ],
    };
    const bad = { grid: [{ path: 'train.clip_theta', values: [{ numberValue: 1 }] }] };
    const [created, refused] = await strict(
      open.port,
      'call',
      'lstm_trainer.v1.LstmTrainer/CreateExperiment',
      JSON.stringify(request),
      'call',
      'lstm_trainer.v1.LstmTrainer/CreateExperiment',
      JSON.stringify(bad),
    );
    const exp = created.response;
    assert.deepEqual(exp.varied, ['train.lr']);
    assert.deepEqual(
      exp.jobs.map((r: any) => [r.name, r.values]),
      [
        ['strict-sweep lr=0.5', { 'train.lr': { numberValue: 0.5 } }],
        ['strict-sweep lr=2', { 'train.lr': { numberValue: 2 } }],
      ],
    );
    assert.equal(refused.error.code, 'INVALID_ARGUMENT');
    assert.match(refused.error.details, /grid\.train\.clip_theta/);
    const [got] = await strict(open.port, 'call', 'lstm_trainer.v1.LstmTrainer/GetExperiment', JSON.stringify({ experimentId: exp.id }));
    assert.deepEqual(
      got.response.jobs.map((r: any) => r.id),
      exp.jobs.map((r: any) => r.id),
    );
  });
});
