// The WebAssembly SIMD kernels of the tfjs fast path (lstmCellKernels.as.ts via wasmKernels.ts) against
// the same functions on the plain-JS 'cpu' backend, where they run as tfjs ops (the reference); and the
// committed lstmCellKernels.wasm against a fresh build of its source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../src/text/rng.js';
import { initTfjsBackend } from '../../../src/model/tfjs/backend.js';
import { gateConstants, lstmCell, lstmCellBackward, type CellStep } from '../../../src/model/tfjs/fusedLstm.js';
import { checkTokens } from '../../../src/model/tfjs/common.js';
import { scatterAddSteps, transpose2d, transposeSteps } from '../../../src/model/tfjs/wasmKernels.js';

process.env.TFJS_BACKEND = 'wasm';
await initTfjsBackend(() => {});

const root = new URL('../../../', import.meta.url);

type Arrays = Float32Array[];

/** Runs `f` on `backend` with fresh tensors made from `inputs` (shapes given) and returns its outputs' values. */
async function on(backend: 'wasm' | 'cpu', inputs: Array<{ data: Float32Array; shape: number[] }>, f: (xs: tf.Tensor2D[]) => tf.Tensor[]): Promise<Arrays> {
  assert.ok(await tf.setBackend(backend));
  const xs = inputs.map((x) => tf.tensor2d(x.data, x.shape as [number, number]));
  const before = tf.memory().numTensors;
  const outs = tf.tidy(() => f(xs));
  const values = outs.map((o) => new Float32Array(o.dataSync()));
  tf.dispose([...outs, ...xs]);
  assert.equal(tf.memory().numTensors, before - xs.length, `${backend}: no tensors left behind`);
  return values;
}

function random(rng: Rng, n: number, scale: number): Float32Array {
  return new Float32Array(n).map(() => rng.normal() * scale);
}

function uniform(rng: Rng, n: number): Float32Array {
  return new Float32Array(n).map(() => 0.001 + 0.998 * rng.random());
}

function assertClose(a: Float32Array, b: Float32Array, atol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst <= atol, `${what}: max |wasm − ops| = ${worst} > ${atol}`);
}

const B = 6; // not a multiple of 4: the transpose kernel's row tail runs too
const H = 8;
const G = 4 * H;

test('the committed lstmCellKernels.wasm is the build of lstmCellKernels.as.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lstm-wasm-'));
  try {
    const out = join(dir, 'k.wasm');
    const script = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).scripts['build:wasm'] as string;
    const args = script
      .split(/\s+/)
      .slice(1)
      .map((a) => (a === 'src/model/tfjs/lstmCellKernels.wasm' ? out : a));
    execFileSync(new URL('node_modules/.bin/asc', root).pathname, args, { cwd: root.pathname, stdio: 'pipe' });
    assert.deepEqual(readFileSync(out), readFileSync(new URL('src/model/tfjs/lstmCellKernels.wasm', root)), 'run `npm run build:wasm` and commit the result');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cell forward: the kernel (σ of gates, C, tanh C, H) equals the ops, over saturating inputs too', async () => {
  const rng = new Rng(3);
  const inputs = [
    { data: random(rng, H * G, 0.3), shape: [H, G] }, // Wh
    { data: random(rng, B * G, 4), shape: [B, G] }, // xw: large pre-activations saturate σ and tanh
    { data: random(rng, B * H, 1), shape: [B, H] }, // Hprev
    { data: random(rng, B * H, 3), shape: [B, H] }, // Cprev
  ];
  const k = () => gateConstants(H);
  const run = (xs: tf.Tensor2D[]) => {
    const [Wh, xw, Hprev, Cprev] = xs;
    const s = lstmCell(xw, [Hprev, Cprev], Wh, k());
    return [s.S, s.C, s.tanhC, s.H];
  };
  const wasm = await on('wasm', inputs, run);
  const ops = await on('cpu', inputs, run);
  ['S', 'C', 'tanhC', 'H'].forEach((name, i) => assertClose(wasm[i], ops[i], 2e-6, name));
});

test('cell forward, layer 0: the step input as rows of the token table (repeated tokens) equals the gathered matrix', async () => {
  const rng = new Rng(9);
  const V = 5;
  const tokens = new Int32Array([3, 0, 3, 4, 1, 3]); // B rows
  const inputs = [
    { data: random(rng, H * G, 0.3), shape: [H, G] }, // Wh
    { data: random(rng, V * G, 2), shape: [V, G] }, // table
    { data: random(rng, B * H, 1), shape: [B, H] },
    { data: random(rng, B * H, 1), shape: [B, H] },
  ];
  const run = (xs: tf.Tensor2D[]) => {
    const [Wh, table, Hprev, Cprev] = xs;
    const s = lstmCell({ table, rows: tf.tensor1d(tokens, 'int32') }, [Hprev, Cprev], Wh, gateConstants(H));
    return [s.S, s.H];
  };
  const wasm = await on('wasm', inputs, run);
  const ops = await on('cpu', inputs, run);
  assertClose(wasm[0], ops[0], 2e-6, 'S');
  assertClose(wasm[1], ops[1], 2e-6, 'H');
  assert.throws(() => checkTokens(new Int32Array([0, V]), V), /token id 5 is not in \[0, 4\]/);
});

test('transpose2d: equals tf.transpose (row counts not a multiple of 4; columns not a multiple of 4 fall back)', async () => {
  const rng = new Rng(10);
  for (const shape of [
    [6, 8],
    [13, 32],
    [4, 6],
  ]) {
    const inputs = [{ data: random(rng, shape[0] * shape[1], 1), shape }];
    const [wasm] = await on('wasm', inputs, (xs) => [transpose2d(xs[0])]);
    const [ops] = await on('cpu', inputs, (xs) => [tf.transpose(xs[0])]);
    assertClose(wasm, ops, 0, `transpose of ${shape}`);
  }
});

test('cell forward: a NaN pre-activation stays NaN (divergence is not hidden by the clamps)', async () => {
  const data = new Float32Array(B * G).fill(0.5);
  data[3] = NaN;
  const [S, , , Hout] = await on(
    'wasm',
    [
      { data, shape: [B, G] },
      { data: new Float32Array(H * G), shape: [H, G] },
      { data: new Float32Array(B * H), shape: [B, H] },
    ],
    (xs) => {
      const [xw, Wh, zeros] = xs;
      const s = lstmCell(xw, [zeros, zeros], Wh, gateConstants(H));
      return [s.S, s.C, s.tanhC, s.H];
    },
  );
  assert.ok(Number.isNaN(S[3]), 'σ(NaN) is NaN');
  assert.ok(Number.isNaN(Hout[3]), 'and so is H in that column');
  assert.ok(Number.isFinite(Hout[4]), 'other columns are not touched');
});

for (const [label, hasNext] of [
  ['last step (nothing from t+1)', false],
  ['inner step (dHnext, dCnext)', true],
] as const) {
  test(`cell backward, ${label}: the kernel (dZ, dCprev) equals the ops`, async () => {
    const rng = new Rng(hasNext ? 5 : 4);
    const inputs = [
      { data: uniform(rng, B * G), shape: [B, G] }, // S, in (0, 1)
      { data: random(rng, B * H, 2), shape: [B, H] }, // Cprev
      { data: random(rng, B * H, 0.5).map(Math.tanh), shape: [B, H] }, // tanh C
      { data: random(rng, B * H, 1), shape: [B, H] }, // dH
      { data: random(rng, B * H, 1), shape: [B, H] }, // dHnext
      { data: random(rng, B * H, 1), shape: [B, H] }, // dCnext
    ];
    const run = (xs: tf.Tensor2D[]) => {
      const [S, Cprev, tanhC, dH, dHnext, dCnext] = xs;
      const step = { S, tanhC } as CellStep; // the backward reads only these of the step
      const g = lstmCellBackward(step, Cprev, dH, hasNext ? dHnext : null, hasNext ? dCnext : null, gateConstants(H));
      return [g.dZ, g.dCprev];
    };
    const wasm = await on('wasm', inputs, run);
    const ops = await on('cpu', inputs, run);
    assertClose(wasm[0], ops[0], 1e-6, 'dZ');
    assertClose(wasm[1], ops[1], 1e-6, 'dCprev');
  });
}

test('transposeSteps: the transpose of the steps concatenated, and its row sums', async () => {
  const rng = new Rng(6);
  const steps = Array.from({ length: 5 }, () => ({ data: random(rng, B * G, 1), shape: [B, G] }));
  const run = (xs: tf.Tensor2D[]) => transposeSteps(xs);
  const wasm = await on('wasm', steps, run);
  const ops = await on('cpu', steps, run);
  assertClose(wasm[0], ops[0], 0, 'transpose');
  assertClose(wasm[1], ops[1], 1e-5, 'row sums');
  // and by definition: element (g, t·B + b) is step t's (b, g)
  assert.equal(wasm[0][7 * (5 * B) + 2 * B + 3], steps[2].data[3 * G + 7]);
});

test('scatterAddSteps: rows added into their tokens’ rows, repeated tokens summed, untouched rows zero', async () => {
  const rng = new Rng(7);
  const steps = Array.from({ length: 3 }, () => ({ data: random(rng, B * G, 1), shape: [B, G] }));
  const V = 10;
  const indices = new Int32Array(3 * B).map((_, i) => (i * 7) % 6); // tokens 0..5 repeated; 6..9 never
  const run = (xs: tf.Tensor2D[]) => [scatterAddSteps(xs, indices, V)];
  const [wasm] = await on('wasm', steps, run);
  const [ops] = await on('cpu', steps, run);
  assertClose(wasm, ops, 1e-5, 'scatter-add');
  assert.ok(
    wasm.subarray(6 * G).every((x) => x === 0),
    'rows of tokens not present are zero',
  );
  assert.ok(await tf.setBackend('wasm'));
  tf.tidy(() => {
    const step = tf.zeros([1, G]) as tf.Tensor2D;
    assert.throws(() => scatterAddSteps([step], new Int32Array([V]), V), /token id 10 is not in \[0, 9\]/);
    assert.throws(() => scatterAddSteps([step], new Int32Array([1, 2]), V), /2 indices for 1 steps of 1 rows/);
  });
});

test('kernels keep working after the wasm heap grows (views are taken after every allocation)', async () => {
  const rng = new Rng(8);
  const inputs = [
    { data: random(rng, H * G, 0.3), shape: [H, G] },
    { data: random(rng, B * G, 1), shape: [B, G] },
    { data: random(rng, B * H, 1), shape: [B, H] },
    { data: random(rng, B * H, 1), shape: [B, H] },
  ];
  const run = (xs: tf.Tensor2D[]) => {
    const [Wh, xw, Hprev, Cprev] = xs;
    const first = lstmCell(xw, [Hprev, Cprev], Wh, gateConstants(H));
    const big = tf.zeros([(64 * 1024 * 1024) / 4]); // 64 MB: the heap must grow
    const second = lstmCell(xw, [first.H, first.C], Wh, gateConstants(H));
    big.dispose();
    return [second.H, second.C];
  };
  const wasm = await on('wasm', inputs, run);
  const ops = await on('cpu', inputs, run);
  assertClose(wasm[0], ops[0], 2e-6, 'H after growth');
  assertClose(wasm[1], ops[1], 2e-6, 'C after growth');
});
