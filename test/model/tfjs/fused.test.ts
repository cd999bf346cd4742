// The tfjs engine's fast path (fused sequence op, hand-derived BPTT) against the seed-like references
// (scratch: the 14 tensors and per-step equations; concise: tf.layers.lstm), by autograd, and
// against the project's float64 reference (src/model/reference.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../../../src/text/data.js';
import { Rng } from '../../../src/text/rng.js';
import type { LstmModel, ModelConfig, Weights } from '../../../src/model/engine.js';
import { initParams } from '../../../src/model/params.js';
import { lossAndGradsReference, referenceModel, zeroState } from '../../../src/model/reference.js';
import { createReferenceModel, tfjsEngine } from '../../../src/model/tfjs/index.js';
import { RNNModel } from '../../../src/model/tfjs/concise.js';
import { getLstmParams, initLstmState, paramList, rnnModelScratch } from '../../../src/model/tfjs/scratch.js';
import { checkForwardLoss } from '../../support/forward-loss.js';

const V = 12;
const H = 16;

const CONFIGS: ModelConfig[] = [
  { kind: 'scratch', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 2 },
];

const label = (c: ModelConfig) => `${c.kind}/${c.numLayers}`;

function randomBatch(rng: Rng, batchSize: number, numSteps: number): Batch {
  const X = new Int32Array(batchSize * numSteps).map(() => rng.randint(0, V - 1));
  const Y = new Int32Array(batchSize * numSteps).map(() => rng.randint(0, V - 1));
  return { X, Y, batchSize, numSteps };
}

/**
 * Weights with some spread: the seed's N(0, 0.01²) scratch init makes the recurrent part nearly
 * linear and its gradients tiny, which would let a wrong backward pass the comparison.
 */
function spreadWeights(config: ModelConfig, seed: number): Weights {
  const w = initParams(config, new Rng(seed));
  if (config.kind === 'scratch') {
    const rng = new Rng(seed + 1);
    for (const t of Object.values(w)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * 0.3;
  }
  return w;
}

function norm(a: Float32Array | number[]): number {
  let s = 0;
  for (const x of a) s += x * x;
  return Math.sqrt(s);
}

function diffNorm(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** Every tensor: ‖a − b‖ ≤ rel·‖b‖ + atol; and the whole gradient within rel of its norm. */
function assertWeightsClose(a: Weights, b: Weights, rel: number, atol: number, what: string): void {
  assert.deepEqual(Object.keys(a), Object.keys(b), `${what}: same names in the same order`);
  let dTotal = 0;
  let nTotal = 0;
  for (const name of Object.keys(b)) {
    assert.deepEqual(a[name].shape, b[name].shape, `${what}: shape of ${name}`);
    const d = diffNorm(a[name].data, b[name].data);
    const n = norm(b[name].data);
    assert.ok(Number.isFinite(d) && d <= rel * n + atol, `${what}: ${name} differs by ${d} (norm ${n})`);
    dTotal += d * d;
    nTotal += n * n;
  }
  assert.ok(Math.sqrt(dTotal) <= rel * Math.sqrt(nTotal), `${what}: global difference ${Math.sqrt(dTotal)} vs norm ${Math.sqrt(nTotal)}`);
}

const engine = await tfjsEngine(() => {});

test('engine: name, backend and the model it creates', async () => {
  assert.equal(engine.name, 'tfjs');
  assert.ok(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'].includes(engine.backend));
  const m = await engine.createModel(CONFIGS[0], spreadWeights(CONFIGS[0], 1));
  assert.equal(m.engine, 'tfjs');
  assert.equal(m.backend, engine.backend);
  assert.deepEqual(m.config, CONFIGS[0]);
  m.dispose();
  await assert.rejects(engine.createModel({ ...CONFIGS[0], numHiddens: H + 1 }, spreadWeights(CONFIGS[0], 1)), /shape/);
});

for (const config of CONFIGS) {
  test(`${label(config)}: loss and every gradient equal the reference (autograd), state carried and reset`, async () => {
    const weights = spreadWeights(config, 7);
    const fast = await engine.createModel(config, weights);
    const ref = await createReferenceModel(config, weights);
    const rng = new Rng(11);
    // sequential minibatches (state carried, detached), a reset, then a batch-size change (implicit reset)
    const plan: Array<{ batch: Batch; resetState: boolean }> = [
      { batch: randomBatch(rng, 4, 6), resetState: true },
      { batch: randomBatch(rng, 4, 6), resetState: false },
      { batch: randomBatch(rng, 4, 6), resetState: false },
      { batch: randomBatch(rng, 4, 6), resetState: true },
      { batch: randomBatch(rng, 3, 5), resetState: false },
    ];
    const losses: number[] = [];
    for (const [i, { batch, resetState }] of plan.entries()) {
      const a = await fast.lossAndGrads(batch, { resetState });
      const b = await ref.lossAndGrads(batch, { resetState });
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * b.loss, `minibatch ${i}: loss ${a.loss} vs reference ${b.loss}`);
      assertWeightsClose(a.grads, b.grads, 1e-4, 1e-7, `minibatch ${i}`);
      losses.push(a.loss);
    }
    // the carried state matters: the same minibatch from zeros gives another loss
    const again = await fast.lossAndGrads(plan[1].batch, { resetState: true });
    assert.notEqual(again.loss, losses[1]);
    fast.dispose();
    ref.dispose();
  });
}

for (const config of CONFIGS) {
  test(`${label(config)}: loss and every gradient equal the float64 reference over 3 sequential minibatches`, async () => {
    const weights = spreadWeights(config, 17);
    const fast = await engine.createModel(config, weights);
    const ref = referenceModel(config, weights);
    const rng = new Rng(19);
    let state = zeroState(config, 4);
    for (let i = 0; i < 3; i++) {
      const batch = randomBatch(rng, 4, 6);
      const a = await fast.lossAndGrads(batch, { resetState: i === 0 });
      const want = lossAndGradsReference(ref, batch, state);
      state = want.state;
      assert.ok(Math.abs(a.loss - want.loss) <= 1e-5 * want.loss, `minibatch ${i}: loss ${a.loss} vs reference ${want.loss}`);
      const expected: Weights = {};
      for (const [name, g] of Object.entries(want.grads)) expected[name] = { shape: a.grads[name].shape, data: Float32Array.from(g) };
      assertWeightsClose(a.grads, expected, 1e-4, 1e-7, `minibatch ${i}`);
    }
    fast.dispose();
  });
}

for (const config of CONFIGS) {
  test(`${label(config)}: trainStep (clip + SGD) equals the reference step`, async () => {
    const weights = spreadWeights(config, 3);
    const fast = await engine.createModel(config, weights);
    const ref = await createReferenceModel(config, weights);
    const rng = new Rng(5);
    for (let i = 0; i < 3; i++) {
      const batch = randomBatch(rng, 4, 6);
      const opts = { lr: 0.5, clipTheta: 0.5, resetState: i === 0 };
      const a = await fast.trainStep(batch, opts);
      const b = await ref.trainStep(batch, opts);
      assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * b.loss, `step ${i}: loss ${a.loss} vs ${b.loss}`);
      assert.ok(Math.abs(a.gradNorm - b.gradNorm) <= 1e-4 * b.gradNorm, `step ${i}: gradNorm ${a.gradNorm} vs ${b.gradNorm}`);
    }
    assertWeightsClose(fast.getWeights(), ref.getWeights(), 1e-5, 1e-7, 'weights after 3 steps');
    fast.dispose();
    ref.dispose();
  });
}

for (const config of CONFIGS) {
  test(`${label(config)}: the forward-only loss equals lossAndGrads' (fused and reference models), weights unchanged, the same carried state`, async () => {
    const weights = spreadWeights(config, 23);
    // the same ops compute the forward of both calls, so they agree to the last bit
    const fused = await checkForwardLoss((c, w) => engine.createModel(c, w), config, weights, 1e-7);
    assert.equal(fused, 0, 'fused: loss and lossAndGrads give the same bits');
    const reference = await checkForwardLoss((c, w) => createReferenceModel(c, w), config, weights, 1e-7);
    assert.equal(reference, 0, 'reference: loss and lossAndGrads give the same bits');
  });
}

test('clipping: with norm > theta the applied update has norm lr·theta; below it, update = lr·grad', async () => {
  for (const config of [CONFIGS[0], CONFIGS[2]]) {
    const weights = spreadWeights(config, 21);
    const batch = randomBatch(new Rng(8), 4, 6);
    const model = await engine.createModel(config, weights);

    const { grads } = await model.lossAndGrads(batch, { resetState: true });
    const rawNorm = norm(Object.values(grads).flatMap((g) => Array.from(g.data)));

    // clipped: theta far below the gradient norm, huge lr
    const lr = 50;
    const theta = rawNorm / 100;
    const before = model.getWeights();
    const step = await model.trainStep(batch, { lr, clipTheta: theta, resetState: true });
    assert.ok(Math.abs(step.gradNorm - rawNorm) <= 1e-4 * rawNorm, `gradNorm ${step.gradNorm} vs ${rawNorm}`);
    const after = model.getWeights();
    let d2 = 0;
    for (const name of Object.keys(before)) d2 += diffNorm(before[name].data, after[name].data) ** 2;
    const applied = Math.sqrt(d2);
    assert.ok(Math.abs(applied - lr * theta) <= 1e-3 * lr * theta, `${label(config)}: update norm ${applied}, want ${lr * theta}`);

    // not clipped: theta above the norm, update = lr·grad exactly (as the unclipped grads)
    model.setWeights(before);
    const lr2 = 0.1;
    await model.trainStep(batch, { lr: lr2, clipTheta: rawNorm * 10, resetState: true });
    const after2 = model.getWeights();
    const expected: Weights = {};
    for (const name of Object.keys(before)) {
      expected[name] = { shape: before[name].shape, data: before[name].data.map((w, i) => w - lr2 * grads[name].data[i]) };
    }
    assertWeightsClose(after2, expected, 1e-5, 1e-6, `${label(config)}: unclipped SGD`);
    model.dispose();
  }
});

test('token ids outside [0, V) and short minibatches are refused by every call, fused and reference, before anything changes', async () => {
  const outside = new RegExp(`token id (${V}|-1) is not in \\[0, ${V - 1}\\]`);
  for (const make of [(c: ModelConfig, w: Weights) => engine.createModel(c, w), createReferenceModel]) {
    for (const config of CONFIGS) {
      const what = `${make === createReferenceModel ? 'reference' : 'fused'} ${label(config)}`;
      const model = await make(config, spreadWeights(config, 5));
      const rng = new Rng(6);
      const before = model.getWeights();
      const good = randomBatch(rng, 3, 5);
      // the carried state after one good forward pass: a refused call must leave it as it is
      await model.loss(good, { resetState: true });
      const bads: [string, Batch][] = [
        ['X id V', { ...good, X: good.X.map((x, i) => (i === 7 ? V : x)) }],
        ['Y id -1', { ...good, Y: good.Y.map((y, i) => (i === 14 ? -1 : y)) }],
      ];
      for (const [name, bad] of bads) {
        await assert.rejects(model.trainStep(bad, { lr: 1, clipTheta: 1, resetState: false }), outside, `${what}: trainStep, ${name}`);
        await assert.rejects(model.lossAndGrads(bad, { resetState: false }), outside, `${what}: lossAndGrads, ${name}`);
        await assert.rejects(model.loss(bad, { resetState: false }), outside, `${what}: loss, ${name}`);
      }
      const short = { ...good, Y: good.Y.subarray(1) };
      await assert.rejects(model.trainStep(short, { lr: 1, clipTheta: 1, resetState: false }), /3×5 needs 15 ids in X and in Y \(got 15 and 14\)/, what);
      const gen = model.generator();
      await assert.rejects(gen.feed(V), outside, `${what}: generator`);
      await assert.rejects(gen.feed(1.5), /token id 1.5 is not in/, `${what}: generator`);
      assert.equal((await gen.feed(1)).length, V, `${what}: the generator works after a refused token`);
      gen.dispose();
      assert.deepEqual(model.getWeights(), before, `${what}: weights unchanged`);
      // the same next loss as a model that never saw the refused calls: the state was not touched
      const twin = await make(config, spreadWeights(config, 5));
      await twin.loss(good, { resetState: true });
      const next = randomBatch(rng, 3, 5);
      assert.equal((await model.loss(next, { resetState: false })).loss, (await twin.loss(next, { resetState: false })).loss, `${what}: carried state`);
      model.dispose();
      twin.dispose();
    }
  }
});

test('no tensor leaks: trainStep, lossAndGrads, loss, generator, get/setWeights, dispose', async () => {
  for (const make of [(c: ModelConfig, w: Weights) => engine.createModel(c, w), createReferenceModel]) {
    for (const config of [CONFIGS[0], CONFIGS[2]]) {
      const start = tf.memory().numTensors;
      const model: LstmModel = await make(config, spreadWeights(config, 2));
      const rng = new Rng(4);
      const exercise = async (resetState: boolean) => {
        await model.trainStep(randomBatch(rng, 4, 6), { lr: 1, clipTheta: 1, resetState });
        await model.lossAndGrads(randomBatch(rng, 4, 6), { resetState: false });
        await model.loss(randomBatch(rng, 4, 6), { resetState: false });
        // a refused minibatch (out-of-range tokens) leaves nothing behind
        await assert.rejects(model.loss({ ...randomBatch(rng, 4, 6), X: new Int32Array(24).fill(V) }, { resetState: false }), /token/);
        const gen = model.generator();
        for (const tok of [1, 2, 3]) await gen.feed(tok);
        gen.dispose();
        model.setWeights(model.getWeights());
      };
      await exercise(true);
      const settled = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) await exercise(false);
      assert.equal(tf.memory().numTensors, settled, `${label(config)}: tensors after 4 more rounds`);
      model.dispose();
      assert.equal(tf.memory().numTensors, start, `${label(config)}: tensors after dispose`);
    }
  }
});

/** Logits of the last step of a (1, n) sequence through the reference forward, from zero state. */
function referenceLastLogits(config: ModelConfig, weights: Weights, tokens: number[]): Float32Array {
  return tf.tidy(() => {
    const X = tf.tensor2d(tokens, [1, tokens.length], 'int32');
    let Y: tf.Tensor2D;
    if (config.kind === 'scratch') {
      const params = getLstmParams(weights);
      [Y] = rnnModelScratch(X, initLstmState(1, config.numHiddens), params, config.vocabSize);
      tf.dispose(paramList(params));
    } else {
      const net = new RNNModel(config, weights);
      [Y] = net.forward(X, net.beginState(1));
      net.dispose();
    }
    return Y.slice([tokens.length - 1, 0], [1, config.vocabSize]).dataSync() as Float32Array;
  });
}

test('generator: logits equal the reference forward at the last step; state lives in the generator', async () => {
  const tokens = [3, 1, 4, 1, 5, 9, 2, 6];
  for (const config of CONFIGS) {
    const weights = spreadWeights(config, 13);
    for (const model of [await engine.createModel(config, weights), await createReferenceModel(config, weights)]) {
      const gen = model.generator();
      let logits: Float32Array = new Float32Array(0);
      for (const t of tokens) logits = await gen.feed(t);
      assert.equal(logits.length, V);
      const want = referenceLastLogits(config, weights, tokens.slice());
      assert.ok(
        diffNorm(logits, want) <= 1e-5 * norm(want) + 1e-6,
        `${label(config)}: logits ${Array.from(logits.slice(0, 3))} vs ${Array.from(want.slice(0, 3))}`,
      );
      // a second generator starts from zeros, independent of the first
      const gen2 = model.generator();
      const first = await gen2.feed(tokens[0]);
      const want1 = referenceLastLogits(config, weights, [tokens[0]]);
      assert.ok(diffNorm(first, want1) <= 1e-5 * norm(want1) + 1e-6, `${label(config)}: fresh generator`);
      gen.dispose();
      gen2.dispose();
      await assert.rejects(gen.feed(1), /disposed/);
      model.dispose();
    }
  }
});

test('getWeights/setWeights round-trip exactly (scratch: through the fused layout and back)', async () => {
  for (const config of CONFIGS) {
    const weights = spreadWeights(config, 19);
    const model = await engine.createModel(config, weights);
    assertWeightsClose(model.getWeights(), weights, 0, 0, `${label(config)}: created`);
    const other = spreadWeights(config, 20);
    model.setWeights(other);
    assertWeightsClose(model.getWeights(), other, 0, 0, `${label(config)}: set`);
    model.dispose();
  }
});

test('getWeights returns copies; setWeights replaces and validates', async () => {
  const config = CONFIGS[1];
  const weights = spreadWeights(config, 17);
  const model = await engine.createModel(config, weights);
  const w = model.getWeights();
  assertWeightsClose(w, weights, 0, 0, 'round trip');
  w['dense/bias'].data.fill(123);
  assert.notEqual(model.getWeights()['dense/bias'].data[0], 123, 'mutating a copy leaves the model alone');
  model.setWeights(w);
  assert.equal(model.getWeights()['dense/bias'].data[0], 123);
  assert.throws(() => model.setWeights({ ...w, extra: { shape: [1], data: new Float32Array(1) } }), /unexpected/);
  const { 'dense/bias': _drop, ...missing } = w;
  assert.throws(() => model.setWeights(missing), /missing/);
  model.dispose();
});
