// npx tsx bench/side-by-side.ts [--rounds 3] [--steps 60] [--kinds scratch,concise] [--python /usr/bin/python3] [--threads N]
//                                [--native-only] [--profile] [--json]
//
// Native engine vs the PyTorch reference (bench/pytorch_reference.py, spawned as a child process)
// on the d2l default config (V = 28, H = 256, B = 32, T = 35, sequential minibatches of the Time
// Machine, clip 1, SGD lr 1). Each round measures both, alternating which goes first; every
// measurement times `steps` training steps after a short warm-up. Prints tokens/s of each and,
// per kind, the medians and the median of the per-round ratios. A benchmark, not a test: on a
// machine shared with other work the figures move; the load average is printed with them.
// --native-only skips PyTorch; --profile prints where the native step time goes (ms per step and
// phase, from the addon's timers; see docs/native-engine.md).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ModelConfig, ModelKind } from '../src/model/engine.js';
import { loadNativeEngine, NativeLstmModel, type NativeProfile } from '../src/model/native/index.js';
import { initParams } from '../src/model/params.js';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential, type Batch } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '3' },
    kinds: { type: 'string', default: 'scratch,concise' },
    python: { type: 'string', default: '/usr/bin/python3' },
    threads: { type: 'string' },
    hidden: { type: 'string', default: '256' },
    'native-only': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const rounds = Number(args.rounds);
const steps = Number(args.steps);
const warmup = Number(args.warmup);
const H = Number(args.hidden);
const B = 32;
const T = 35;
const kinds = args.kinds.split(',') as ModelKind[];
const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, 'pytorch_reference.py');

const loaded = loadNativeEngine(args.threads ? { threads: Number(args.threads) } : {});
if ('error' in loaded) {
  console.error(`native engine unavailable: ${loaded.error}`);
  process.exit(1);
}
const engine = loaded.factory;
const info = engine.info();
const { tokens, vocab } = loadCorpus('timemachine', 10000);

/** Endless sequential minibatches, epoch after epoch; `first` marks an epoch's first (state reset). */
function* minibatches(): Generator<{ batch: Batch; first: boolean }> {
  const rng = new Rng(0);
  for (;;) {
    let first = true;
    for (const batch of seqDataIterSequential(tokens, B, T, rng)) {
      yield { batch, first };
      first = false;
    }
  }
}

const profiles: Record<string, NativeProfile[]> = {};

async function measureNative(kind: ModelKind): Promise<number> {
  const config: ModelConfig = { kind, vocabSize: vocab.size, numHiddens: H, numLayers: 1 };
  const model = await engine.createModel(config, initParams(config, new Rng(1)));
  try {
    const stream = minibatches();
    const step = () => {
      const { batch, first } = stream.next().value as { batch: Batch; first: boolean };
      return model.trainStep(batch, { lr: 1, clipTheta: 1, resetState: first });
    };
    for (let i = 0; i < warmup; i++) await step();
    if (model instanceof NativeLstmModel) model.resetProfile();
    const start = performance.now();
    for (let i = 0; i < steps; i++) await step();
    const tokensPerSec = (steps * B * T) / ((performance.now() - start) / 1000);
    if (model instanceof NativeLstmModel) (profiles[kind] ??= []).push(model.profile());
    return tokensPerSec;
  } finally {
    model.dispose();
  }
}

interface PyResult {
  tokensPerSec: number;
  blas: string[];
  torch: string;
  torchThreads: number;
  blasThreads: string;
}

function measurePytorch(kind: ModelKind): PyResult {
  const r = spawnSync(args.python, [script, '--kind', kind, '--steps', String(steps), '--warmup', String(warmup), '--num-hiddens', String(H), '--json'], {
    encoding: 'utf8',
    env: process.env,
  });
  if (r.status !== 0) throw new Error(`${args.python} ${script} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
  if (r.stderr.trim()) console.error(r.stderr.trim());
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as PyResult;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const log = (line: string) => {
  if (!args.json) console.log(line);
};

log(
  `native: ${info.blasConfig} (core ${info.blasCorename}), recurrent GEMM ${info.gemmKernel} (${info.recurrentGemm}), ${args.threads ?? process.env.NATIVE_THREADS ?? info.defaultThreads} thread(s)`,
);
log(
  `config: V=${vocab.size} H=${H} B=${B} T=${T}; ${steps} timed steps after ${warmup} warm-up, ${rounds} rounds; ${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);

const results: Record<string, { native: number[]; pytorch: number[]; ratio: number[] }> = {};
let pyInfo: PyResult | undefined;
for (let round = 0; round < rounds; round++) {
  for (const kind of kinds) {
    const r = (results[kind] ??= { native: [], pytorch: [], ratio: [] });
    let nat: number;
    let py: PyResult;
    if (args['native-only']) {
      nat = await measureNative(kind);
      r.native.push(nat);
      log(`round ${round + 1} ${kind.padEnd(7)} native ${nat.toFixed(0).padStart(7)} tokens/s`);
      continue;
    }
    if (round % 2 === 0) {
      nat = await measureNative(kind);
      py = measurePytorch(kind);
    } else {
      py = measurePytorch(kind);
      nat = await measureNative(kind);
    }
    pyInfo ??= py;
    r.native.push(nat);
    r.pytorch.push(py.tokensPerSec);
    r.ratio.push(nat / py.tokensPerSec);
    log(
      `round ${round + 1} ${kind.padEnd(7)} native ${nat.toFixed(0).padStart(7)} tokens/s   pytorch ${py.tokensPerSec.toFixed(0).padStart(7)} tokens/s   ratio ${(nat / py.tokensPerSec).toFixed(2)}`,
    );
  }
}
if (pyInfo)
  log(`pytorch: torch ${pyInfo.torch}, ${pyInfo.torchThreads} torch thread(s), OPENBLAS_NUM_THREADS=${pyInfo.blasThreads}, BLAS ${pyInfo.blas.join(', ')}`);
const summary = Object.entries(results).map(([kind, r]) => ({
  kind,
  nativeTokensPerSec: median(r.native),
  pytorchTokensPerSec: r.pytorch.length ? median(r.pytorch) : null,
  medianRatio: r.ratio.length ? median(r.ratio) : null,
  native: r.native,
  pytorch: r.pytorch,
}));
for (const s of summary) {
  log(
    `${s.kind.padEnd(7)} median native ${s.nativeTokensPerSec.toFixed(0)} tokens/s` +
      (s.pytorchTokensPerSec === null ? '' : `, pytorch ${s.pytorchTokensPerSec.toFixed(0)} tokens/s, median ratio ${s.medianRatio!.toFixed(2)}`),
  );
}
/** Per phase, the median over rounds of ms per step. */
const profileSummary = Object.fromEntries(
  Object.entries(profiles).map(([kind, ps]) => {
    const phases = Object.keys(ps[0].phasesMs);
    return [kind, Object.fromEntries(phases.map((ph) => [ph, median(ps.map((p) => p.phasesMs[ph] / p.steps))]))];
  }),
);
if (args.profile) {
  for (const [kind, phases] of Object.entries(profileSummary)) {
    const total = Object.values(phases).reduce((a, b) => a + b, 0);
    log(`${kind} profile, ms per step (thread 0's wall time; median of ${rounds} rounds), total ${total.toFixed(2)}:`);
    for (const [ph, ms] of Object.entries(phases)) log(`  ${ph.padEnd(24)} ${ms.toFixed(3).padStart(7)}  ${((100 * ms) / total).toFixed(1).padStart(5)} %`);
  }
}
log(
  `load average at the end ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
if (args.json) {
  console.log(
    JSON.stringify({
      config: { vocabSize: vocab.size, numHiddens: H, batchSize: B, numSteps: T, steps, warmup, rounds },
      native: info,
      pytorch: pyInfo,
      loadavg: os.loadavg(),
      summary,
      profile: profileSummary,
    }),
  );
}
