// Shared by the native engine's tests: the addon (or why it is missing), random models and
// minibatches, and tolerant comparisons. The float64 reference they check against is the
// project's one reference, src/model/reference.ts.
import assert from 'node:assert/strict';
import type { EngineFactory, ModelConfig, Weights } from '../../../src/model/engine.js';
import { loadNativeEngine } from '../../../src/model/native/index.js';
import { initParams, paramShapes } from '../../../src/model/params.js';
import type { Batch } from '../../../src/text/data.js';
import { Rng } from '../../../src/text/rng.js';

const loaded = loadNativeEngine();
/** The native engine, or undefined when the addon isn't built. */
export const native: EngineFactory | undefined = 'factory' in loaded ? loaded.factory : undefined;
/** node:test's `skip` option: false when the addon is available, else the reason. */
export const skipNative: string | false = 'error' in loaded ? `native addon unavailable: ${loaded.error}` : false;

/** A native engine with an explicit thread count (or the reason it is unavailable). */
export function nativeWithThreads(threads: number): EngineFactory {
  const r = loadNativeEngine({ threads });
  if ('error' in r) throw new Error(r.error);
  return r.factory;
}

/** Weights of the kind's own initialisation, then scaled so that gates and gradients are not tiny. */
export function randomWeights(config: ModelConfig, seed: number, scale = 1): Weights {
  const w = initParams(config, new Rng(seed));
  const rng = new Rng(seed + 1000);
  for (const t of Object.values(w)) {
    const biasLike = t.shape.length === 1;
    for (let i = 0; i < t.data.length; i++) {
      // zero-initialised scratch biases get values too, so the bias paths are exercised
      t.data[i] = biasLike && t.data[i] === 0 ? rng.uniform(-0.5, 0.5) * scale : t.data[i] * scale;
    }
  }
  return w;
}

export function randomBatch(vocabSize: number, batchSize: number, numSteps: number, rng: Rng): Batch {
  const X = new Int32Array(batchSize * numSteps);
  const Y = new Int32Array(batchSize * numSteps);
  for (let i = 0; i < X.length; i++) {
    X[i] = rng.randint(0, vocabSize - 1);
    Y[i] = rng.randint(0, vocabSize - 1);
  }
  return { X, Y, batchSize, numSteps };
}

export { sequentialBatches } from '../../support/forward-loss.js';

// ---------------------------------------------------------------------------------------------
// comparisons

/** max |a − b| / max |b| — the normwise relative error of a tensor. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length, 'length');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  if (scale === 0) return diff;
  return diff / scale;
}

/** Every named tensor of `actual` within `rtol` (normwise) of `expected`; names and sizes equal. */
export function assertGradsClose(actual: Weights, expected: Record<string, ArrayLike<number>>, config: ModelConfig, rtol: number, label: string): void {
  const shapes = paramShapes(config);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(shapes).sort(), `${label}: gradient names`);
  for (const [name, shape] of Object.entries(shapes)) {
    assert.deepEqual(actual[name].shape, shape, `${label}: shape of ${name}`);
    const e = relError(actual[name].data, expected[name]);
    assert.ok(e <= rtol, `${label}: gradient ${name} differs, normwise relative error ${e.toExponential(2)} > ${rtol}`);
  }
}

export function assertRelClose(actual: number, expected: number, rtol: number, label: string): void {
  const e = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-30);
  assert.ok(e <= rtol, `${label}: ${actual} vs ${expected} (relative error ${e.toExponential(2)} > ${rtol})`);
}

export const configs = (V: number, H: number): ModelConfig[] => [
  { kind: 'scratch', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 1 },
  { kind: 'concise', vocabSize: V, numHiddens: H, numLayers: 2 },
];

export const label = (c: ModelConfig) => `${c.kind} L${c.numLayers} H${c.numHiddens}`;

/** Weights large enough that gates saturate partially and every gradient path matters. */
export function testWeights(config: ModelConfig, seed: number): Weights {
  return randomWeights(config, seed, config.kind === 'scratch' ? 20 : 2.5);
}
