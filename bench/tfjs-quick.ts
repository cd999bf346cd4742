// Quick tokens/s of the tfjs engine (fused) and the reference path on the default d2l config.
// Usage: npx tsx bench/tfjs-quick.ts [fast|reference|all] [kind] [steps]
import * as tf from '@tensorflow/tfjs';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential, type Batch } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';
import type { LstmModel, ModelConfig } from '../src/model/engine.js';
import { initParams } from '../src/model/params.js';
import { createReferenceModel, tfjsEngine } from '../src/model/tfjs/index.js';

const which = process.argv[2] ?? 'all';
const kinds = (process.argv[3] ?? 'scratch,concise').split(',') as Array<'scratch' | 'concise'>;
const steps = Number(process.argv[4] ?? 20);
const numLayers = Number(process.env.LAYERS ?? 1);

const engine = await tfjsEngine();
const corpus = loadCorpus('timemachine', 10000);
const batches: Batch[] = [...seqDataIterSequential(corpus.tokens, 32, 35, new Rng(1))];

async function measure(label: string, model: LstmModel, n: number): Promise<void> {
  // warm-up: first steps compile wasm paths and pack XNNPACK weights
  for (let i = 0; i < 3; i++) await model.trainStep(batches[i % batches.length], { lr: 1, clipTheta: 1, resetState: i === 0 });
  const tensorsBefore = tf.memory().numTensors;
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    ({ loss } = await model.trainStep(batches[i % batches.length], { lr: 1, clipTheta: 1, resetState: i % batches.length === 0 }));
    times.push(performance.now() - t0);
  }
  // CPU time of this (single-threaded) process, and the fastest step: both less disturbed than the
  // mean wall time when the machine is shared
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 / n;
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / n;
  const tps = (ms: number) => Math.round((32 * 35) / (ms / 1000));
  console.log(
    `${label}: mean ${mean.toFixed(1)} ms/step = ${tps(mean)} tokens/s; median ${sorted[n >> 1].toFixed(1)} ms = ${tps(sorted[n >> 1])}; ` +
      `min ${sorted[0].toFixed(1)} ms = ${tps(sorted[0])}; CPU ${cpuMs.toFixed(1)} ms = ${tps(cpuMs)} ` +
      `(loss ${loss.toFixed(3)}, tensors ${tensorsBefore}→${tf.memory().numTensors})`,
  );
}

for (const kind of kinds) {
  const config: ModelConfig = { kind, vocabSize: corpus.vocab.size, numHiddens: 256, numLayers: kind === 'scratch' ? 1 : numLayers };
  const weights = initParams(config, new Rng(42));
  if (which === 'all' || which === 'fast') {
    const m = await engine.createModel(config, weights);
    await measure(`${kind} fast (${engine.backend})`, m, steps);
    m.dispose();
  }
  if (which === 'all' || which === 'reference') {
    const m = await createReferenceModel(config, weights);
    await measure(`${kind} reference (${engine.backend})`, m, Math.max(3, Math.round(steps / 5)));
    m.dispose();
  }
}
