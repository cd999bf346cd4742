// The GPU check's Node side (bench/gpu/check.sh runs it on a GPU machine, bundled into one file by
// bench/gpu/pack.sh): the CUDA engine against the CPU engine (gradients and updates), both kinds
// trained for the d2l recipe's 500 epochs, several jobs on one GPU at once, and one table with
// PyTorch's figures (measured by check.sh just before, passed as JSON files).
//
//   node check.mjs [--epochs 500] [--concurrency 1,4,8] [--concurrency-epochs 50] [--torch a.json,b.json]
//                  [--out results.json] [--recurrence steps,persistent] [--cpu]
// Without a GPU it says so and exits 3; --cpu runs every part with the CPU engine in the GPU's place
// (a dry run of the script itself: `npx tsx bench/gpu/check.ts --cpu --epochs 3 --concurrency 1,2
// --concurrency-epochs 1`).
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import type { ModelConfig, Weights } from '../../src/model/engine.js';
import { loadNativeEngine, NativeLstmModel, type NativeEngineFactory } from '../../src/model/native/index.js';
import { initParams } from '../../src/model/params.js';
import { Rng } from '../../src/text/rng.js';
import type { Batch } from '../../src/text/data.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { Trainer, type EpochEvent } from '../../src/train/trainer.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const EPOCHS = Number(arg('epochs', '500'));
const CONCURRENCY = arg('concurrency', '1,4,8').split(',').map(Number);
const CONCURRENCY_EPOCHS = Number(arg('concurrency-epochs', '50'));
const TORCH = arg('torch', '')
  .split(',')
  .filter((f) => f && existsSync(f));
const OUT = arg('out', '');
const MODES = arg('recurrence', 'steps,persistent').split(',');
/** The device under test: the GPU, or the CPU for a dry run of this script. */
const TESTED: 'cpu' | 'cuda' = process.argv.includes('--cpu') ? 'cpu' : 'cuda';

function engine(device: 'cpu' | 'cuda'): NativeEngineFactory {
  const r = loadNativeEngine({ device });
  if ('error' in r) throw new Error(r.error);
  return r.factory;
}

const log = (s: string) => console.log(s);
const results: Record<string, unknown> = { host: os.hostname(), cpus: os.cpus().length, node: process.version };

// ---------------------------------------------------------------------------------------------
// 1. gradient check: CUDA vs CPU engine, same weights and minibatches

function weights(config: ModelConfig, seed: number): Weights {
  const w = initParams(config, new Rng(seed));
  const rng = new Rng(seed + 1);
  const a = 2 / Math.sqrt(config.numHiddens);
  for (const t of Object.values(w)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.uniform(-a, a);
  return w;
}

function batches(V: number, B: number, T: number, count: number, seed: number): Batch[] {
  const rng = new Rng(seed);
  const rowLen = T * count + 1;
  const rows = Array.from({ length: B }, () => Array.from({ length: rowLen }, () => rng.randint(0, V - 1)));
  return Array.from({ length: count }, (_, k) => {
    const X = new Int32Array(B * T);
    const Y = new Int32Array(B * T);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        X[b * T + t] = rows[b][k * T + t];
        Y[b * T + t] = rows[b][k * T + t + 1];
      }
    return { X, Y, batchSize: B, numSteps: T };
  });
}

function rel(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}

async function gradientCheck(): Promise<{ name: string; worst: number; ok: boolean; path: string }[]> {
  const cases: { name: string; config: ModelConfig; B: number; T: number }[] = [
    { name: 'scratch d2l', config: { kind: 'scratch', vocabSize: 28, numHiddens: 256, numLayers: 1 }, B: 32, T: 35 },
    { name: 'concise d2l', config: { kind: 'concise', vocabSize: 28, numHiddens: 256, numLayers: 1 }, B: 32, T: 35 },
    { name: 'concise 3 layers, odd sizes', config: { kind: 'concise', vocabSize: 13, numHiddens: 37, numLayers: 3 }, B: 5, T: 9 },
    { name: 'concise 4×1024, batch 64', config: { kind: 'concise', vocabSize: 60, numHiddens: 1024, numLayers: 4 }, B: 64, T: 10 },
    { name: 'scratch batch 512', config: { kind: 'scratch', vocabSize: 28, numHiddens: 128, numLayers: 1 }, B: 512, T: 12 },
  ];
  const out = [];
  for (const c of cases) {
    const w = weights(c.config, 7);
    const gpu = await engine(TESTED).createModel(c.config, w);
    const cpu = await engine('cpu').createModel(c.config, w);
    let worst = 0;
    let path = '?';
    try {
      const bs = batches(c.config.vocabSize, c.B, c.T, 4, 8);
      for (let k = 0; k < 3; k++) {
        const x = await gpu.trainStep(bs[k], { lr: 1, clipTheta: 1, resetState: k === 0 });
        const y = await cpu.trainStep(bs[k], { lr: 1, clipTheta: 1, resetState: k === 0 });
        worst = Math.max(worst, Math.abs(x.loss - y.loss) / Math.abs(y.loss), Math.abs(x.gradNorm - y.gradNorm) / Math.abs(y.gradNorm));
      }
      const g = await gpu.lossAndGrads(bs[3], { resetState: false });
      const h = await cpu.lossAndGrads(bs[3], { resetState: false });
      for (const name of Object.keys(h.grads)) worst = Math.max(worst, rel(g.grads[name].data, h.grads[name].data));
      const wg = gpu.getWeights();
      const wc = cpu.getWeights();
      for (const name of Object.keys(wc)) worst = Math.max(worst, rel(wg[name].data, wc[name].data));
      if (gpu instanceof NativeLstmModel) path = gpu.path;
    } finally {
      gpu.dispose();
      cpu.dispose();
    }
    out.push({ name: c.name, worst, ok: worst <= 1e-4, path });
    log(`gradient check ${c.name} (ran as ${path}): max rel diff ${worst.toExponential(2)} ${worst <= 1e-4 ? 'ok' : 'FAIL'}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. the d2l recipe, 500 epochs, both kinds

interface RunResult {
  kind: string;
  path: string;
  epochs: number;
  perplexity: number;
  tokensPerSec: number;
  trainSeconds: number;
  wallSeconds: number;
  sample: string;
}

async function d2lRun(kind: 'scratch' | 'concise', epochs: number, quiet = false): Promise<RunResult> {
  const spec = parseJobSpec({ model: { kind }, train: { epochs, seed: 1 } });
  const trainer = await Trainer.create(spec, engine(TESTED));
  const t0 = performance.now();
  let last: EpochEvent | undefined;
  let path = '?';
  try {
    for await (const e of trainer.run()) {
      last = e;
      if (!quiet && (e.epoch % 100 === 0 || e.epoch === 1))
        log(`  ${kind} epoch ${e.epoch}: perplexity ${e.perplexity.toFixed(3)}, ${Math.round(e.tokensPerSec)} tokens/s`);
    }
    if (trainer.model instanceof NativeLstmModel) path = trainer.model.path;
  } finally {
    trainer.dispose();
  }
  const wall = (performance.now() - t0) / 1000;
  if (!last) throw new Error('no epoch ran');
  // tokens/s over the whole run = tokens trained / training time (prediction excluded, as d2l)
  const tokensPerEpoch = epochTokens(spec);
  const trainSeconds = last.elapsedMs / 1000;
  return {
    kind,
    path,
    epochs,
    perplexity: last.perplexity,
    tokensPerSec: (tokensPerEpoch * epochs) / trainSeconds,
    trainSeconds,
    wallSeconds: wall,
    sample: last.samples?.[0]?.text ?? '',
  };
}

/** Tokens per epoch of sequential partitioning (the mean over the random offsets 0 … numSteps). */
function epochTokens(spec: ReturnType<typeof parseJobSpec>): number {
  const { batchSize: B, numSteps: T } = spec.data;
  const n = spec.data.maxTokens ?? 0;
  let sum = 0;
  for (let offset = 0; offset <= T; offset++) {
    const rowLen = Math.floor((n - offset - 1) / B);
    sum += Math.floor(rowLen / T) * B * T;
  }
  return sum / (T + 1);
}

// ---------------------------------------------------------------------------------------------
// 3. several jobs on one GPU

async function concurrent(n: number, epochs: number): Promise<{ jobs: number; totalTokensPerSec: number; wallSeconds: number }> {
  const spec = parseJobSpec({ model: { kind: 'concise' }, train: { epochs, seed: 2 }, report: { prefixes: [] } });
  const trainers = await Promise.all(Array.from({ length: n }, () => Trainer.create(spec, engine(TESTED))));
  const t0 = performance.now();
  try {
    await Promise.all(
      trainers.map(async (t) => {
        for await (const _ of t.run()) void _;
      }),
    );
  } finally {
    for (const t of trainers) t.dispose();
  }
  const wall = (performance.now() - t0) / 1000;
  return { jobs: n, totalTokensPerSec: (n * epochs * epochTokens(spec)) / wall, wallSeconds: wall };
}

// ---------------------------------------------------------------------------------------------

interface TorchResult {
  kind: string;
  tokensPerSec: number;
  perplexity: number;
  epochs: number;
  deviceName?: string;
  torch?: string;
  cudnn?: number;
}

async function main(): Promise<void> {
  const cpu = engine('cpu');
  const info = cpu.info();
  results.cuda = info.cuda;
  log(
    `addon: CUDA built ${info.cuda.built}, devices ${info.cuda.devices}${info.cuda.name ? `, ${info.cuda.name} (sm ${info.cuda.capability})` : ''}${info.cuda.error ? `, ${info.cuda.error}` : ''}; CPU BLAS ${info.blasCorename}, ${info.defaultThreads} threads`,
  );
  if (info.cuda.devices === 0 && TESTED === 'cuda') {
    log('no GPU: nothing more to check here');
    process.exitCode = 3;
    return;
  }
  // both recurrences of the CUDA engine: per-step kernels (default) and persistent kernels
  const grads: { mode: string; name: string; worst: number; ok: boolean }[] = [];
  const runs: (RunResult & { mode: string })[] = [];
  const conc: { mode: string; jobs: number; totalTokensPerSec: number; wallSeconds: number }[] = [];
  for (const mode of MODES) {
    process.env.LSTM_CUDA_RECURRENT = mode;
    log(`== recurrence: ${mode}`);
    for (const g of await gradientCheck()) grads.push({ mode, ...g });
    // warm-up (CUDA context, graph capture) then the measured runs
    await d2lRun('concise', 2, true);
    for (const kind of ['scratch', 'concise'] as const) {
      log(`d2l recipe, ${kind}, ${EPOCHS} epochs:`);
      const r = await d2lRun(kind, EPOCHS);
      log(`  ran as ${r.path}: perplexity ${r.perplexity.toFixed(3)}, ${Math.round(r.tokensPerSec)} tokens/s, ${r.trainSeconds.toFixed(2)} s training`);
      runs.push({ mode, ...r });
    }
    for (const n of CONCURRENCY) {
      const r = await concurrent(n, CONCURRENCY_EPOCHS);
      log(`${n} concurrent concise jobs × ${CONCURRENCY_EPOCHS} epochs: ${Math.round(r.totalTokensPerSec)} tokens/s total, ${r.wallSeconds.toFixed(1)} s`);
      conc.push({ mode, ...r });
    }
  }
  results.gradientCheck = grads;
  results.runs = runs;
  results.concurrency = conc;
  // A failed PyTorch run leaves an empty or partial file: the table then shows "—" for it rather
  // than losing everything this check measured.
  const torch = TORCH.flatMap((f) => {
    try {
      return [JSON.parse(readFileSync(f, 'utf8').trim().split('\n').pop() ?? '') as TorchResult];
    } catch (e) {
      log(`PyTorch reference ${f} unreadable (${(e as Error).message}): left out of the table`);
      return [];
    }
  });
  results.torch = torch;

  // the table
  const lines: string[] = [];
  lines.push('');
  lines.push(
    `GPU: ${info.cuda.name} (sm ${info.cuda.capability}), driver ${info.cuda.driverVersion}, runtime ${info.cuda.runtimeVersion}; PyTorch ${torch[0]?.torch ?? '?'} cuDNN ${torch[0]?.cudnn ?? '?'}`,
  );
  for (const mode of MODES) {
    lines.push(
      `gradient check, ${mode} (CUDA vs CPU engine, 3 clipped SGD steps + raw gradients, max rel diff): ${grads
        .filter((g) => g.mode === mode)
        .map((g) => `${g.name} ${g.worst.toExponential(1)}${g.ok ? '' : ' FAIL'}`)
        .join('; ')}`,
    );
  }
  lines.push(
    '| kind | recurrence (ran as) | epochs | ours tokens/s | PyTorch tokens/s (epochs) | ratio | ours final ppl | PyTorch ppl | ours train s | sample |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of runs) {
    const t = torch.find((x) => x.kind === r.kind);
    lines.push(
      `| ${r.kind} | ${r.mode} (${r.path}) | ${r.epochs} | ${Math.round(r.tokensPerSec)} | ${t ? `${Math.round(t.tokensPerSec)} (${t.epochs})` : '—'} | ${t ? `${(r.tokensPerSec / t.tokensPerSec).toFixed(2)}×` : '—'} | ${r.perplexity.toFixed(3)} | ${t ? t.perplexity.toFixed(3) : '—'} | ${r.trainSeconds.toFixed(2)} | ${JSON.stringify(r.sample)} |`,
    );
  }
  for (const mode of MODES) {
    lines.push(
      `concurrent concise jobs (${CONCURRENCY_EPOCHS} epochs each), ${mode}, total tokens/s: ${conc
        .filter((c) => c.mode === mode)
        .map((c) => `${c.jobs}: ${Math.round(c.totalTokensPerSec)}`)
        .join(', ')}`,
    );
  }
  for (const l of lines) log(l);
  if (OUT) writeFileSync(OUT, JSON.stringify(results, null, 2));
  if (grads.some((g) => !g.ok)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`gpu check failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 2;
});
