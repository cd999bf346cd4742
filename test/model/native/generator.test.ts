// The native engine's batch-1 generator (predict_ch8's stepping): logits of the float64 reference,
// its own state per generator, the model's current weights, and no effect on the training state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeLstmModel } from '../../../src/model/native/index.js';
import { Rng } from '../../../src/text/rng.js';
import { logitsReference, referenceModel } from '../../../src/model/reference.js';
import { configs, label, native, relError, sequentialBatches, skipNative, testWeights } from './helpers.js';

describe('native engine generator', { skip: skipNative }, () => {
  for (const [config, offLoop] of configs(11, 40).flatMap(
    (c) =>
      [
        [c, false],
        [c, true],
      ] as const,
  )) {
    it(`gives the float64 reference's logits: ${label(config)}${offLoop ? ', off the event loop' : ''}`, async () => {
      assert.ok(native);
      NativeLstmModel.generateAsyncAbove = offLoop ? 0 : 1 << 20;
      const w = testWeights(config, 101);
      const m = await native.createModel(config, w);
      const rng = new Rng(102);
      const tokens = Array.from({ length: 12 }, () => rng.randint(0, 10));
      const want = logitsReference(referenceModel(config, w), tokens);
      const gen = m.generator();
      try {
        for (const [i, tok] of tokens.entries()) {
          const e = relError(await gen.feed(tok), want[i]);
          assert.ok(e < 1e-5, `step ${i}: relative error ${e.toExponential(2)}`);
        }
      } finally {
        gen.dispose();
        m.dispose();
        NativeLstmModel.generateAsyncAbove = 1 << 20;
      }
    });
  }

  it('keeps one state per generator, uses the current weights, and leaves the training state alone', async () => {
    assert.ok(native);
    const config = configs(11, 16)[2];
    const w = testWeights(config, 111);
    const m = await native.createModel(config, w);
    try {
      const [b0, b1] = sequentialBatches(11, 3, 4, 2, 112);
      // training state after b0, then generation in between, then b1 continues from it
      await m.lossAndGrads(b0, { resetState: true });
      const g1 = m.generator();
      const g2 = m.generator();
      const a1 = await g1.feed(3);
      await g1.feed(5);
      const a2 = await g2.feed(3); // a fresh generator starts from zero state
      assert.deepEqual(a2, a1);
      const withGen = await m.lossAndGrads(b1, { resetState: false });
      await m.lossAndGrads(b0, { resetState: true });
      const withoutGen = await m.lossAndGrads(b1, { resetState: false });
      assert.equal(withGen.loss, withoutGen.loss);
      // a feed queued behind a training step sees the updated weights
      const g3 = m.generator();
      const step = m.trainStep(b0, { lr: 1, clipTheta: 1, resetState: true });
      const afterStep = g3.feed(3);
      await step;
      const want = logitsReference(referenceModel(config, m.getWeights()), [3])[0];
      assert.ok(relError(await afterStep, want) < 1e-5);
      assert.notDeepEqual(await afterStep, a1);
      g1.dispose();
      await assert.rejects(g1.feed(1), /disposed/);
      g2.dispose();
      g3.dispose();
    } finally {
      m.dispose();
    }
  });
});
