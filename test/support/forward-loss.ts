// The check every engine's forward-only loss (LstmModel.loss, the held-out perplexity's pass) must
// pass, shared by the native and tfjs engines' tests: on the same weights and minibatches it equals
// lossAndGrads(…).loss, leaves the weights as they were, and leaves the carried state lossAndGrads
// leaves.
import assert from 'node:assert/strict';
import type { LstmModel, ModelConfig, Weights } from '../../src/model/engine.js';
import type { Batch } from '../../src/text/data.js';
import { Rng } from '../../src/text/rng.js';

/** Sequential minibatches of one random token stream (row b of minibatch i+1 continues row b of i). */
export function sequentialBatches(vocabSize: number, batchSize: number, numSteps: number, count: number, seed: number): Batch[] {
  const rng = new Rng(seed);
  const rowLen = numSteps * count + 1;
  const rows = Array.from({ length: batchSize }, () => Array.from({ length: rowLen }, () => rng.randint(0, vocabSize - 1)));
  return Array.from({ length: count }, (_, i) => {
    const X = new Int32Array(batchSize * numSteps);
    const Y = new Int32Array(batchSize * numSteps);
    for (let b = 0; b < batchSize; b++) {
      for (let t = 0; t < numSteps; t++) {
        X[b * numSteps + t] = rows[b][i * numSteps + t];
        Y[b * numSteps + t] = rows[b][i * numSteps + t + 1];
      }
    }
    return { X, Y, batchSize, numSteps };
  });
}

function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
}

/** max |a − b| / max |b| over every tensor. */
function gradsDiff(a: Weights, b: Weights): number {
  let diff = 0;
  let scale = 0;
  for (const name of Object.keys(b)) {
    const x = a[name].data;
    const y = b[name].data;
    for (let i = 0; i < y.length; i++) {
      diff = Math.max(diff, Math.abs(x[i] - y[i]));
      scale = Math.max(scale, Math.abs(y[i]));
    }
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * Two models of `make` on the same weights run the same calls, one with `loss`, the other with
 * `lossAndGrads`: sequential minibatches (state carried), a reset, and a batch-size change (an
 * implicit reset). Every loss agrees within rtol; `loss` leaves the weights bit for bit; a gradient
 * taken from the state `loss` left equals one taken from the state `lossAndGrads` left. Returns the
 * largest relative loss difference seen.
 */
export async function checkForwardLoss(
  make: (config: ModelConfig, weights: Weights) => Promise<LstmModel>,
  config: ModelConfig,
  weights: Weights,
  rtol: number,
): Promise<number> {
  const [b0, b1, b2] = sequentialBatches(config.vocabSize, 4, 6, 3, 31);
  const [small] = sequentialBatches(config.vocabSize, 3, 6, 1, 32);
  const forward = await make(config, weights);
  const grads = await make(config, weights);
  let worst = 0;
  try {
    const before = forward.getWeights();
    const plan: Array<[string, Batch, boolean]> = [
      ['minibatch 0 from zeros', b0, true],
      ['minibatch 1 from the carried state', b1, false],
      ['minibatch 2 from the carried state', b2, false],
      ['minibatch 1 after a reset', b1, true],
      ['a smaller batch (state reset by the size change)', small, false],
      ['minibatch 0 (size changed back)', b0, false],
    ];
    const losses: number[] = [];
    for (const [what, batch, resetState] of plan) {
      const { loss } = await forward.loss(batch, { resetState });
      const want = (await grads.lossAndGrads(batch, { resetState })).loss;
      const d = relDiff(loss, want);
      worst = Math.max(worst, d);
      assert.ok(Number.isFinite(loss) && d <= rtol, `${what}: loss ${loss} vs lossAndGrads ${want} (relative ${d.toExponential(2)} > ${rtol})`);
      losses.push(loss);
    }
    // the checks above see the carried state: from zeros, minibatch 1's loss is another
    assert.notEqual(losses[3], losses[1], 'minibatch 1 from zeros and from the carried state');

    const after = forward.getWeights();
    for (const name of Object.keys(before)) assert.deepEqual(after[name].data, before[name].data, `loss changed weight ${name}`);

    // the state loss carries is lossAndGrads': the gradient of the next minibatch from it agrees
    await forward.loss(b0, { resetState: true });
    await forward.loss(b1, { resetState: false });
    await grads.lossAndGrads(b0, { resetState: true });
    await grads.lossAndGrads(b1, { resetState: false });
    const x = await forward.lossAndGrads(b2, { resetState: false });
    const y = await grads.lossAndGrads(b2, { resetState: false });
    assert.ok(relDiff(x.loss, y.loss) <= rtol, `minibatch 2's loss after loss() ${x.loss} vs after lossAndGrads() ${y.loss}`);
    const g = gradsDiff(x.grads, y.grads);
    assert.ok(g <= rtol, `minibatch 2's gradient after loss() vs after lossAndGrads(): relative ${g.toExponential(2)} > ${rtol}`);
    return worst;
  } finally {
    forward.dispose();
    grads.dispose();
  }
}
