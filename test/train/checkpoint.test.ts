import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initParams } from '../../src/model/params.js';
import { CheckpointError, deserializeCheckpoint, serializeCheckpoint, type Checkpoint } from '../../src/train/checkpoint.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { Rng } from '../../src/text/rng.js';

function checkpointOf(kind: 'scratch' | 'concise', numLayers = 1): Checkpoint {
  const config = { kind, vocabSize: 28, numHiddens: 12, numLayers };
  return {
    spec: parseJobSpec({ model: { kind, numHiddens: 12, numLayers } }),
    config,
    vocab: ['<unk>', ' ', 'e'],
    epoch: 7,
    rngState: new Rng(3).state,
    elapsedMs: 1234.5,
    perplexity: 3.25,
    engine: 'tfjs',
    backend: 'wasm',
    weights: initParams(config, new Rng(9)),
  };
}

test('save/load round-trip is bit-exact for both kinds', () => {
  for (const [kind, layers] of [['scratch', 1], ['concise', 1], ['concise', 3]] as const) {
    const ckpt = checkpointOf(kind, layers);
    const back = deserializeCheckpoint(serializeCheckpoint(ckpt));
    assert.deepEqual(Object.keys(back.weights), Object.keys(ckpt.weights), 'parameter order is kept');
    for (const [name, t] of Object.entries(ckpt.weights)) {
      assert.deepEqual(back.weights[name].shape, t.shape);
      assert.deepEqual(Buffer.from(back.weights[name].data.buffer), Buffer.from(t.data.buffer), `${name} bit-exact`);
    }
    const { weights: _a, ...meta } = ckpt;
    const { weights: _b, ...metaBack } = back;
    assert.deepEqual(metaBack, meta);
  }
});

test('the scratch kind has the seed\'s 14 parameters, initialised N(0, 0.01²) with zero biases', () => {
  const w = initParams({ kind: 'scratch', vocabSize: 28, numHiddens: 256, numLayers: 1 }, new Rng(0));
  assert.deepEqual(Object.keys(w), ['W_xi', 'W_hi', 'b_i', 'W_xf', 'W_hf', 'b_f', 'W_xo', 'W_ho', 'b_o', 'W_xc', 'W_hc', 'b_c', 'W_hq', 'b_q']);
  const x = w.W_hi;
  const sd = Math.sqrt(x.data.reduce((s, v) => s + v * v, 0) / x.data.length);
  assert.ok(Math.abs(sd - 0.01) < 0.0005, `sd ${sd}`);
  assert.ok(w.b_f.data.every((v) => v === 0));
});

test('the concise kind is initialised as PyTorch: U(-1/√H, 1/√H), bias = b_ih + b_hh', () => {
  const H = 256;
  const w = initParams({ kind: 'concise', vocabSize: 28, numHiddens: H, numLayers: 2 }, new Rng(0));
  const k = 1 / Math.sqrt(H);
  assert.ok(w['dense/bias'].data.every((v) => Math.abs(v) <= k), 'dense/bias');
  for (const name of ['lstm_l0/kernel', 'lstm_l1/recurrent_kernel', 'dense/kernel']) {
    const d = w[name].data;
    assert.ok(d.every((v) => Math.abs(v) <= k), name);
    const variance = d.reduce((s, v) => s + v * v, 0) / d.length;
    assert.ok(Math.abs(variance - (k * k) / 3) < 0.1 * (k * k) / 3, `${name}: uniform variance k²/3`);
  }
  const b = w['lstm_l0/bias'].data;
  assert.ok(b.some((v) => Math.abs(v) > k) && b.every((v) => Math.abs(v) <= 2 * k), 'sum of two uniforms spans ±2k');
  assert.deepEqual(w['lstm_l1/kernel'].shape, [H, 4 * H]);
});

test('unreadable checkpoints are clear errors', () => {
  const good = serializeCheckpoint(checkpointOf('scratch'));
  assert.throws(() => deserializeCheckpoint(Buffer.from('hello world, not a checkpoint')), (e: Error) => e instanceof CheckpointError && /bad magic/.test(e.message));
  assert.throws(() => deserializeCheckpoint(good.subarray(0, good.length - 10)), /truncated/);
  const wrongVersion = Buffer.from(good);
  wrongVersion.writeUInt32LE(99, 8);
  assert.throws(() => deserializeCheckpoint(wrongVersion), /version 99/);
  const corrupt = Buffer.from(good);
  corrupt.write('}}}}', 16);
  assert.throws(() => deserializeCheckpoint(corrupt), /corrupt checkpoint header/);
});

test('a damaged weight byte anywhere is found (version 2 keeps the weights\' SHA-256); version 1 files still read', () => {
  const good = serializeCheckpoint(checkpointOf('scratch'));
  assert.equal(good.readUInt32LE(8), 2);
  const headerLen = good.readUInt32LE(12);
  const base = 16 + headerLen + ((4 - ((16 + headerLen) % 4)) % 4);
  for (const at of [base, base + 1234, good.length - 1]) {
    const flipped = Buffer.from(good);
    flipped[at] ^= 0x10; // still a finite float: only the digest can tell
    assert.throws(() => deserializeCheckpoint(flipped), (e: Error) => e instanceof CheckpointError && /damaged/.test(e.message), `byte ${at}`);
  }
  // the same checkpoint as version 1 (no digest): read as before
  const header = JSON.parse(good.toString('utf8', 16, 16 + headerLen));
  delete header.weightsSha256;
  const h1 = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((16 + h1.length) % 4)) % 4;
  const v1 = Buffer.alloc(16 + h1.length + pad + (good.length - base));
  v1.write('LSTMCKPT', 0, 'latin1');
  v1.writeUInt32LE(1, 8);
  v1.writeUInt32LE(h1.length, 12);
  h1.copy(v1, 16);
  good.copy(v1, 16 + h1.length + pad, base);
  const a = deserializeCheckpoint(good);
  const b = deserializeCheckpoint(v1);
  assert.deepEqual(Object.keys(b.weights), Object.keys(a.weights));
  for (const k of Object.keys(a.weights)) assert.deepEqual(b.weights[k].data, a.weights[k].data);
});
