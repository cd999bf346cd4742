// Where a fused trainStep's time goes: forward only, forward + backward, + clip/SGD (min of N runs).
import * as tf from '@tensorflow/tfjs';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';
import type { ModelConfig } from '../src/model/engine.js';
import { initParams } from '../src/model/params.js';
import { initTfjsBackend } from '../src/model/tfjs/index.js';
import { weightsToTensors } from '../src/model/tfjs/common.js';
import { fusedConfig, toFusedLayout } from '../src/model/tfjs/fusedLayout.js';
import { fusedLoss } from '../src/model/tfjs/fusedModel.js';
import { gateConstants, newTape, releaseTape, type LayerState } from '../src/model/tfjs/fusedLstm.js';

const kind = (process.argv[2] ?? 'concise') as 'scratch' | 'concise';
const runs = Number(process.argv[3] ?? 10);
await initTfjsBackend(() => {});
const corpus = loadCorpus('timemachine', 10000);
const batch = [...seqDataIterSequential(corpus.tokens, 32, 35, new Rng(1))][3];
const config: ModelConfig = { kind, vocabSize: corpus.vocab.size, numHiddens: 256, numLayers: 1 };
const params = weightsToTensors(fusedConfig(config), toFusedLayout(config, initParams(config, new Rng(42))));
const k = gateConstants(256);
const state: LayerState[] = [[tf.zeros([32, 256]), tf.zeros([32, 256])]];

function run(label: string, f: () => void): void {
  let best = Infinity;
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    f();
    if (i >= 2) best = Math.min(best, performance.now() - t0);
  }
  console.log(`${label.padEnd(28)} ${best.toFixed(1)} ms (min of ${runs})`);
}

const withTapes = (g: (tapes: ReturnType<typeof newTape>[]) => void) => () => {
  const tapes = [newTape()];
  g(tapes);
  tapes.forEach(releaseTape);
  tf.dispose(tapes.map((t) => t.state ?? []));
};
run(
  'forward',
  withTapes((tapes) => tf.tidy(() => void fusedLoss(params, batch, state, k, tapes).dataSync())),
);
run(
  'forward + backward',
  withTapes((tapes) =>
    tf.tidy(() => {
      const { grads } = tf.valueAndGrads((...p: tf.Tensor[]) => fusedLoss(p, batch, state, k, tapes))(params);
      grads[0].dataSync();
    }),
  ),
);
const H = tf.randomNormal([32, 256]);
const Wh = tf.randomNormal([256, 1024]);
const dZ = tf.randomNormal([32, 1024]);
const WhT = tf.randomNormal([1024, 256]);
run('70 recurrent matMuls', () =>
  tf.tidy(() => {
    for (let t = 0; t < 35; t++) {
      tf.matMul(H, Wh);
      tf.matMul(dZ, WhT);
    }
  }),
);
const dZT = tf.randomNormal([1024, 1120]);
const Hp = tf.randomNormal([1120, 256]);
run('dWh matMul', () => tf.tidy(() => void tf.matMul(dZT, Hp)));
console.log(`tensors ${tf.memory().numTensors}`);

if (process.env.PROFILE) {
  // per kernel (and matMul shape): the smallest total over several profiled runs
  const best = new Map<string, { n: number; ms: number }>();
  for (let r = 0; r < 5; r++) {
    const tapes = [newTape()];
    const info = await tf.profile(() =>
      tf.tidy(() => {
        const { grads } = tf.valueAndGrads((...p: tf.Tensor[]) => fusedLoss(p, batch, state, k, tapes))(params);
        grads[0].dataSync();
      }),
    );
    tapes.forEach(releaseTape);
    tf.dispose(tapes.map((t) => t.state ?? []));
    const totals = new Map<string, { n: number; ms: number }>();
    for (const kk of info.kernels) {
      const key = kk.name === 'BatchMatMul' || kk.name === 'Transpose' ? `${kk.name} ${JSON.stringify(kk.inputShapes)}` : kk.name;
      const e = totals.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += Number(kk.kernelTimeMs) || 0;
      totals.set(key, e);
    }
    for (const [key, e] of totals) if (!best.has(key) || best.get(key)!.ms > e.ms) best.set(key, e);
  }
  for (const [key, e] of [...best].sort((a, b) => b[1].ms - a[1].ms))
    console.log(`${key.padEnd(52)} ${String(e.n).padStart(4)} ${e.ms.toFixed(2).padStart(8)} ms`);
}
