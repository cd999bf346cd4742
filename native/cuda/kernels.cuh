// The CUDA engine's kernels, single-source: each kernel is a struct whose operator()(i) is the body
// of thread i of a flat 1-D grid (i = blockIdx.x·blockDim.x + threadIdx.x; threads i ≥ threads()
// do nothing). The bodies are __host__ __device__: on the GPU a generic __global__ wrapper runs
// them (lstm_cuda.cu); in the host harness (native/test/cuda_host_check.cc) a loop runs every
// thread of the same grid on the CPU and the results are compared with the CPU engine.
//
// No kernel uses shared memory, warp shuffles or atomics, and no thread reads what another
// thread of the same launch writes: so running the threads one after another on the CPU computes
// exactly what the GPU computes (up to float rounding order), and the whole training step — not a
// model of it — is what the host harness checks. Reductions are two deterministic launches
// (per-thread partial sums, then one thread adding the partials).
//
// Layout (the same as the CPU engine's, native/src/lstm.h): rows are (time, batch) pairs in
// time-major order, row r = t·B + b; gate rows are (·, 4H) with column blocks i | f | g | o
// (input gate, forget gate, candidate cell C~, output gate); Wx (I, 4H), Wh (H, 4H), b (4H),
// Wq (H, V), bq (V), all row-major.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define LSTM_HD __host__ __device__ __forceinline__
#else
#define LSTM_HD inline
#endif

namespace lstm::cuda {

// Threads per block, on the GPU and in the host harness's emulation of the grid.
constexpr unsigned kBlockThreads = 256;

LSTM_HD float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---------------------------------------------------------------------------------------------
// forward

// tok[t·B + b] = X[b·T + t] (and the targets): the (B, T) minibatch to time-major rows.
struct TimeMajor {
  int B, T;
  const int32_t *X, *Y;
  int32_t *tok, *tgt;
  LSTM_HD size_t threads() const { return (size_t)B * T; }
  LSTM_HD void operator()(size_t i) const {
    const size_t b = i / T, t = i % T;
    tok[t * B + b] = X[i];
    tgt[t * B + b] = Y[i];
  }
};

// The initial state of a layer: zeros when *reset (the first minibatch of an epoch, or random
// sampling), else the carried (detached) final state of the previous minibatch.
struct LoadState {
  size_t n;  // B·H
  const int32_t* reset;
  const float *carried_h, *carried_c;
  float *h0, *c0;
  LSTM_HD size_t threads() const { return n; }
  LSTM_HD void operator()(size_t i) const {
    const bool zero = *reset != 0;
    h0[i] = zero ? 0.0f : carried_h[i];
    c0[i] = zero ? 0.0f : carried_c[i];
  }
};

// dst[i] = src[i]
struct Copy {
  size_t n;
  const float* src;
  float* dst;
  LSTM_HD size_t threads() const { return n; }
  LSTM_HD void operator()(size_t i) const { dst[i] = src[i]; }
};

// Input projection of layer 0 for all N rows: one-hot X_t · Wx + b is row tok[r] of Wx, plus b.
struct EmbedGather {
  int N, G;
  const int32_t* tok;
  const float *Wx, *bias;
  float* gates;  // (N, G)
  LSTM_HD size_t threads() const { return (size_t)N * G; }
  LSTM_HD void operator()(size_t i) const {
    const size_t r = i / G, n = i % G;
    gates[i] = Wx[(size_t)tok[r] * G + n] + bias[n];
  }
};

// out (N, M) = in (N, K) · W (K, M) + bias: the input projection of a layer > 0 for all N rows
// (in = H_1…H_T of the layer below, W = Wx, M = 4H), and the output layer (in = the top layer's
// H, W = Wq, M = V).
struct Affine {
  int N, K, M;
  const float *in, *W, *bias;
  float* out;
  LSTM_HD size_t threads() const { return (size_t)N * M; }
  LSTM_HD void operator()(size_t i) const {
    const size_t r = i / M, m = i % M;
    const float* x = in + r * K;
    float acc = bias[m];
    for (int k = 0; k < K; k++) acc += x[k] * W[(size_t)k * M + m];
    out[i] = acc;
  }
};

// The threads of the per-step cell kernels, thread (b, j): a block of 256 threads is 8 batch rows ×
// 32 consecutive hidden units, a warp one row's 32 units. So a warp reads 32 consecutive weights
// (coalesced) and one broadcast input, and the 8 warps of a block read the same weight columns —
// each block brings its (·, 4 × 32) column slice into L1 once per step for 8 rows, not once per row.
struct CellGrid {
  static constexpr int kUnits = 32, kRows = 8;
  int B, H;
  LSTM_HD size_t unit_tiles() const { return ((size_t)H + kUnits - 1) / kUnits; }
  LSTM_HD size_t threads() const { return (((size_t)B + kRows - 1) / kRows) * unit_tiles() * kUnits * kRows; }
  // thread i → (b, j); false for the guard threads past B or H
  LSTM_HD bool cell(size_t i, size_t& b, size_t& j) const {
    const size_t block = i / (kUnits * kRows), in_block = i % (kUnits * kRows);
    j = (block % unit_tiles()) * kUnits + in_block % kUnits;
    b = (block / unit_tiles()) * kRows + in_block / kUnits;
    return b < (size_t)B && j < (size_t)H;
  }
};

// One time step of one layer, thread (b, j) of CellGrid: the four gate pre-activations of hidden unit j,
// z = (X_t·Wx + b)[b] + H_{t−1}[b]·Wh (the recurrent product fused in), then d2l's cell:
//   I, F, O = σ(z_i, z_f, z_o), C~ = tanh(z_g), C = F⊙C_{t−1} + I⊙C~, H = O⊙tanh(C).
// gates (B, 4H) holds the pre-activations on entry and the activations I, F, C~, O on exit.
struct CellForward {
  int B, H;
  const float *Wh, *h_prev, *c_prev;
  float *gates, *c, *tanh_c, *h;
  LSTM_HD size_t threads() const { return CellGrid{B, H}.threads(); }
  LSTM_HD void operator()(size_t t) const {
    size_t b, j;
    if (!CellGrid{B, H}.cell(t, b, j)) return;
    const size_t i = b * H + j, G = 4 * (size_t)H;
    float* z = gates + b * G + j;
    float zi = z[0], zf = z[H], zg = z[2 * H], zo = z[3 * H];
    const float* hp = h_prev + b * H;
    for (int k = 0; k < H; k++) {
      const float x = hp[k];
      const float* w = Wh + (size_t)k * G + j;
      zi += x * w[0];
      zf += x * w[H];
      zg += x * w[2 * H];
      zo += x * w[3 * H];
    }
    const float I = sigmoid(zi), F = sigmoid(zf), Cc = tanhf(zg), O = sigmoid(zo);
    const float C = F * c_prev[i] + I * Cc;
    const float tc = tanhf(C);
    z[0] = I;
    z[H] = F;
    z[2 * H] = Cc;
    z[3 * H] = O;
    c[i] = C;
    tanh_c[i] = tc;
    h[i] = O * tc;
  }
};

// Softmax cross-entropy of row r: row_loss[r] = −log softmax(logits_r)[y_r];
// logits_r := dlogits_r = (softmax − onehot(y_r)) · scale (scale = 1/N: the loss is the mean).
struct SoftmaxCrossEntropy {
  int N, V;
  const int32_t* tgt;
  float scale;
  float* logits;
  double* row_loss;
  LSTM_HD size_t threads() const { return (size_t)N; }
  LSTM_HD void operator()(size_t r) const {
    float* l = logits + r * V;
    float m = l[0];
    for (int v = 1; v < V; v++) m = l[v] > m ? l[v] : m;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += (double)expf(l[v] - m);
    const int y = tgt[r];
    row_loss[r] = (double)m + log(s) - (double)l[y];
    const float inv = (float)(1.0 / s);
    for (int v = 0; v < V; v++) {
      const float p = expf(l[v] - m) * inv;
      l[v] = (p - (v == y ? 1.0f : 0.0f)) * scale;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// backward

// dWq = Hᵀ·dY (threads k < H) and dbq = Σ_r dY (threads of row k = H).
struct OutputGradWeights {
  int N, H, V;
  const float *hs, *dY;
  float *dWq, *dbq;
  LSTM_HD size_t threads() const { return (size_t)(H + 1) * V; }
  LSTM_HD void operator()(size_t i) const {
    const size_t k = i / V, v = i % V;
    float acc = 0.0f;
    if (k < (size_t)H) {
      for (int r = 0; r < N; r++) acc += hs[(size_t)r * H + k] * dY[(size_t)r * V + v];
      dWq[i] = acc;
    } else {
      for (int r = 0; r < N; r++) acc += dY[(size_t)r * V + v];
      dbq[v] = acc;
    }
  }
};

// ∂L/∂H of the top layer from the output layer: dH = dY·Wqᵀ.
struct OutputGradHidden {
  int N, H, V;
  const float *dY, *Wq;
  float* dH;  // (N, H)
  LSTM_HD size_t threads() const { return (size_t)N * H; }
  LSTM_HD void operator()(size_t i) const {
    const size_t r = i / H, k = i % H;
    const float* d = dY + r * V;
    const float* w = Wq + k * V;
    float acc = 0.0f;
    for (int v = 0; v < V; v++) acc += d[v] * w[v];
    dH[i] = acc;
  }
};

// out (C, R) = inᵀ, in (R, C): the backward's products read Wh and Wx transposed, so that the
// threads of a warp read consecutive addresses.
struct Transpose {
  int R, C;
  const float* in;
  float* out;
  LSTM_HD size_t threads() const { return (size_t)R * C; }
  LSTM_HD void operator()(size_t i) const {
    const size_t r = i / C, c = i % C;
    out[c * R + r] = in[i];
  }
};

// Backward of one time step of one layer, thread (b, j) of CellGrid. ∂L/∂H_t = dH_above[t] (from the output
// layer or the layer above) + dA_{t+1}·Whᵀ (the path through step t+1, absent at the last step);
// dc carries ∂L/∂C from step t+1 (zero at the last step). Writes dA_t = ∂L/∂(pre-activations)
// and dc := ∂L/∂C_{t−1}. The state entering the minibatch is detached: step 0 sends nothing back.
struct CellBackward {
  int B, H;
  bool has_next;                            // t < T − 1
  const float* WhT;                         // (4H, H)
  const float* dA_next;                     // dA_{t+1} (B, 4H)
  const float* gates;                       // activations I, F, C~, O of step t (B, 4H)
  const float *c_prev, *tanh_c, *dH_above;  // (B, H)
  float* dc;                                // (B, H), carried
  float* dA;                                // dA_t (B, 4H)
  LSTM_HD size_t threads() const { return CellGrid{B, H}.threads(); }
  LSTM_HD void operator()(size_t t) const {
    size_t b, j;
    if (!CellGrid{B, H}.cell(t, b, j)) return;
    const size_t i = b * H + j, G = 4 * (size_t)H;
    float dh = dH_above[i];
    float dc_next = 0.0f;
    if (has_next) {
      const float* d = dA_next + b * G;
      for (size_t k = 0; k < G; k++) dh += d[k] * WhT[k * H + j];
      dc_next = dc[i];
    }
    const float* a = gates + b * G + j;
    const float I = a[0], F = a[H], Cc = a[2 * H], O = a[3 * H];
    const float tc = tanh_c[i];
    // H = O ⊙ tanh(C): the path into C, plus the carry from step t+1
    const float d_c = dh * O * (1.0f - tc * tc) + dc_next;
    float* d = dA + b * G + j;
    d[0] = d_c * Cc * I * (1.0f - I);  // σ' = σ(1 − σ)
    d[H] = d_c * c_prev[i] * F * (1.0f - F);
    d[2 * H] = d_c * I * (1.0f - Cc * Cc);  // tanh' = 1 − tanh²
    d[3 * H] = dh * tc * O * (1.0f - O);
    dc[i] = d_c * F;  // C_t = F ⊙ C_{t−1} + I ⊙ C~
  }
};

// Weight gradients over all N rows: dW (K, G) = inᵀ·dA, and with db the bias gradient
// db = Σ_r dA (threads of row k = K). For Wh, in = H_0…H_{T−1}; for the Wx of a layer > 0,
// in = H_1…H_T of the layer below. Each thread computes kTile rows of one column, so one read of
// dA serves kTile products.
struct WeightGrad {
  static constexpr int kTile = 4;
  int N, K, G;
  const float *in, *dA;
  float *dW, *db;  // db may be null
  LSTM_HD size_t tiles() const { return ((size_t)K + kTile - 1) / kTile; }
  LSTM_HD size_t threads() const { return (tiles() + (db ? 1 : 0)) * G; }
  LSTM_HD void operator()(size_t i) const {
    const size_t tile = i / G, n = i % G;
    if (tile == tiles()) {
      float acc = 0.0f;
      for (int r = 0; r < N; r++) acc += dA[(size_t)r * G + n];
      db[n] = acc;
      return;
    }
    const size_t k0 = tile * kTile;
    const int nk = (int)(K - k0 < (size_t)kTile ? K - k0 : (size_t)kTile);
    float acc[kTile] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int r = 0; r < N; r++) {
      const float d = dA[(size_t)r * G + n];
      const float* x = in + (size_t)r * K + k0;
      for (int q = 0; q < kTile; q++)
        if (q < nk) acc[q] += x[q] * d;
    }
    for (int q = 0; q < nk; q++) dW[(k0 + q) * G + n] = acc[q];
  }
};

// Layer 0's input-kernel gradient for one-hot inputs: dWx[v] = Σ_{r : tok[r] = v} dA[r] (a
// row scatter-add written as a gather, so no two threads write one address).
struct EmbedGrad {
  int N, V, G;
  const int32_t* tok;
  const float* dA;
  float* dWx;  // (V, G)
  LSTM_HD size_t threads() const { return (size_t)V * G; }
  LSTM_HD void operator()(size_t i) const {
    const int v = (int)(i / G);
    const size_t n = i % G;
    float acc = 0.0f;
    for (int r = 0; r < N; r++)
      if (tok[r] == v) acc += dA[(size_t)r * G + n];
    dWx[i] = acc;
  }
};

// ∂L/∂H of the layer below (its outputs are this layer's inputs): dH = dA·Wxᵀ, WxT (G, K).
struct InputGradHidden {
  int N, K, G;
  const float *dA, *WxT;
  float* dH;  // (N, K)
  LSTM_HD size_t threads() const { return (size_t)N * K; }
  LSTM_HD void operator()(size_t i) const {
    const size_t r = i / K, k = i % K;
    const float* d = dA + r * G;
    float acc = 0.0f;
    for (int n = 0; n < G; n++) acc += d[n] * WxT[(size_t)n * K + k];
    dH[i] = acc;
  }
};

// ---------------------------------------------------------------------------------------------
// reductions, clipping, SGD — on the device, so a minibatch needs no host round trip

// part[p] = Σ_{i ≡ p (mod P)} x[i] (squares = false) or x[i]² (squares = true), in double.
template <class T>
struct PartialSums {
  size_t n;
  int P;
  bool squares;
  const T* x;
  double* part;
  LSTM_HD size_t threads() const { return (size_t)P; }
  LSTM_HD void operator()(size_t p) const {
    double s = 0.0;
    for (size_t i = p; i < n; i += P) {
      const double v = (double)x[i];
      s += squares ? v * v : v;
    }
    part[p] = s;
  }
};

// One thread: the minibatch loss from the row-loss partials. out[0] = mean loss of this minibatch;
// out[1] += the sum (the loss of all minibatches since the host last read it).
struct FinishLoss {
  int P;
  double inv_rows;
  const double* part;
  double* out;
  LSTM_HD size_t threads() const { return 1; }
  LSTM_HD void operator()(size_t) const {
    double s = 0.0;
    for (int p = 0; p < P; p++) s += part[p];
    out[0] = s * inv_rows;
    out[1] += s;
  }
};

// One thread: global gradient norm from the partial sums of squares, and d2l's grad_clipping as a
// device-side factor: scale = θ/‖g‖ if ‖g‖ > θ, else 1. out[0] = ‖g‖, out[1] = scale.
struct ClipScale {
  int P;
  const double* part;
  const float* hyper;  // [lr, θ]
  double* out;
  LSTM_HD size_t threads() const { return 1; }
  LSTM_HD void operator()(size_t) const {
    double sq = 0.0;
    for (int p = 0; p < P; p++) sq += part[p];
    const double norm = sqrt(sq);
    const double theta = hyper[1];
    out[0] = norm;
    out[1] = norm > theta ? theta / norm : 1.0;
  }
};

// d2l's sgd with the clipping factor: g := g·scale, p −= lr·g.
struct SgdUpdate {
  size_t n;
  const float* hyper;  // [lr, θ]
  const double* clip;  // [‖g‖, scale]
  float *params, *grads;
  LSTM_HD size_t threads() const { return n; }
  LSTM_HD void operator()(size_t i) const {
    const float s = (float)clip[1];
    const float g = s == 1.0f ? grads[i] : grads[i] * s;
    grads[i] = g;
    params[i] -= hyper[0] * g;
  }
};

}  // namespace lstm::cuda
