// npm run bench:train [-- --engines native,tfjs --kinds scratch,concise --steps 30 --reference --json]
// tokens/s of one training step (forward + backward through time + clip + SGD) on the d2l default
// config (V=28, H=256, B=32, T=35, sequential minibatches of the Time Machine), per engine, kind
// and path (fast, or the tfjs reference implementations through autograd). A benchmark, not a test.
import { parseArgs } from 'node:util';
import os from 'node:os';
import type { EngineFactory, LstmModel, ModelConfig, ModelKind } from '../src/model/engine.js';
import { selectEngine } from '../src/model/engines.js';
import { initParams } from '../src/model/params.js';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential, type Batch } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';

const { values: args } = parseArgs({
  options: {
    engines: { type: 'string', default: 'native,tfjs' },
    kinds: { type: 'string', default: 'scratch,concise' },
    steps: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    hidden: { type: 'string', default: '256' },
    'batch-size': { type: 'string', default: '32' },
    'num-steps': { type: 'string', default: '35' },
    reference: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const B = Number(args['batch-size']);
const T = Number(args['num-steps']);
const H = Number(args.hidden);
const steps = Number(args.steps);
const warmup = Number(args.warmup);

function batches(): Batch[] {
  const { tokens } = loadCorpus('timemachine', 10000);
  return [...seqDataIterSequential(tokens, B, T, new Rng(0))];
}

async function measure(model: LstmModel, data: Batch[], n: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await model.trainStep(data[i % data.length], { lr: 1, clipTheta: 1, resetState: i === 0 });
  const start = performance.now();
  for (let i = 0; i < n; i++) await model.trainStep(data[i % data.length], { lr: 1, clipTheta: 1, resetState: i % data.length === 0 });
  return (n * B * T) / ((performance.now() - start) / 1000);
}

interface Row {
  engine: string;
  backend: string;
  kind: ModelKind;
  path: 'fast' | 'reference';
  tokensPerSec: number;
}

const rows: Row[] = [];
const data = batches();
for (const engineName of args.engines.split(',')) {
  let engine: EngineFactory;
  try {
    engine = await selectEngine(engineName, () => {});
  } catch (e) {
    console.error(`skipping engine ${engineName}: ${(e as Error).message}`);
    continue;
  }
  for (const kind of args.kinds.split(',') as ModelKind[]) {
    const config: ModelConfig = { kind, vocabSize: 28, numHiddens: H, numLayers: 1 };
    const weights = initParams(config, new Rng(1));
    const model = await engine.createModel(config, weights);
    rows.push({ engine: engine.name, backend: engine.backend, kind, path: 'fast', tokensPerSec: await measure(model, data, steps) });
    model.dispose();
    if (args.reference && engine.name === 'tfjs') {
      const { createReferenceModel } = await import('../src/model/tfjs/index.js');
      const ref = await createReferenceModel(config, weights);
      // the reference is slow: a third of the steps is enough for a stable figure
      rows.push({
        engine: 'tfjs',
        backend: engine.backend,
        kind,
        path: 'reference',
        tokensPerSec: await measure(ref, data, Math.max(3, Math.ceil(steps / 3))),
      });
      ref.dispose();
    }
    if (!args.json) {
      const r = rows.filter((x) => x.kind === kind && x.engine === engine.name);
      for (const x of r) console.error(`  ${x.engine}/${x.backend} ${x.kind} ${x.path}: ${Math.round(x.tokensPerSec)} tokens/s`);
    }
  }
}

const machine = `${os.cpus()[0]?.model ?? 'cpu'} ×${os.cpus().length}, node ${process.version}`;
if (args.json) {
  console.log(JSON.stringify({ machine, config: { V: 28, H, B, T, steps }, rows }));
} else {
  console.log(`\ntokens/s, d2l default config (V=28 H=${H} B=${B} T=${T}), ${steps} timed steps after ${warmup} warm-up; ${machine}`);
  console.log('engine  backend   kind     path       tokens/s');
  for (const r of rows)
    console.log(`${r.engine.padEnd(7)} ${r.backend.padEnd(9)} ${r.kind.padEnd(8)} ${r.path.padEnd(10)} ${Math.round(r.tokensPerSec).toString().padStart(8)}`);
}
process.exit(0);
