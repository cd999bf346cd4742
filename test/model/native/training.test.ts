// The native engine's training step: the update is d2l's grad_clipping + sgd on the gradient of
// lossAndGrads, the state is carried and reset as the contract says, training lowers the loss,
// the event loop runs during a step, calls on one model are serialised, and bad input is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelConfig } from '../../../src/model/engine.js';
import { cloneWeights, initParams } from '../../../src/model/params.js';
import { loadCorpus } from '../../../src/text/corpus.js';
import { seqDataIterSequential } from '../../../src/text/data.js';
import { Rng } from '../../../src/text/rng.js';
import { lossAndGradsReference, referenceModel, zeroState } from '../../../src/model/reference.js';
import { assertRelClose, configs, label, native, randomBatch, relError, sequentialBatches, skipNative, testWeights } from './helpers.js';

describe('native engine training step', { skip: skipNative }, () => {
  for (const config of configs(7, 40)) {
    for (const theta of [1e6, 0.05]) {
      it(`applies clip(θ = ${theta}) + SGD to the raw gradient: ${label(config)}`, async () => {
        assert.ok(native);
        const w = testWeights(config, 41);
        const batches = sequentialBatches(7, 4, 5, 2, 42);
        const a = await native.createModel(config, w);
        const b = await native.createModel(config, w);
        try {
          // same state in both: one step on the first minibatch
          await a.lossAndGrads(batches[0], { resetState: true });
          await b.trainStep(batches[0], { lr: 0, clipTheta: 1, resetState: true }); // lr 0: state advances, weights stay
          assert.deepEqual(b.getWeights(), a.getWeights());
          const before = a.getWeights();
          const { loss, grads } = await a.lossAndGrads(batches[1], { resetState: false });
          const lr = 0.7;
          const r = await b.trainStep(batches[1], { lr, clipTheta: theta, resetState: false });
          assert.equal(r.loss, loss);
          // the float64 reference's norm of the same gradient
          let state = zeroState(config, 4);
          const ref = referenceModel(config, w);
          state = lossAndGradsReference(ref, batches[0], state).state;
          const want = lossAndGradsReference(ref, batches[1], state);
          const norm = Math.sqrt(Object.values(want.grads).reduce((s, g) => s + g.reduce((t, x) => t + x * x, 0), 0));
          assertRelClose(r.gradNorm, norm, 1e-4, 'gradNorm');
          const scale = norm > theta ? theta / norm : 1;
          if (theta < 1) assert.ok(scale < 1, 'this case must clip');
          const after = b.getWeights();
          for (const name of Object.keys(before)) {
            const expected = before[name].data.map((p, i) => p - lr * grads[name].data[i] * scale);
            assert.ok(relError(after[name].data, expected) < 1e-6, `${name} after the update`);
          }
        } finally {
          a.dispose();
          b.dispose();
        }
      });
    }
  }

  it('carries the state across minibatches and resets it on request or when the batch size changes', async () => {
    assert.ok(native);
    const config: ModelConfig = { kind: 'concise', vocabSize: 7, numHiddens: 16, numLayers: 2 };
    const w = testWeights(config, 51);
    const [b0, b1] = sequentialBatches(7, 3, 4, 2, 52);
    const m = await native.createModel(config, w);
    try {
      const fresh = await m.lossAndGrads(b1, { resetState: true });
      await m.lossAndGrads(b0, { resetState: true });
      const carried = await m.lossAndGrads(b1, { resetState: false });
      assert.notEqual(carried.loss, fresh.loss, 'the carried state must change the loss');
      // a different batch size cannot continue the state: zeros, as with resetState
      const small = { ...b1, batchSize: 1, numSteps: 4, X: b1.X.subarray(0, 4), Y: b1.Y.subarray(0, 4) };
      const smallFresh = await m.lossAndGrads(small, { resetState: true });
      await m.lossAndGrads(b0, { resetState: true });
      const smallAfter = await m.lossAndGrads(small, { resetState: false });
      assert.equal(smallAfter.loss, smallFresh.loss);
      // lossAndGrads advances the state exactly as trainStep with lr 0 does
      await m.lossAndGrads(b0, { resetState: true });
      const viaGrads = await m.lossAndGrads(b1, { resetState: false });
      await m.trainStep(b0, { lr: 0, clipTheta: 1, resetState: true });
      const viaStep = await m.trainStep(b1, { lr: 0, clipTheta: 1, resetState: false });
      assert.equal(viaStep.loss, viaGrads.loss);
    } finally {
      m.dispose();
    }
  });

  for (const config of configs(28, 48)) {
    it(`lowers the loss on repeated minibatches of the Time Machine: ${label(config)}`, async () => {
      assert.ok(native);
      const { tokens, vocab } = loadCorpus('timemachine', 3000);
      assert.equal(vocab.size, config.vocabSize);
      const batches = [...seqDataIterSequential(tokens, 4, 16, new Rng(1))].slice(0, 2);
      const m = await native.createModel(config, initParams(config, new Rng(2)));
      try {
        const losses: number[] = [];
        for (let epoch = 0; epoch < 150; epoch++) {
          let sum = 0;
          for (const [k, batch] of batches.entries()) sum += (await m.trainStep(batch, { lr: 1, clipTheta: 1, resetState: k === 0 })).loss;
          losses.push(sum / batches.length);
        }
        assert.ok(losses.every(Number.isFinite));
        // from ≈ ln 28 to clearly below, still falling at the end
        assert.ok(losses[149] < 0.85 * losses[0], `loss ${losses[0].toFixed(3)} → ${losses[149].toFixed(3)}`);
        assert.ok(losses[149] < losses[99], `loss at epoch 100 ${losses[99].toFixed(3)}, at 150 ${losses[149].toFixed(3)}`);
      } finally {
        m.dispose();
      }
    });
  }

  it('keeps the event loop running during a step and serialises calls on one model', async () => {
    assert.ok(native);
    const config: ModelConfig = { kind: 'scratch', vocabSize: 28, numHiddens: 256, numLayers: 1 };
    const w = testWeights(config, 71);
    const batches = sequentialBatches(28, 32, 35, 3, 72);
    const m = await native.createModel(config, w);
    const ref = await native.createModel(config, w);
    try {
      let ticks = 0;
      let stop = false;
      const tick = () => {
        ticks++;
        if (!stop) setImmediate(tick);
      };
      setImmediate(tick);
      // three steps issued at once run in order, as if awaited one by one
      const all = await Promise.all(batches.map((batch, k) => m.trainStep(batch, { lr: 1, clipTheta: 1, resetState: k === 0 })));
      stop = true;
      assert.ok(ticks >= 3, `the event loop ran only ${ticks} times during 3 steps`);
      for (const [k, batch] of batches.entries()) {
        const r = await ref.trainStep(batch, { lr: 1, clipTheta: 1, resetState: k === 0 });
        assert.equal(all[k].loss, r.loss, `step ${k}`);
      }
      assert.deepEqual(m.getWeights(), ref.getWeights());
    } finally {
      m.dispose();
      ref.dispose();
    }
  });

  it('refuses bad input and use after dispose', async () => {
    assert.ok(native);
    const config: ModelConfig = { kind: 'scratch', vocabSize: 5, numHiddens: 4, numLayers: 1 };
    const w = testWeights(config, 81);
    await assert.rejects(native.createModel({ ...config, numLayers: 2 }, w), /scratch kind has 1 layer/);
    const bad = cloneWeights(w);
    bad.W_xi = { shape: [4, 4], data: new Float32Array(16) };
    await assert.rejects(native.createModel(config, bad), /W_xi.*shape/);
    const m = await native.createModel(config, w);
    const batch = randomBatch(5, 2, 3, new Rng(82));
    batch.X[3] = 5;
    await assert.rejects(m.trainStep(batch, { lr: 1, clipTheta: 1, resetState: true }), /token id out of range/);
    await assert.rejects(m.lossAndGrads({ ...batch, numSteps: 4 }, { resetState: true }), /batchSize·numSteps/);
    await assert.rejects(m.generator().feed(-1), /token id out of range/);
    m.dispose();
    await assert.rejects(m.trainStep(randomBatch(5, 2, 3, new Rng(83)), { lr: 1, clipTheta: 1, resetState: true }), /disposed/);
    assert.throws(() => m.getWeights(), /disposed/);
  });
});
