// The LSTM cell's elementwise part as WebAssembly SIMD kernels (AssemblyScript; `npm run build:wasm`
// compiles this file to lstmCellKernels.wasm, which is committed and checked to be its build).
// lstmCellForward / lstmCellBackward in fusedLstm.ts are the same equations as tfjs ops: the reference
// these are tested against (test/model/tfjs/cell-kernels.test.ts). wasmKernels.ts runs them on the
// tfjs wasm backend's own memory, so tensors are read and written in place.
//
// Layout: rows are batch elements; the gates (B, 4H) are the blocks i, f, c, o of H columns each; the
// candidate block's pre-activation arrives scaled by 2 (σ(2z) = (tanh z + 1)/2, fusedLstm.ts).
// Pointers are byte offsets of float32 arrays; H is a multiple of 4.

/** tanh as a rational function (degree 13 / 6, input clamped where tanh is ±1 in float32). */
// @ts-ignore: decorator
@inline function tanh4(x: v128): v128 {
  const limit = f32x4.splat(7.90531110763549805);
  const v = f32x4.pmin(f32x4.pmax(x, f32x4.neg(limit)), limit);
  const v2 = f32x4.mul(v, v);
  let p = f32x4.splat(-2.76076847742355e-16);
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(2.00018790482477e-13));
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(-8.60467152213735e-11));
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(5.12229709037114e-8));
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(1.48572235717979e-5));
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(6.37261928875436e-4));
  p = f32x4.add(f32x4.mul(p, v2), f32x4.splat(4.89352455891786e-3));
  p = f32x4.mul(p, v);
  let q = f32x4.splat(1.19825839466702e-6);
  q = f32x4.add(f32x4.mul(q, v2), f32x4.splat(1.18534705686654e-4));
  q = f32x4.add(f32x4.mul(q, v2), f32x4.splat(2.268434632439e-3));
  q = f32x4.add(f32x4.mul(q, v2), f32x4.splat(4.89352518554385e-3));
  return f32x4.div(p, q);
}

/** σ(z) = (1 + tanh(z/2)) / 2 */
// @ts-ignore: decorator
@inline function sigmoid4(z: v128): v128 {
  const half = f32x4.splat(0.5);
  return f32x4.add(half, f32x4.mul(half, tanh4(f32x4.mul(half, z))));
}

/**
 * Forward of one step. In: P = H_{t−1}·W_h (B, 4H); the step's input projection (bias included):
 * XW (B, 4H), or with `tokens` (B int32) row tokens[b] of the table XW (V, 4H) for row b (layer 0,
 * one-hot inputs); both scaled. Cprev (B, H). Out: S = σ(P + XW) (B, 4H) = [I, F, σ(2 z_c), O];
 * C̃ = 2σ(2 z_c) − 1 = tanh z_c; C = F⊙Cprev + I⊙C̃; tanhC = tanh C; Hout = O⊙tanh C (each (B, H)).
 */
export function lstmCellForward(P: usize, XW: usize, tokens: usize, Cprev: usize, S: usize, C: usize, tanhC: usize, Hout: usize, B: i32, H: i32): void {
  const one = f32x4.splat(1);
  const two = f32x4.splat(2);
  const block = <usize>H << 2; // bytes per gate block of a row
  for (let b = 0; b < B; b++) {
    const g = <usize>(b * 4 * H) << 2;
    const r = <usize>(b * H) << 2;
    const xw = tokens ? XW + <usize>load<i32>(tokens + (<usize>b << 2)) * 4 * block : XW + g;
    for (let j = 0; j < H; j += 4) {
      const gi = g + (<usize>j << 2);
      const gf = gi + block;
      const gc = gf + block;
      const go = gc + block;
      const xi = xw + (<usize>j << 2);
      const I = sigmoid4(f32x4.add(v128.load(P + gi), v128.load(xi)));
      const F = sigmoid4(f32x4.add(v128.load(P + gf), v128.load(xi + block)));
      const Sc = sigmoid4(f32x4.add(v128.load(P + gc), v128.load(xi + 2 * block)));
      const O = sigmoid4(f32x4.add(v128.load(P + go), v128.load(xi + 3 * block)));
      v128.store(S + gi, I);
      v128.store(S + gf, F);
      v128.store(S + gc, Sc);
      v128.store(S + go, O);
      const x = r + (<usize>j << 2);
      const C_tilda = f32x4.sub(f32x4.mul(two, Sc), one);
      const c = f32x4.add(f32x4.mul(F, v128.load(Cprev + x)), f32x4.mul(I, C_tilda));
      const t = tanh4(c);
      v128.store(C + x, c);
      v128.store(tanhC + x, t);
      v128.store(Hout + x, f32x4.mul(O, t));
    }
  }
}

/**
 * Backward of one step. In: S, Cprev, tanhC from the forward; dH = the loss's gradient at H_t;
 * dHnext, dCnext = what flows back from step t+1 (0: none, the last step). Out: dZ (B, 4H), the
 * gradient at the unscaled pre-activations, and dCprev (B, H):
 * dH' = dH + dHnext; dC = dCnext + dH'⊙O⊙(1 − tanh²C);
 * dZ = [dC⊙C̃⊙I(1−I), dC⊙Cprev⊙F(1−F), dC⊙I⊙4σ(2z_c)(1−σ(2z_c)), dH'⊙tanhC⊙O(1−O)]; dCprev = dC⊙F.
 */
export function lstmCellBackward(S: usize, Cprev: usize, tanhC: usize, dH: usize, dHnext: usize, dCnext: usize, dZ: usize, dCprev: usize, B: i32, H: i32): void {
  const one = f32x4.splat(1);
  const two = f32x4.splat(2);
  const four = f32x4.splat(4);
  const zero = f32x4.splat(0);
  const block = <usize>H << 2;
  for (let b = 0; b < B; b++) {
    const g = <usize>(b * 4 * H) << 2;
    const r = <usize>(b * H) << 2;
    for (let j = 0; j < H; j += 4) {
      const gi = g + (<usize>j << 2);
      const gf = gi + block;
      const gc = gf + block;
      const go = gc + block;
      const x = r + (<usize>j << 2);
      const I = v128.load(S + gi);
      const F = v128.load(S + gf);
      const Sc = v128.load(S + gc);
      const O = v128.load(S + go);
      const t = v128.load(tanhC + x);
      const dh = dHnext ? f32x4.add(v128.load(dH + x), v128.load(dHnext + x)) : v128.load(dH + x);
      const dcNext = dCnext ? v128.load(dCnext + x) : zero;
      const dC = f32x4.add(dcNext, f32x4.mul(f32x4.mul(dh, O), f32x4.sub(one, f32x4.mul(t, t))));
      const C_tilda = f32x4.sub(f32x4.mul(two, Sc), one);
      v128.store(dZ + gi, f32x4.mul(f32x4.mul(dC, C_tilda), f32x4.mul(I, f32x4.sub(one, I))));
      v128.store(dZ + gf, f32x4.mul(f32x4.mul(dC, v128.load(Cprev + x)), f32x4.mul(F, f32x4.sub(one, F))));
      v128.store(dZ + gc, f32x4.mul(f32x4.mul(dC, I), f32x4.mul(four, f32x4.mul(Sc, f32x4.sub(one, Sc)))));
      v128.store(dZ + go, f32x4.mul(f32x4.mul(dh, t), f32x4.mul(O, f32x4.sub(one, O))));
      v128.store(dCprev + x, f32x4.mul(dC, F));
    }
  }
}

/**
 * The weight-gradient side of the backward: a step's dZ (rows × cols) written transposed into the
 * columns [col0, col0 + rows) of dst (cols × ldDst), with its column sums added to sums (cols; 0:
 * none). Called once per step, this builds dZallᵀ (4H, T·B) and the bias gradient in one pass; called
 * once with col0 = 0, ldDst = rows, it is a plain transpose. cols is a multiple of 4.
 */
export function transposeStepInto(src: usize, rows: i32, cols: i32, dst: usize, ldDst: i32, col0: i32, sums: usize): void {
  const ld = <usize>ldDst << 2;
  const rowBytes = <usize>cols << 2;
  const rows4 = rows & ~3;
  // 4×4 blocks: four rows of four columns become four columns of four rows; columns outer, so each
  // destination row is written contiguously
  for (let c = 0; c < cols; c += 4) {
    const o = <usize>c << 2;
    const d0 = dst + <usize>c * ld + (<usize>col0 << 2);
    let sum = sums ? v128.load(sums + o) : f32x4.splat(0);
    for (let r = 0; r < rows4; r += 4) {
      const s0 = src + <usize>r * rowBytes + o;
      const a = v128.load(s0);
      const b = v128.load(s0 + rowBytes);
      const x = v128.load(s0 + 2 * rowBytes);
      const y = v128.load(s0 + 3 * rowBytes);
      sum = f32x4.add(sum, f32x4.add(f32x4.add(a, b), f32x4.add(x, y)));
      const ab01 = v128.shuffle<f32>(a, b, 0, 4, 1, 5); // a0 b0 a1 b1
      const ab23 = v128.shuffle<f32>(a, b, 2, 6, 3, 7); // a2 b2 a3 b3
      const xy01 = v128.shuffle<f32>(x, y, 0, 4, 1, 5);
      const xy23 = v128.shuffle<f32>(x, y, 2, 6, 3, 7);
      const d = d0 + (<usize>r << 2);
      v128.store(d, v128.shuffle<f32>(ab01, xy01, 0, 1, 4, 5)); // a0 b0 x0 y0
      v128.store(d + ld, v128.shuffle<f32>(ab01, xy01, 2, 3, 6, 7));
      v128.store(d + 2 * ld, v128.shuffle<f32>(ab23, xy23, 0, 1, 4, 5));
      v128.store(d + 3 * ld, v128.shuffle<f32>(ab23, xy23, 2, 3, 6, 7));
    }
    if (sums) v128.store(sums + o, sum);
  }
  let r = rows4;
  for (; r < rows; r++) {
    const s = src + <usize>r * rowBytes;
    for (let c = 0; c < cols; c++) {
      const v = load<f32>(s + (<usize>c << 2));
      if (sums) store<f32>(sums + (<usize>c << 2), load<f32>(sums + (<usize>c << 2)) + v);
      store<f32>(dst + <usize>c * ld + (<usize>(col0 + r) << 2), v);
    }
  }
}

/**
 * The gradient of a row gather (layer 0's input projection is the token's row of W_x): each row r of
 * a step's dZ (rows × cols) added to row tokens[r] of dst. dst must start zeroed.
 */
export function scatterAddRows(src: usize, rows: i32, cols: i32, tokens: usize, dst: usize): void {
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++) {
    const s = src + <usize>r * rowBytes;
    const d = dst + <usize>load<i32>(tokens + (<usize>r << 2)) * rowBytes;
    for (let c = 0; c < cols; c += 4) {
      const o = <usize>c << 2;
      v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
    }
  }
}
