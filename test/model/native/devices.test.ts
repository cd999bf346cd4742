// Device selection of the native engine (DEVICE=cpu|cuda|auto), the CUDA build of the addon, and
// the trainer's several-minibatches path (trainBatches) that GPU models use. Where a GPU is
// visible, the CUDA model is also checked against the CPU model on the same weights and batches.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { ModelConfig } from '../../../src/model/engine.js';
import { selectEngine } from '../../../src/model/engines.js';
import { loadNativeEngine, requestedDevice, type NativeEngineFactory } from '../../../src/model/native/index.js';
import { lossAndGradsReference, referenceModel, zeroState } from '../../../src/model/reference.js';
import { parseJobSpec } from '../../../src/train/spec.js';
import { Trainer } from '../../../src/train/trainer.js';
import { assertGradsClose, assertRelClose, label, native, relError, sequentialBatches, skipNative, testWeights } from './helpers.js';

const nvcc = spawnSync(process.env.NVCC ?? 'nvcc', ['--version']).status === 0;
const info = native ? (native as NativeEngineFactory).info() : undefined;
const gpus = info?.cuda.devices ?? 0;

function engine(opts: Parameters<typeof loadNativeEngine>[0]): NativeEngineFactory {
  const r = loadNativeEngine(opts);
  if ('error' in r) throw new Error(r.error);
  return r.factory;
}

describe('native engine devices', { skip: skipNative }, () => {
  it('the addon includes the CUDA engine wherever nvcc was there to build it', { skip: nvcc ? false : 'nvcc not found' }, () => {
    assert.equal(info?.cuda.built, true, `addon built without CUDA: ${info?.cuda.error}`);
  });

  it('DEVICE accepts cpu, cuda, auto and names itself when wrong', async () => {
    assert.equal(requestedDevice('CPU'), 'cpu');
    assert.equal(requestedDevice(' cuda '), 'cuda');
    assert.equal(requestedDevice(''), 'auto');
    assert.throws(() => requestedDevice('gpu'), /DEVICE must be 'cpu', 'cuda' or 'auto', got 'gpu'/);
    const saved = process.env.DEVICE;
    process.env.DEVICE = 'tpu';
    try {
      await assert.rejects(
        selectEngine('native', () => {}),
        /DEVICE must be 'cpu', 'cuda' or 'auto', got 'tpu'/,
      );
    } finally {
      if (saved === undefined) delete process.env.DEVICE;
      else process.env.DEVICE = saved;
    }
  });

  it('DEVICE=cpu trains on OpenBLAS; auto picks a GPU only when one is visible', () => {
    assert.equal(engine({ device: 'cpu' }).backend, 'openblas');
    assert.equal(engine({ device: 'auto' }).backend, gpus > 0 ? 'cuda' : 'openblas');
  });

  it('DEVICE=cuda without a usable GPU is a clear error, not a fallback', { skip: gpus > 0 ? 'a GPU is visible' : false }, async () => {
    const r = loadNativeEngine({ device: 'cuda' });
    assert.ok('error' in r);
    assert.match(r.error, /DEVICE=cuda but no GPU can be used: /);
    const saved = process.env.DEVICE;
    process.env.DEVICE = 'cuda';
    try {
      await assert.rejects(
        selectEngine('native', () => {}),
        /DEVICE=cuda but no GPU can be used/,
      );
      await assert.rejects(
        selectEngine('', () => {}),
        /DEVICE=cuda/,
      );
    } finally {
      if (saved === undefined) delete process.env.DEVICE;
      else process.env.DEVICE = saved;
    }
  });

  for (const sampling of ['sequential', 'random'] as const) {
    it(`the trainer's several-minibatches path (trainBatches) trains exactly as per-minibatch steps: ${sampling}`, async () => {
      const spec = parseJobSpec({
        model: { kind: 'concise', numHiddens: 24 },
        data: { maxTokens: 2000, batchSize: 4, numSteps: 7, sampling },
        train: { epochs: 3, lr: 1, seed: 5 },
        report: { prefixes: [] },
      });
      const run = async (batchedCalls: boolean) => {
        const trainer = await Trainer.create(spec, engine({ device: 'cpu', batchedCalls }));
        try {
          assert.equal(typeof trainer.model.trainBatches === 'function', batchedCalls);
          const out: number[] = [];
          for await (const e of trainer.run()) out.push(e.perplexity);
          return { ppl: out, w: trainer.model.getWeights() };
        } finally {
          trainer.dispose();
        }
      };
      const stepwise = await run(false);
      const batched = await run(true);
      assert.deepEqual(
        batched.ppl.map((p) => p.toPrecision(12)),
        stepwise.ppl.map((p) => p.toPrecision(12)),
      );
      for (const name of Object.keys(stepwise.w)) assert.deepEqual(batched.w[name].data, stepwise.w[name].data, name);
    });
  }
});

// On a GPU machine: the CUDA model against the CPU model (the host harness checks the same
// arithmetic everywhere; this checks the device build, its memory transfers and its graphs).
describe('CUDA model vs CPU model on a GPU', { skip: skipNative || (gpus === 0 ? `no GPU: ${info?.cuda.error ?? 'none'}` : false) }, () => {
  const configs: ModelConfig[] = [
    { kind: 'scratch', vocabSize: 28, numHiddens: 256, numLayers: 1 },
    { kind: 'concise', vocabSize: 28, numHiddens: 256, numLayers: 1 },
    { kind: 'concise', vocabSize: 13, numHiddens: 37, numLayers: 3 },
  ];
  for (const config of configs) {
    it(`gradients and updates agree within 1e-4: ${label(config)}`, async () => {
      const w = testWeights(config, 7);
      const gpu = await engine({ device: 'cuda' }).createModel(config, w);
      const cpu = await engine({ device: 'cpu' }).createModel(config, w);
      try {
        const batches = sequentialBatches(config.vocabSize, 32, 35, 4, 8);
        for (const [k, b] of batches.slice(0, 3).entries()) {
          const x = await gpu.trainStep(b, { lr: 1, clipTheta: 1, resetState: k === 0 });
          const y = await cpu.trainStep(b, { lr: 1, clipTheta: 1, resetState: k === 0 });
          assertRelClose(x.loss, y.loss, 1e-4, `loss ${k}`);
          assertRelClose(x.gradNorm, y.gradNorm, 1e-4, `gradNorm ${k}`);
        }
        const g = await gpu.lossAndGrads(batches[3], { resetState: false });
        const c = await cpu.lossAndGrads(batches[3], { resetState: false });
        for (const name of Object.keys(c.grads)) assert.ok(relError(g.grads[name].data, c.grads[name].data) < 1e-4, name);
        const wg = gpu.getWeights();
        const wc = cpu.getWeights();
        for (const name of Object.keys(wc)) assert.ok(relError(wg[name].data, wc[name].data) < 1e-4, name);
      } finally {
        gpu.dispose();
        cpu.dispose();
      }
    });
  }

  it('gradients equal the float64 reference (src/model/reference.ts) over 2 sequential minibatches', async () => {
    const config: ModelConfig = { kind: 'concise', vocabSize: 11, numHiddens: 20, numLayers: 2 };
    const w = testWeights(config, 9);
    const gpu = await engine({ device: 'cuda' }).createModel(config, w);
    try {
      const ref = referenceModel(config, w);
      let state = zeroState(config, 5);
      for (const [k, b] of sequentialBatches(config.vocabSize, 5, 7, 2, 10).entries()) {
        const got = await gpu.lossAndGrads(b, { resetState: k === 0 });
        const want = lossAndGradsReference(ref, b, state);
        state = want.state;
        assertRelClose(got.loss, want.loss, 1e-5, `loss ${k}`);
        assertGradsClose(got.grads, want.grads, config, 1e-4, `minibatch ${k}`);
      }
    } finally {
      gpu.dispose();
    }
  });
});
