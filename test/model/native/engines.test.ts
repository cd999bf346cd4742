// The two engines must agree (docs/architecture.md, "Engines"): on the same weights and minibatches the native engine's
// loss and every gradient equal those of the tfjs engine (its fused path with the hand-derived
// backward, and the seed-like reference implementations through tfjs autograd) to float32
// tolerance, with the state carried over sequential minibatches; training steps leave the same
// weights; generation gives the same logits.
import { after, before, describe, it } from 'node:test';
import type { EngineFactory, LstmModel, ModelConfig } from '../../../src/model/engine.js';
import { createReferenceModel, tfjsEngine } from '../../../src/model/tfjs/index.js';
import { logitsReference, referenceModel } from '../../../src/model/reference.js';
import { assertGradsClose, assertRelClose, configs, label, native, relError, sequentialBatches, skipNative, testWeights } from './helpers.js';
import assert from 'node:assert/strict';

const V = 9;
const H = 24;
const quiet = () => {};

describe('native engine vs tfjs engine', { skip: skipNative }, () => {
  let tfjs: EngineFactory;
  const models: LstmModel[] = [];
  before(async () => {
    tfjs = await tfjsEngine(quiet);
  });
  after(() => models.forEach((m) => m.dispose()));

  const create = async (which: 'native' | 'tfjs' | 'reference', config: ModelConfig, seed: number) => {
    const w = testWeights(config, seed);
    const m =
      which === 'native'
        ? await native!.createModel(config, w)
        : which === 'tfjs'
          ? await tfjs.createModel(config, w)
          : await createReferenceModel(config, w, quiet);
    models.push(m);
    return m;
  };

  for (const config of configs(V, H)) {
    it(`same loss and gradients over 3 sequential minibatches: ${label(config)}`, async () => {
      const batches = sequentialBatches(V, 4, 5, 3, 91);
      const nat = await create('native', config, 92);
      const fused = await create('tfjs', config, 92);
      const reference = await create('reference', config, 92);
      for (const [k, batch] of batches.entries()) {
        const opts = { resetState: k === 0 };
        const n = await nat.lossAndGrads(batch, opts);
        const f = await fused.lossAndGrads(batch, opts);
        const r = await reference.lossAndGrads(batch, opts);
        const where = `${label(config)} minibatch ${k}`;
        assertRelClose(n.loss, f.loss, 1e-4, `${where}: loss vs tfjs fused`);
        assertRelClose(n.loss, r.loss, 1e-4, `${where}: loss vs tfjs reference`);
        const data = (g: typeof f.grads) => Object.fromEntries(Object.entries(g).map(([name, t]) => [name, t.data]));
        assertGradsClose(n.grads, data(f.grads), config, 1e-4, `${where} vs tfjs fused`);
        assertGradsClose(n.grads, data(r.grads), config, 1e-4, `${where} vs tfjs reference`);
      }
    });

    it(`same weights after 3 training steps and the same gradient norms: ${label(config)}`, async () => {
      const batches = sequentialBatches(V, 4, 5, 3, 93);
      const nat = await create('native', config, 94);
      const fused = await create('tfjs', config, 94);
      for (const [k, batch] of batches.entries()) {
        // θ small enough that every step clips
        const opts = { lr: 0.5, clipTheta: 0.1, resetState: k === 0 };
        const n = await nat.trainStep(batch, opts);
        const f = await fused.trainStep(batch, opts);
        assertRelClose(n.loss, f.loss, 1e-4, `${label(config)} step ${k} loss`);
        assertRelClose(n.gradNorm, f.gradNorm, 1e-4, `${label(config)} step ${k} gradNorm`);
        assert.ok(n.gradNorm > 0.1, 'the case must clip');
      }
      const wn = nat.getWeights();
      const wf = fused.getWeights();
      for (const name of Object.keys(wf)) {
        const e = relError(wn[name].data, wf[name].data);
        assert.ok(e < 1e-4, `${label(config)}: weight ${name} after training differs by ${e.toExponential(2)}`);
      }
    });

    it(`same generator logits: ${label(config)}`, async () => {
      const tokens = [1, 4, 0, 8, 2, 2, 7];
      const want = logitsReference(referenceModel(config, testWeights(config, 95)), tokens);
      for (const which of ['native', 'tfjs', 'reference'] as const) {
        const m = await create(which, config, 95);
        const gen = m.generator();
        try {
          for (const [i, tok] of tokens.entries()) {
            const logits = await gen.feed(tok);
            assert.equal(logits.length, V);
            const e = relError(logits, want[i]);
            assert.ok(e < 1e-5, `${which} ${label(config)} step ${i}: logits differ from the float64 reference by ${e.toExponential(2)}`);
          }
        } finally {
          gen.dispose();
        }
      }
    });
  }
});
