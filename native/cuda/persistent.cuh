// Persistent recurrent kernels: one launch runs all T steps of one layer's recurrence (forward, or
// backward through time), instead of one CellForward / CellBackward launch per step. Block r owns
// hidden units [r·U, r·U + U) and keeps its part of the recurrent weights in shared memory for all
// the steps; the blocks meet at a grid-wide barrier between steps (a cooperative launch), and
// exchange H_t (forward) or dA_{t+1} (backward) through global memory, which stays in L2.
//
// Single-source like kernels.cuh: a kernel is a struct with three phases whose bodies are
// __host__ __device__ functions of (block, thread):
//   load_weights   once, before the first step         (then __syncthreads)
//   load_state     per step: what the step reads from other blocks → shared memory
//                                                      (then __syncthreads)
//   step           per step: thread (b, u) updates the cell of row b, unit r·U + u
//                                                      (then the grid barrier)
// The device kernel (lstm_cuda.cu) runs them with the barriers between; the host executor
// (host_exec.h) runs each phase for every thread of every block before the next phase, which is
// what the barriers guarantee. The barriers themselves, shared memory as hardware and the
// co-residency of the blocks are what only a GPU checks.
//
// Used where the shapes fit (persistent_fits below and the device's occupancy) and
// LSTM_CUDA_RECURRENT=persistent; the per-step kernels stay the default and the fallback.
#pragma once
#include "kernels.cuh"

namespace lstm::cuda {

// Reads a value another block wrote in this launch, after the grid barrier: from L2, not from
// this SM's L1 (which is not coherent with other SMs' writes).
LSTM_HD float load_exchanged(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldcg(p);
#else
  return *p;
#endif
}

constexpr int kPersistentUnits = 8;                 // hidden units per block
constexpr size_t kPersistentSmemBytes = 96 * 1024;  // at most, so two blocks fit an SM

// Forward through time of one layer. On entry gates[t] holds the input projection X_t·Wx + b of
// every step (EmbedGather / Affine) and h, c slot 0 the initial state; on exit gates holds the
// activations, c and h slots 1…T and tanh_c as CellForward leaves them.
struct RecurrentForward {
  static constexpr int U = kPersistentUnits;
  int B, H, T;
  const float* Wh;  // (H, 4H)
  float *gates, *h, *c, *tanh_c;

  LSTM_HD int blocks() const { return (H + U - 1) / U; }
  LSTM_HD int block_threads() const { return B * U; }
  LSTM_HD int steps() const { return T; }
  LSTM_HD int time_of(int s) const { return s; }
  // W (H, 4U): the block's columns of Wh, gate-major; hs (B, H + 1): H_{t−1}, rows padded so the
  // rows a warp reads at one k fall in different banks
  LSTM_HD size_t smem_floats() const { return (size_t)H * 4 * U + (size_t)B * (H + 1); }

  LSTM_HD void load_weights(int r, int tid, float* smem) const {
    const size_t n = (size_t)H * 4 * U, G = 4 * (size_t)H;
    for (size_t e = tid; e < n; e += block_threads()) {
      const size_t k = e / (4 * U), q = e % (4 * U), g = q / U, j = (size_t)r * U + q % U;
      smem[e] = j < (size_t)H ? Wh[k * G + g * H + j] : 0.0f;
    }
  }

  LSTM_HD void load_state(int, int tid, int t, float* smem) const {
    float* hs = smem + (size_t)H * 4 * U;
    const float* src = h + (size_t)t * B * H;  // slot t = H_{t−1}
    for (size_t e = tid; e < (size_t)B * H; e += block_threads())
      hs[(e / H) * (H + 1) + e % H] = load_exchanged(src + e);
  }

  LSTM_HD void step(int r, int tid, int t, const float* smem) const {
    const size_t b = tid / U, u = tid % U, j = (size_t)r * U + u, G = 4 * (size_t)H;
    if (j >= (size_t)H) return;
    const float* W = smem;
    const float* hp = smem + (size_t)H * 4 * U + b * (H + 1);
    const size_t row = (size_t)t * B + b, i = b * H + j, BH = (size_t)B * H;
    float* z = gates + row * G + j;
    float zi = z[0], zf = z[H], zg = z[2 * H], zo = z[3 * H];
    for (int k = 0; k < H; k++) {
      const float x = hp[k];
      const float* w = W + (size_t)k * 4 * U + u;
      zi += x * w[0];
      zf += x * w[U];
      zg += x * w[2 * U];
      zo += x * w[3 * U];
    }
    const float I = sigmoid(zi), F = sigmoid(zf), Cc = tanhf(zg), O = sigmoid(zo);
    // c slot t was written by this same thread at step t − 1 (or before the launch)
    const float C = F * c[t * BH + i] + I * Cc;
    const float tc = tanhf(C);
    z[0] = I;
    z[H] = F;
    z[2 * H] = Cc;
    z[3 * H] = O;
    c[(t + 1) * BH + i] = C;
    tanh_c[t * BH + i] = tc;
    h[(t + 1) * BH + i] = O * tc;
  }
};

// Backward through time of one layer, steps T−1 … 0: what the per-step CellBackward launches do
// (dH_t = dH_above[t] + dA_{t+1}·Whᵀ, then the cell's backward and the C carry), with the block's
// rows of Wh in shared memory. dc (B, H) is carried by the thread that owns the cell.
struct RecurrentBackward {
  static constexpr int U = kPersistentUnits;
  int B, H, T;
  const float* Wh;  // (H, 4H)
  const float *gates, *c, *tanh_c, *dH_above;
  float *dc, *dA;

  LSTM_HD int blocks() const { return (H + U - 1) / U; }
  LSTM_HD int block_threads() const { return B * U; }
  LSTM_HD int steps() const { return T; }
  LSTM_HD int time_of(int s) const { return T - 1 - s; }
  // Wr (U, 4H + 1): the block's rows of Wh, padded so the units a warp reads at one k fall in
  // different banks
  LSTM_HD size_t smem_floats() const { return (size_t)U * (4 * H + 1); }

  LSTM_HD void load_weights(int r, int tid, float* smem) const {
    const size_t G = 4 * (size_t)H, n = (size_t)U * G;
    for (size_t e = tid; e < n; e += block_threads()) {
      const size_t u = e / G, k = e % G, j = (size_t)r * U + u;
      smem[u * (G + 1) + k] = j < (size_t)H ? Wh[j * G + k] : 0.0f;
    }
  }

  // dA_{t+1} is read straight from global memory (L2) in step(): (B, 4H) does not fit beside Wr
  LSTM_HD void load_state(int, int, int, float*) const {}

  LSTM_HD void step(int r, int tid, int t, const float* smem) const {
    const size_t b = tid / U, u = tid % U, j = (size_t)r * U + u, G = 4 * (size_t)H;
    if (j >= (size_t)H) return;
    const size_t row = (size_t)t * B + b, i = b * H + j, BH = (size_t)B * H;
    float dh = dH_above[row * H + j];
    float dc_next = 0.0f;
    if (t < T - 1) {
      const float* d = dA + (row + B) * G;  // dA_{t+1}, row b
      const float* w = smem + u * (G + 1);
      for (size_t k = 0; k < G; k++) dh += load_exchanged(d + k) * w[k];
      dc_next = dc[i];
    }
    const float* a = gates + row * G + j;
    const float I = a[0], F = a[H], Cc = a[2 * H], O = a[3 * H];
    const float tc = tanh_c[t * BH + i];
    const float d_c = dh * O * (1.0f - tc * tc) + dc_next;
    float* out = dA + row * G + j;
    out[0] = d_c * Cc * I * (1.0f - I);
    out[H] = d_c * c[t * BH + i] * F * (1.0f - F);
    out[2 * H] = d_c * I * (1.0f - Cc * Cc);
    out[3 * H] = dh * tc * O * (1.0f - O);
    dc[i] = d_c * F;
  }
};

// Whether a layer's recurrence fits the persistent kernels: a block of B·U ≤ 1024 threads and the
// shared memory of both directions within kPersistentSmemBytes. (The device also checks that all
// blocks can be resident at once.)
inline bool persistent_fits(int B, int H, int T) {
  if (B < 1 || H < 1 || T < 1 || B * kPersistentUnits > 1024) return false;
  const RecurrentForward f{B, H, T, nullptr, nullptr, nullptr, nullptr, nullptr};
  const RecurrentBackward g{B, H, T, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  return f.smem_floats() * sizeof(float) <= kPersistentSmemBytes &&
         g.smem_floats() * sizeof(float) <= kPersistentSmemBytes;
}

}  // namespace lstm::cuda
