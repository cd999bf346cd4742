import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { initParams } from '../../src/model/params.js';
import { CheckpointError, DamagedCheckpointError, deserializeCheckpoint, serializeCheckpoint, type Checkpoint } from '../../src/train/checkpoint.js';
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
  for (const [kind, layers] of [
    ['scratch', 1],
    ['concise', 1],
    ['concise', 3],
  ] as const) {
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

test("early stopping's best weights ride along bit-exact when given, after the weights; a checkpoint without them reads as before", () => {
  for (const [kind, layers] of [
    ['scratch', 1],
    ['concise', 2],
  ] as const) {
    const plain = checkpointOf(kind, layers);
    const ckpt: Checkpoint = { ...plain, earlyStopping: { bestValidPerplexity: 4.5, bestEpoch: 5 }, bestWeights: initParams(plain.config, new Rng(10)) };
    const bytes = serializeCheckpoint(ckpt);
    const back = deserializeCheckpoint(bytes);
    for (const [name, t] of Object.entries(ckpt.bestWeights!)) {
      assert.deepEqual(back.bestWeights![name].shape, t.shape);
      assert.deepEqual(Buffer.from(back.bestWeights![name].data.buffer), Buffer.from(t.data.buffer), `best ${name} bit-exact`);
      assert.deepEqual(Buffer.from(back.weights[name].data.buffer), Buffer.from(plain.weights[name].data.buffer), `${name} bit-exact`);
    }
    assert.deepEqual(back.earlyStopping, ckpt.earlyStopping);
    assert.ok(!('bestParams' in back), 'the table stays in the header');
    // the weights keep their places, the best weights follow: a reader that knows only `params` reads the model as before
    const header = (b: Buffer) => JSON.parse(b.toString('utf8', 48, 48 + b.readUInt32LE(12)));
    const h = header(bytes);
    assert.deepEqual(h.params, header(serializeCheckpoint(plain)).params);
    const total = h.params.reduce((n: number, p: { length: number }) => n + p.length, 0);
    assert.equal(h.bestParams[0].offset, total);
    assert.equal(deserializeCheckpoint(serializeCheckpoint(plain)).bestWeights, undefined);
  }
});

test("the scratch kind has the seed's 14 parameters, initialised N(0, 0.01²) with zero biases", () => {
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
  assert.ok(
    w['dense/bias'].data.every((v) => Math.abs(v) <= k),
    'dense/bias',
  );
  for (const name of ['lstm_l0/kernel', 'lstm_l1/recurrent_kernel', 'dense/kernel']) {
    const d = w[name].data;
    assert.ok(
      d.every((v) => Math.abs(v) <= k),
      name,
    );
    const variance = d.reduce((s, v) => s + v * v, 0) / d.length;
    assert.ok(Math.abs(variance - (k * k) / 3) < (0.1 * (k * k)) / 3, `${name}: uniform variance k²/3`);
  }
  const b = w['lstm_l0/bias'].data;
  assert.ok(b.some((v) => Math.abs(v) > k) && b.every((v) => Math.abs(v) <= 2 * k), 'sum of two uniforms spans ±2k');
  assert.deepEqual(w['lstm_l1/kernel'].shape, [H, 4 * H]);
});

test('unreadable checkpoints are clear errors; damage is told apart from a version this build does not read', () => {
  const good = serializeCheckpoint(checkpointOf('scratch'));
  const damaged = (e: unknown) => e instanceof DamagedCheckpointError;
  assert.throws(
    () => deserializeCheckpoint(Buffer.from('hello world, not a checkpoint')),
    (e: Error) => damaged(e) && /bad magic/.test(e.message),
  );
  assert.throws(
    () => deserializeCheckpoint(good.subarray(0, good.length - 10)),
    (e: Error) => damaged(e) && /damaged|truncated/.test(e.message),
  );
  const wrongVersion = Buffer.from(good);
  wrongVersion.writeUInt32LE(99, 8);
  assert.throws(
    () => deserializeCheckpoint(wrongVersion),
    (e: Error) => e instanceof CheckpointError && !damaged(e) && /version 99/.test((e as Error).message),
  );
  const tooLong = Buffer.from(good);
  tooLong.writeUInt32LE(good.length, 12); // the header length past the end
  assert.throws(
    () => deserializeCheckpoint(tooLong),
    (e: Error) => damaged(e) && /truncated/.test(e.message),
  );
});

/** A version 3 checkpoint rewritten as version 1 or 2 (the formats files of older builds have). */
function olderVersion(v3: Buffer, version: 1 | 2): Buffer {
  const headerLen = v3.readUInt32LE(12);
  const start = 16 + 32;
  const base = start + headerLen + ((4 - ((start + headerLen) % 4)) % 4);
  const data = v3.subarray(base);
  const header = JSON.parse(v3.toString('utf8', start, start + headerLen));
  if (version === 2) header.weightsSha256 = createHash('sha256').update(data).digest('hex');
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((16 + h.length) % 4)) % 4;
  const out = Buffer.alloc(16 + h.length + pad + data.length);
  out.write('LSTMCKPT', 0, 'latin1');
  out.writeUInt32LE(version, 8);
  out.writeUInt32LE(h.length, 12);
  h.copy(out, 16);
  data.copy(out, 16 + h.length + pad);
  return out;
}

test('a damaged byte anywhere after the first 16 — weights or header — is found (version 3 digests both); versions 1 and 2 still read', () => {
  const good = serializeCheckpoint(checkpointOf('scratch'));
  assert.equal(good.readUInt32LE(8), 3);
  const headerLen = good.readUInt32LE(12);
  const start = 16 + 32;
  const base = start + headerLen + ((4 - ((start + headerLen) % 4)) % 4);
  const vocabAt = good.indexOf('"vocab"', start) + 12; // inside the vocabulary's first tokens
  for (const at of [16, start, vocabAt, start + headerLen - 2, base, base + 1234, good.length - 1]) {
    const flipped = Buffer.from(good);
    flipped[at] ^= 0x01; // a header stays parseable, a weight stays a finite float: only the digest can tell
    assert.throws(
      () => deserializeCheckpoint(flipped),
      (e: Error) => e instanceof DamagedCheckpointError,
      `byte ${at}`,
    );
  }
  const a = deserializeCheckpoint(good);
  for (const version of [1, 2] as const) {
    const older = olderVersion(good, version);
    const b = deserializeCheckpoint(older);
    assert.deepEqual(Object.keys(b.weights), Object.keys(a.weights));
    for (const k of Object.keys(a.weights)) assert.deepEqual(b.weights[k].data, a.weights[k].data);
    assert.deepEqual(b.vocab, a.vocab);
  }
  // version 2: a damaged weight byte is found by its weights digest
  const v2 = olderVersion(good, 2);
  const flipped = Buffer.from(v2);
  flipped[v2.length - 3] ^= 0x10;
  assert.throws(() => deserializeCheckpoint(flipped), DamagedCheckpointError);
});
