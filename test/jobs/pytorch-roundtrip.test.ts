// The PyTorch round trip: Debian's python3-torch trains the seed's concise model (d2l's RNNModel:
// nn.LSTM + nn.Linear, train_ch8 on The Time Machine) for a few epochs and saves its state dict as
// safetensors (test/support/pytorch_train_concise.py); we upload it (POST /v1/models), generate
// from it with our engine — the same greedy text as PyTorch's —, and continue training it as a job
// (init.model), whose first epoch's perplexity is close to PyTorch's last. The figures are printed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { selectEngine } from '../../src/model/engines.js';
import { Vocab, TIME_MACHINE_PATH } from '../../src/text/corpus.js';
import { readInitModel } from '../../src/train/import.js';
import { predict } from '../../src/train/predict.js';
import type { JobEvent } from '../../src/jobs/types.js';
import { redisReachable, REDIS_URL, ROOT } from '../support/processes.js';
import { WorkerProcess, deletePrefix, startTestApi, streamEvents, testEnv, type TestApi } from '../support/service.js';

const noRedis = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;
const noTorch =
  spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0
    ? false
    : "Debian's python3-torch is not installed (apt-get install python3-torch)";
const skip = noRedis || noTorch;

/** Small enough for a shared two-core machine; the recipe is d2l's otherwise (batch 32 × 35, lr 1, θ 1). */
const EPOCHS = 40;
const H = 64;
const MAX_TOKENS = 10000;

interface PyRun {
  perplexities: number[];
  text: string;
  vocab: string[];
  torch: string;
}

const env = testEnv();
let api: TestApi;
let worker: WorkerProcess;
let dir: string;
let file: Buffer;
let py: PyRun;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-roundtrip-'));
  const out = path.join(dir, 'pytorch.safetensors');
  // the API answers in this process meanwhile: no spawnSync
  const started = Date.now();
  py = await new Promise<PyRun>((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [
      path.join(ROOT, 'test/support/pytorch_train_concise.py'),
      TIME_MACHINE_PATH,
      out,
      String(EPOCHS),
      String(H),
      String(MAX_TOKENS),
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout) as PyRun) : reject(new Error(`python exited with ${code}: ${stderr}`))));
  });
  console.log(
    `PyTorch ${py.torch}: ${EPOCHS} epochs of RNNModel(nn.LSTM(28, ${H})) in ${((Date.now() - started) / 1000).toFixed(1)} s; perplexity ${py.perplexities.map((p) => p.toFixed(2)).join(' → ')}`,
  );
  file = readFileSync(out);
  [api, worker] = await Promise.all([startTestApi(env), WorkerProcess.start(env, { readyTimeoutMs: 60_000 })]);
});
after(async () => {
  if (skip) return;
  await worker?.stop();
  await api?.close();
  await deletePrefix(env.QUEUE_PREFIX);
  rmSync(dir, { recursive: true, force: true });
});

test('PyTorch → safetensors → POST /v1/models → the same greedy text → a job continues its curve', { skip, timeout: 900_000 }, async () => {
  // upload: what the file is, read from its tensors and metadata
  const res = await fetch(`${api.url}/v1/models`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(file) });
  const model = (await res.json()) as {
    id: string;
    kind: string;
    numHiddens: number;
    numLayers: number;
    vocabSize: number;
    vocab: string[];
    epoch: number;
    perplexity: number;
  };
  assert.equal(res.status, 201, JSON.stringify(model));
  assert.deepEqual([model.kind, model.numHiddens, model.numLayers, model.vocabSize, model.epoch], ['concise', H, 1, 28, EPOCHS]);
  assert.deepEqual(model.vocab, py.vocab, 'the vocabulary PyTorch built, as d2l builds it');
  assert.equal(model.perplexity, py.perplexities.at(-1));

  // generate from it with our engine: d2l's predict_ch8, greedy
  const engine = await selectEngine(undefined, () => {});
  const init = readInitModel(file, { kind: 'concise', numHiddens: H, numLayers: 1, vocabSize: model.vocabSize });
  const net = await engine.createModel({ kind: 'concise', numHiddens: H, numLayers: 1, vocabSize: model.vocabSize }, init.weights);
  const ours = await predict('time traveller', 50, net, Vocab.fromTokens(init.vocab!));
  net.dispose();
  console.log(`greedy, PyTorch: ${JSON.stringify(py.text)}\ngreedy, ours (${engine.name}): ${JSON.stringify(ours)}`);
  assert.equal(ours, py.text);

  // continue training as a job: its first epoch starts where PyTorch's last ended
  const sub = await fetch(`${api.url}/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: { kind: 'concise', numHiddens: H },
      data: { maxTokens: MAX_TOKENS },
      train: { epochs: 2, seed: 1 },
      report: { predictEvery: 2, prefixes: ['time traveller'] },
      init: { model: model.id },
      name: 'pytorch-continued',
    }),
  });
  const job = (await sub.json()) as { id: string; init: { model: string; epoch: number } };
  assert.equal(sub.status, 201, JSON.stringify(job));
  assert.deepEqual([job.init.model, job.init.epoch], [model.id, EPOCHS]);
  const events = await streamEvents(api.url, job.id, { timeoutMs: 600_000 });
  assert.equal((events.at(-1) as { state?: string }).state, 'succeeded', JSON.stringify(events.at(-1)));
  const ours1 = events.flatMap((e: JobEvent) => (e.type === 'epoch' ? [e.perplexity] : []));
  const last = py.perplexities.at(-1)!;
  console.log(
    `continued as job ${job.id}: epoch 1 perplexity ${ours1[0].toFixed(2)} (PyTorch's epoch ${EPOCHS}: ${last.toFixed(2)}, its epoch 1: ${py.perplexities[0].toFixed(2)}); epoch 2: ${ours1[1].toFixed(2)}`,
  );
  assert.ok(Math.abs(ours1[0] - last) / last < 0.1, `epoch 1 ${ours1[0]} within 10% of PyTorch's last ${last}`);
  assert.ok(ours1[0] < py.perplexities[0] * 0.9, 'well below a fresh start');
});
