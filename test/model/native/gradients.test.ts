// The native engine's loss and gradients: against finite differences of its own float32 loss, and
// against an independent float64 implementation (itself checked by finite differences), over
// sequential minibatches with the state carried between them, for both kinds, 1 and 2 layers,
// one and two threads, and a hidden size that leaves a partial GEMM panel (H = 40).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelConfig, Weights } from '../../../src/model/engine.js';
import { cloneWeights } from '../../../src/model/params.js';
import { Rng } from '../../../src/text/rng.js';
import { lossAndGradsReference, referenceModel, zeroState } from '../../../src/model/reference.js';
import {
  assertGradsClose,
  assertRelClose,
  configs,
  label,
  native,
  nativeWithThreads,
  randomBatch,
  sequentialBatches,
  skipNative,
  testWeights,
} from './helpers.js';

describe('float64 reference (the oracle of these tests)', () => {
  for (const config of configs(5, 4)) {
    it(`matches central finite differences: ${label(config)}`, () => {
      const w = testWeights(config, 3);
      const batch = randomBatch(5, 2, 3, new Rng(4));
      const state = zeroState(config, 2);
      // a non-zero entering state, as after a previous minibatch
      state.h.forEach((a, l) => a.forEach((_, i) => (a[i] = Math.sin(i + l))));
      state.c.forEach((a, l) => a.forEach((_, i) => (a[i] = Math.cos(3 * i + l))));
      const { grads } = lossAndGradsReference(referenceModel(config, w), batch, state);
      const eps = 1e-6;
      const rng = new Rng(5);
      for (const name of Object.keys(w)) {
        for (let n = 0; n < 3; n++) {
          const i = rng.randint(0, w[name].data.length - 1);
          const loss = (delta: number) => {
            const m = referenceModel(config, w);
            const key = name as keyof typeof w;
            // perturb the float64 copy directly (a float32 perturbation would round)
            perturb(m, config, key as string, i, delta);
            return lossAndGradsReference(m, batch, state).loss;
          };
          const fd = (loss(eps) - loss(-eps)) / (2 * eps);
          assert.ok(Math.abs(fd - grads[name][i]) <= 1e-6 + 1e-5 * Math.abs(fd), `${name}[${i}]: fd ${fd} vs ${grads[name][i]}`);
        }
      }
    });
  }
});

/** Adds delta to element i of interface tensor `name` inside a float64 ReferenceModel. */
function perturb(m: ReturnType<typeof referenceModel>, config: ModelConfig, name: string, i: number, delta: number): void {
  const H = config.numHiddens;
  const scratchGate = /^(W_x|W_h|b_)([ifoc])$/.exec(name);
  if (scratchGate) {
    const [, kind, g] = scratchGate;
    const layer = m.layers[0];
    const map = kind === 'W_x' ? layer.Wx : kind === 'W_h' ? layer.Wh : layer.b;
    map[g as 'i' | 'f' | 'c' | 'o'][i] += delta;
    return;
  }
  if (name === 'W_hq' || name === 'dense/kernel') return void (m.Wq[i] += delta);
  if (name === 'b_q' || name === 'dense/bias') return void (m.bq[i] += delta);
  const fused = /^lstm_l(\d+)\/(kernel|recurrent_kernel|bias)$/.exec(name);
  assert.ok(fused, name);
  const layer = m.layers[Number(fused[1])];
  const row = Math.floor(i / (4 * H));
  const col = i % (4 * H);
  const gate = (['i', 'f', 'c', 'o'] as const)[Math.floor(col / H)];
  const j = col % H;
  const map = fused[2] === 'kernel' ? layer.Wx : fused[2] === 'recurrent_kernel' ? layer.Wh : layer.b;
  map[gate][row * H + j] += delta;
}

describe('native engine gradients', { skip: skipNative }, () => {
  for (const threads of [1, 2, 8]) {
    for (const config of configs(7, 40)) {
      it(`equal the float64 reference over 3 sequential minibatches: ${label(config)}, ${threads} thread(s)`, async () => {
        const engine = nativeWithThreads(threads);
        const w = testWeights(config, 11);
        const model = await engine.createModel(config, w);
        const ref = referenceModel(config, w);
        let state = zeroState(config, 5);
        try {
          for (const [k, batch] of sequentialBatches(7, 5, 6, 3, 12).entries()) {
            const got = await model.lossAndGrads(batch, { resetState: k === 0 });
            const want = lossAndGradsReference(ref, batch, state);
            state = want.state;
            assertRelClose(got.loss, want.loss, 1e-5, `${label(config)} minibatch ${k} loss`);
            assertGradsClose(got.grads, want.grads, config, 1e-4, `${label(config)} minibatch ${k}`);
          }
        } finally {
          model.dispose();
        }
      });
    }
  }

  for (const config of configs(6, 8)) {
    it(`agree with finite differences of the native float32 loss: ${label(config)}`, async () => {
      assert.ok(native);
      const w = testWeights(config, 21);
      const batch = randomBatch(6, 3, 4, new Rng(22));
      const model = await native.createModel(config, w);
      try {
        const { grads } = await model.lossAndGrads(batch, { resetState: true });
        const eps = 1e-2;
        const rng = new Rng(23);
        for (const name of Object.keys(w)) {
          // directional derivative along a random ±1 direction on this tensor
          const dir = Float32Array.from(w[name].data, () => (rng.random() < 0.5 ? -1 : 1));
          const lossAt = async (s: number) => {
            const v: Weights = cloneWeights(w);
            for (let i = 0; i < dir.length; i++) v[name].data[i] += s * eps * dir[i];
            model.setWeights(v);
            return (await model.lossAndGrads(batch, { resetState: true })).loss;
          };
          const fd = ((await lossAt(1)) - (await lossAt(-1))) / (2 * eps);
          let analytic = 0;
          for (let i = 0; i < dir.length; i++) analytic += grads[name].data[i] * dir[i];
          const tol = 2e-3 + 2e-2 * Math.abs(analytic);
          assert.ok(Math.abs(fd - analytic) <= tol, `${label(config)} ${name}: finite difference ${fd} vs gradient ${analytic}`);
        }
      } finally {
        model.dispose();
      }
    });
  }

  it("maps the scratch kind's 14 tensors (gate order i, f, o, c) like the concise layout (i, f, c, o)", async () => {
    assert.ok(native);
    const V = 6;
    const H = 8;
    const scratch: ModelConfig = { kind: 'scratch', vocabSize: V, numHiddens: H, numLayers: 1 };
    const concise: ModelConfig = { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 1 };
    const ws = testWeights(scratch, 31);
    // the same network in the concise layout
    const fuse = (rows: number, parts: Float32Array[]) => {
      const out = new Float32Array(rows * 4 * H);
      parts.forEach((p, k) => {
        for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * 4 * H + k * H + j] = p[r * H + j];
      });
      return out;
    };
    const order = ['i', 'f', 'c', 'o'];
    const wc: Weights = {
      'lstm_l0/kernel': {
        shape: [V, 4 * H],
        data: fuse(
          V,
          order.map((g) => ws[`W_x${g}`].data),
        ),
      },
      'lstm_l0/recurrent_kernel': {
        shape: [H, 4 * H],
        data: fuse(
          H,
          order.map((g) => ws[`W_h${g}`].data),
        ),
      },
      'lstm_l0/bias': {
        shape: [4 * H],
        data: fuse(
          1,
          order.map((g) => ws[`b_${g}`].data),
        ),
      },
      'dense/kernel': { shape: [H, V], data: ws.W_hq.data.slice() },
      'dense/bias': { shape: [V], data: ws.b_q.data.slice() },
    };
    const ms = await native.createModel(scratch, ws);
    const mc = await native.createModel(concise, wc);
    try {
      // weights round-trip exactly, in the interface order
      const back = ms.getWeights();
      assert.deepEqual(Object.keys(back), Object.keys(ws));
      for (const name of Object.keys(ws)) assert.deepEqual(back[name].data, ws[name].data, name);
      const batch = randomBatch(V, 3, 5, new Rng(32));
      const gs = await ms.lossAndGrads(batch, { resetState: true });
      const gc = await mc.lossAndGrads(batch, { resetState: true });
      assert.equal(gs.loss, gc.loss);
      order.forEach((g, k) => {
        const block = (m: Float32Array, rows: number) => {
          const out = new Float32Array(rows * H);
          for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) out[r * H + j] = m[r * 4 * H + k * H + j];
          return out;
        };
        assert.deepEqual(gs.grads[`W_x${g}`].data, block(gc.grads['lstm_l0/kernel'].data, V), `W_x${g}`);
        assert.deepEqual(gs.grads[`W_h${g}`].data, block(gc.grads['lstm_l0/recurrent_kernel'].data, H), `W_h${g}`);
        assert.deepEqual(gs.grads[`b_${g}`].data, block(gc.grads['lstm_l0/bias'].data, 1), `b_${g}`);
      });
      assert.deepEqual(gs.grads.W_hq.data, gc.grads['dense/kernel'].data);
    } finally {
      ms.dispose();
      mc.dispose();
    }
  });
});
