// Per-kernel time of one fused trainStep (tf.profile), to see where a step goes.
import * as tf from '@tensorflow/tfjs';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';
import type { ModelConfig } from '../src/model/engine.js';
import { initParams } from '../src/model/params.js';
import { tfjsEngine } from '../src/model/tfjs/index.js';

const kind = (process.argv[2] ?? 'concise') as 'scratch' | 'concise';
const engine = await tfjsEngine(() => {});
const corpus = loadCorpus('timemachine', 10000);
const batches = [...seqDataIterSequential(corpus.tokens, 32, 35, new Rng(1))];
const config: ModelConfig = { kind, vocabSize: corpus.vocab.size, numHiddens: 256, numLayers: 1 };
const model = await engine.createModel(config, initParams(config, new Rng(42)));
for (let i = 0; i < 3; i++) await model.trainStep(batches[i], { lr: 1, clipTheta: 1, resetState: i === 0 });
const t0 = performance.now();
const info = await tf.profile(async () => {
  await model.trainStep(batches[4], { lr: 1, clipTheta: 1, resetState: false });
});
const wall = performance.now() - t0;
const byName = new Map<string, { n: number; ms: number }>();
for (const k of info.kernels) {
  const key = process.env.SHAPES && k.name === 'BatchMatMul' ? `${k.name} ${JSON.stringify(k.inputShapes)}` : k.name;
  const e = byName.get(key) ?? { n: 0, ms: 0 };
  e.n++;
  e.ms += (k.kernelTimeMs as number) || 0;
  byName.set(key, e);
}
const rows = [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms);
let total = 0;
for (const [name, e] of rows) {
  total += e.ms;
  console.log(`${name.padEnd(48)} ${String(e.n).padStart(5)} ${e.ms.toFixed(2).padStart(8)} ms`);
}
console.log(`kernels ${info.kernels.length}, kernel time ${total.toFixed(1)} ms, wall (profiled) ${wall.toFixed(1)} ms`);
const t1 = performance.now();
await model.trainStep(batches[5], { lr: 1, clipTheta: 1, resetState: false });
console.log(`unprofiled step ${(performance.now() - t1).toFixed(1)} ms`);
