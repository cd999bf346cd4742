// The native engine's forward-only loss (LstmModel.loss, the pass behind the held-out perplexity):
// on the same weights and minibatches it equals lossAndGrads(…).loss, leaves the weights unchanged
// and carries the state lossAndGrads carries (test/support/forward-loss.ts), and the backward does
// not run (the addon's phase timers). Both kinds and a 2-layer concise model, on the CPU, and on a
// GPU where one is visible; the CUDA kernels without a GPU are checked by cuda-host.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelConfig } from '../../../src/model/engine.js';
import { loadNativeEngine, type NativeEngineFactory, type NativeLstmModel } from '../../../src/model/native/index.js';
import { checkForwardLoss } from '../../support/forward-loss.js';
import { configs, label, native, sequentialBatches, skipNative, testWeights } from './helpers.js';

const V = 9;
const H = 24;
const gpus = native ? (native as NativeEngineFactory).info().cuda.devices : 0;

function engine(device: 'cpu' | 'cuda'): NativeEngineFactory {
  const r = loadNativeEngine({ device });
  if ('error' in r) throw new Error(r.error);
  return r.factory;
}

for (const device of ['cpu', 'cuda'] as const) {
  const skip = skipNative || (device === 'cuda' && gpus === 0 ? 'no GPU visible' : false);
  describe(`native engine (${device}): forward-only loss`, { skip }, () => {
    for (const config of configs(V, H)) {
      it(`equals lossAndGrads' loss, weights unchanged, the same carried state: ${label(config)}`, async () => {
        const factory = engine(device);
        // the same code computes the forward of both calls, so they agree to the last bit
        const worst = await checkForwardLoss((c, w) => factory.createModel(c, w), config, testWeights(config, 41), 1e-7);
        assert.equal(worst, 0, 'loss and lossAndGrads give the same bits');
      });
    }
  });
}

describe('native engine (cpu): the forward-only loss runs no backward', { skip: skipNative }, () => {
  it('only the pack, forward and output-loss phases take time; a step runs the rest', async () => {
    const config: ModelConfig = { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 2 };
    const m = (await engine('cpu').createModel(config, testWeights(config, 43))) as NativeLstmModel;
    try {
      const [b0, b1] = sequentialBatches(V, 4, 6, 2, 44);
      m.resetProfile();
      await m.loss(b0, { resetState: true });
      await m.loss(b1, { resetState: false });
      const forward = m.profile();
      assert.equal(forward.steps, 2);
      for (const phase of ['output_backward', 'gate_backward', 'recurrent_backward_gemm', 'weight_grad_gemm', 'update']) {
        assert.equal(forward.phasesMs[phase], 0, `${phase} ran in a forward-only pass`);
      }
      for (const phase of ['gate_forward', 'output_forward']) assert.ok(forward.phasesMs[phase] > 0, `${phase} did not run`);
      m.resetProfile();
      await m.lossAndGrads(b0, { resetState: true });
      const step = m.profile();
      for (const phase of ['gate_backward', 'weight_grad_gemm']) assert.ok(step.phasesMs[phase] > 0, `${phase} did not run in lossAndGrads`);
    } finally {
      m.dispose();
    }
  });

  it('refuses a malformed minibatch with the reason', async () => {
    const config: ModelConfig = { kind: 'scratch', vocabSize: V, numHiddens: H, numLayers: 1 };
    const m = await engine('cpu').createModel(config, testWeights(config, 45));
    try {
      const [b] = sequentialBatches(V, 4, 6, 1, 46);
      await assert.rejects(m.loss({ ...b, numSteps: 5 }, { resetState: true }), /batchSize·numSteps/);
      const Y = b.Y.slice();
      Y[3] = V;
      await assert.rejects(m.loss({ ...b, Y }, { resetState: true }), /token id out of range/);
    } finally {
      m.dispose();
    }
  });
});
