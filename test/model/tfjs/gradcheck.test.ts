// Finite-difference check of the scratch reference's autograd gradients (the yardstick of the fast
// path), on a tiny model, on the plain-JS 'cpu' backend.
process.env.TFJS_BACKEND = 'cpu';

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../src/text/rng.js';
import type { Weights } from '../../../src/model/engine.js';
import { getLstmParams as initLstmWeights } from '../../../src/model/params.js';
import { initTfjsBackend } from '../../../src/model/tfjs/index.js';
import { LSTM_PARAM_NAMES, getLstmParams, paramList, paramRecord, rnnModelScratch, scratchLossAndGrads } from '../../../src/model/tfjs/scratch.js';
import { crossEntropy, timeMajor } from '../../../src/model/tfjs/common.js';

const backend = await initTfjsBackend(() => {});

const V = 6;
const H = 5;
const B = 3;
const T = 4;

test('backend is cpu (forced by TFJS_BACKEND)', () => {
  assert.equal(backend, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
});

test('scratch reference: autograd gradients match central differences (directional derivatives)', () => {
  const rng = new Rng(123);
  // weights larger than the seed's 0.01 so every gate is away from its linear regime
  const weights: Weights = initLstmWeights(V, H, rng);
  for (const t of Object.values(weights)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.5;
  const X = new Int32Array(B * T).map(() => rng.randint(0, V - 1));
  const Y = new Int32Array(B * T).map(() => rng.randint(0, V - 1));
  const batch = { X, Y, batchSize: B, numSteps: T };
  // a non-zero initial state, as a carried one would be
  const H0 = tf.tensor2d(
    Array.from({ length: B * H }, () => rng.normal() * 0.5),
    [B, H],
  );
  const C0 = tf.tensor2d(
    Array.from({ length: B * H }, () => rng.normal() * 0.5),
    [B, H],
  );

  const params = getLstmParams(weights);
  const { loss, grads, state } = scratchLossAndGrads(params, batch, [H0, C0], V);
  const gradData = grads.map((g) => g.dataSync() as Float32Array);
  const lossValue = loss.dataSync()[0];
  tf.dispose([loss, grads, state]);

  const lossAt = (list: tf.Tensor[]): number =>
    tf.tidy(() => {
      const [Yhat] = rnnModelScratch(tf.tensor2d(X, [B, T], 'int32'), [H0, C0], paramRecord(list), V);
      return crossEntropy(Yhat, tf.tensor1d(timeMajor(Y, B, T), 'int32')).dataSync()[0];
    });
  assert.ok(Math.abs(lossAt(paramList(params)) - lossValue) < 1e-6, 'loss recomputes');

  // float32 loss ≈ 2: rounding ≈ 1e-7, so h = 1e-2 keeps it at ~1e-5 relative to the slopes below
  const h = 1e-2;
  const dirRng = new Rng(7);
  LSTM_PARAM_NAMES.forEach((name, p) => {
    for (let trial = 0; trial < 2; trial++) {
      // a unit direction in this parameter's space: the gradient's own (largest slope), then a random one
      const size = gradData[p].length;
      const dir = trial === 0 ? new Float32Array(gradData[p]) : new Float32Array(size).map(() => dirRng.normal());
      const n = Math.hypot(...dir);
      dir.forEach((x, i) => (dir[i] = x / n));
      const shifted = (sign: number) => paramList(params).map((t, q) => (q === p ? tf.add(t, tf.mul(tf.tensor(dir, t.shape), sign * h)) : t));
      const plus = shifted(1);
      const minus = shifted(-1);
      const numeric = (lossAt(plus) - lossAt(minus)) / (2 * h);
      tf.dispose([plus[p], minus[p]]);
      let analytic = 0;
      for (let i = 0; i < size; i++) analytic += gradData[p][i] * dir[i];
      const tol = 2e-3 * Math.max(Math.abs(analytic), 1e-2);
      assert.ok(Math.abs(numeric - analytic) <= tol, `${name}: numeric ${numeric} vs autograd ${analytic}`);
    }
  });
  tf.dispose([paramList(params), H0, C0]);
});
