// The worker's checkpoint policy (checkpointDue, src/jobs/checkpoint-policy.ts): after epoch 1, every
// CHECKPOINT_EVERY epochs, at the last epoch, at an early stop, at least every CHECKPOINT_SECONDS, never twice for
// one epoch. A pure function: no Redis, no worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkpointDue } from '../../src/jobs/checkpoint-policy.js';
import { testPauseFromEnv } from '../../src/jobs/test-hooks.js';

const policy = { checkpointEvery: 5, checkpointSeconds: 60 };
const T0 = 1_000_000;

/** The epochs of a run of `epochs` that get a checkpoint when each epoch takes `msPerEpoch`. */
function checkpointedEpochs(epochs: number, msPerEpoch: number, from = 0): number[] {
  let last = { epoch: from, at: T0 };
  const out: number[] = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const now = T0 + epoch * msPerEpoch;
    if (checkpointDue({ epoch, epochs }, last, policy, now)) {
      out.push(epoch);
      last = { epoch, at: now };
    }
  }
  return out;
}

test('fast epochs: epoch 1, every CHECKPOINT_EVERY epochs and the last one', () => {
  assert.deepEqual(checkpointedEpochs(12, 10), [1, 5, 10, 12]);
  assert.deepEqual(checkpointedEpochs(10, 10), [1, 5, 10]);
  assert.deepEqual(checkpointedEpochs(1, 10), [1]);
});

test('slow epochs: at least every CHECKPOINT_SECONDS in between', () => {
  // 25 s an epoch: 60 s have passed since the checkpoint at epoch 1 by epoch 4 (3 × 25 = 75 s)
  assert.deepEqual(checkpointedEpochs(12, 25_000), [1, 4, 5, 8, 10, 12]);
  assert.equal(checkpointDue({ epoch: 3, epochs: 12 }, { epoch: 2, at: T0 }, policy, T0 + 59_999), false);
  assert.equal(checkpointDue({ epoch: 3, epochs: 12 }, { epoch: 2, at: T0 }, policy, T0 + 60_000), true);
});

test('an early stop (stopReason) is checkpointed at once: the training process then holds the best weights', () => {
  assert.equal(checkpointDue({ epoch: 7, epochs: 12 }, { epoch: 5, at: T0 }, policy, T0 + 10), false);
  assert.equal(checkpointDue({ epoch: 7, epochs: 12, stopReason: 'early stopping' }, { epoch: 5, at: T0 }, policy, T0 + 10), true);
});

test('never again for an epoch at or before the last checkpoint (a resumed worker re-trains those)', () => {
  // resumed from the checkpoint at epoch 5: epochs 1–5 are re-trained without a checkpoint
  assert.deepEqual(checkpointedEpochs(12, 10, 5), [10, 12]);
  assert.equal(checkpointDue({ epoch: 5, epochs: 5 }, { epoch: 5, at: T0 - 600_000 }, policy, T0), false);
});

test('the test pause hook comes from LSTM_TEST_PAUSE_AT / LSTM_TEST_PAUSE_EPOCH, and is off without them', () => {
  assert.equal(testPauseFromEnv({}), undefined);
  assert.deepEqual(testPauseFromEnv({ LSTM_TEST_PAUSE_AT: 'checkpoint' }), { at: 'checkpoint', epoch: 1 });
  assert.deepEqual(testPauseFromEnv({ LSTM_TEST_PAUSE_AT: 'epoch', LSTM_TEST_PAUSE_EPOCH: '4' }), { at: 'epoch', epoch: 4 });
});
