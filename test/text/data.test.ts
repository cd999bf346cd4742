import { test } from 'node:test';
import assert from 'node:assert/strict';
import { minCorpusTokens, seqDataIterRandom, seqDataIterSequential } from '../../src/text/data.js';
import { Rng } from '../../src/text/rng.js';

const corpus = Int32Array.from({ length: 35 }, (_, i) => i); // d2l's my_seq = range(35)

test('sequential partitioning: shapes, Y = X + 1, rows continue across minibatches, offset in 0..numSteps', () => {
  const offsets = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const batches = [...seqDataIterSequential(corpus, 2, 5, new Rng(seed))];
    const offset = batches[0].X[0];
    offsets.add(offset);
    const rowLen = Math.floor((35 - offset - 1) / 2);
    assert.equal(batches.length, Math.floor(rowLen / 5));
    for (const [i, b] of batches.entries()) {
      assert.equal(b.X.length, 10);
      for (let k = 0; k < 10; k++) assert.equal(b.Y[k], b.X[k] + 1);
      for (let r = 0; r < 2; r++) assert.equal(b.X[r * 5], offset + r * rowLen + i * 5, 'row r of batch i+1 continues row r of batch i');
    }
  }
  assert.deepEqual(
    [...offsets].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5],
    'random.randint(0, num_steps) is inclusive',
  );
});

test('random sampling: every subsequence at most once per epoch, Y = X + 1, start offset in 0..numSteps-1', () => {
  const starts = new Set<number>();
  for (let seed = 0; seed < 100; seed++) {
    const batches = [...seqDataIterRandom(corpus, 2, 5, new Rng(seed))];
    const firsts = batches.flatMap((b) => [b.X[0], b.X[5]]);
    assert.equal(new Set(firsts).size, firsts.length);
    const start = Math.min(...firsts) % 5;
    starts.add(start);
    const numSubseqs = Math.floor((35 - start - 1) / 5);
    assert.equal(batches.length, Math.floor(numSubseqs / 2));
    for (const b of batches) for (let k = 0; k < 10; k++) assert.equal(b.Y[k], b.X[k] + 1);
    for (const f of firsts) assert.equal((f - start) % 5, 0, 'subsequences start on the numSteps grid');
  }
  assert.deepEqual([...starts].sort(), [0, 1, 2, 3, 4]);
});

test('minCorpusTokens gives at least one minibatch under every offset', () => {
  for (const [B, T] of [
    [2, 5],
    [32, 35],
    [1, 1],
    [3, 7],
  ]) {
    const n = minCorpusTokens(B, T);
    const c = Int32Array.from({ length: n }, (_, i) => i);
    for (let seed = 0; seed < 50; seed++) {
      assert.ok([...seqDataIterSequential(c, B, T, new Rng(seed))].length >= 1);
      assert.ok([...seqDataIterRandom(c, B, T, new Rng(seed))].length >= 1);
    }
  }
});

test('the RNG is deterministic and resumable from its state', () => {
  const a = new Rng(42);
  for (let i = 0; i < 10; i++) a.nextUint32();
  const b = new Rng(a.state);
  assert.deepEqual(
    Array.from({ length: 5 }, () => a.nextUint32()),
    Array.from({ length: 5 }, () => b.nextUint32()),
  );
  const xs = Array.from({ length: 20000 }, () => new Rng(7).normal());
  assert.equal(new Set(xs).size, 1, 'same seed, same draw');
  const r = new Rng(1);
  const ns = Array.from({ length: 20000 }, () => r.normal());
  const mean = ns.reduce((s, x) => s + x, 0) / ns.length;
  const sd = Math.sqrt(ns.reduce((s, x) => s + (x - mean) ** 2, 0) / ns.length);
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(sd - 1) < 0.03, `normal(): mean ${mean}, sd ${sd}`);
});
