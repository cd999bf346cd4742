#include "lstm.h"

#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "kernels.h"
#include "thread_pool.h"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace lstm {

namespace {

using Clock = std::chrono::steady_clock;

// Accumulates the wall time between laps into phase_ns — on thread 0 only.
struct PhaseTimer {
  std::array<double, kNumPhases>* acc;
  Clock::time_point t0 = Clock::now();
  Phase last = kPack;  // the phase a barrier's lead-in time is charged to
  void lap(Phase p) {
    if (!acc) return;
    auto t1 = Clock::now();
    (*acc)[p] += std::chrono::duration<double, std::nano>(t1 - t0).count();
    t0 = t1;
  }
};

// Row-major single-precision GEMM on the calling thread: C = alpha·op(A)·op(B) + beta·C, C (M, N).
inline void gemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                 int ldb, float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
}

RecurrentGemm recurrent_from_env() {
  const char* e = std::getenv("LSTM_NATIVE_RECURRENT");
  return e && !std::strcmp(e, "blas") ? RecurrentGemm::Blas : RecurrentGemm::Packed;
}

}  // namespace

const char* phase_name(int phase) {
  static const char* names[kNumPhases] = {"pack",
                                          "gather",
                                          "input_gemm",
                                          "recurrent_gemm",
                                          "gate_forward",
                                          "output_forward",
                                          "output_backward",
                                          "gate_backward",
                                          "recurrent_backward_gemm",
                                          "weight_grad_gemm",
                                          "update",
                                          "sync"};
  return phase >= 0 && phase < kNumPhases ? names[phase] : "?";
}

// ---------------------------------------------------------------------------------------------
// layout

Model::Model(const Config& config, int threads)
    : cfg_(config), threads_(threads), recurrent_(recurrent_from_env()), layout_(make_layout(config)) {
  if (threads_ < 1) throw std::invalid_argument("threads must be >= 1");
  build_layout();
}

// Buffers and GEMM panels for the layout.
void Model::build_layout() {
  const int H = cfg_.hidden, G = 4 * H;
  params_.resize(layout_.size);
  grads_.resize(layout_.size);

  state_h_.resize(cfg_.layers);
  state_c_.resize(cfg_.layers);
  acts_.resize(cfg_.layers);
  packs_.resize(cfg_.layers);
  if (recurrent_ == RecurrentGemm::Packed) {
    for (int l = 0; l < cfg_.layers; l++) {
      LayerPacks& pk = packs_[l];
      for (int g = 0; g < 4; g++) pack_alloc(pk.Wh[g], H, H);
      pack_alloc(pk.WhT, G, H);
      if (l > 0) {
        for (int g = 0; g < 4; g++) pack_alloc(pk.Wx[g], H, H);
        pack_alloc(pk.WxT, G, H);
      }
    }
  }
}

void Model::set_param(const View& v, const float* src) {
  copy_block(v.rows, v.cols, src, v.cols, params_.data() + v.offset, v.ld);
}

void Model::get_param(const View& v, float* dst) const {
  copy_block(v.rows, v.cols, params_.data() + v.offset, v.ld, dst, v.cols);
}

void Model::get_grad(const View& v, float* dst) const {
  copy_block(v.rows, v.cols, grads_.data() + v.offset, v.ld, dst, v.cols);
}

void Model::reset_state() { stateB_ = 0; }

void Model::ensure_workspace(int B, int T) {
  if (B == wsB_ && T == wsT_) return;
  const int V = cfg_.vocab, H = cfg_.hidden, G = 4 * H;
  const size_t N = (size_t)T * B;
  tok_.assign(N, 0);
  tgt_.assign(N, 0);
  for (auto& a : acts_) {
    a.gates.resize(N * G);
    a.h.resize((N + B) * H);
    a.c.resize((N + B) * H);
    a.tanh_c.resize(N * H);
  }
  logits_.resize(N * V);
  dA_.resize(N * G);
  dH_.resize(N * H);
  dc_.resize((size_t)B * H);
  wsB_ = B;
  wsT_ = T;
}

Model::Slice Model::slice(int p, int np, int B, int T) const {
  const int H = cfg_.hidden;
  const int NR = gemm_panel_width();
  const int npg = (H + NR - 1) / NR;  // panels per gate block
  const long N = (long)T * B;
  Slice s;
  s.b0 = (int)((long)B * p / np);
  s.b1 = (int)((long)B * (p + 1) / np);
  s.nb = s.b1 - s.b0;
  s.p0 = (int)((long)npg * p / np);
  s.p1 = (int)((long)npg * (p + 1) / np);
  s.u0 = std::min(s.p0 * NR, H);
  s.u1 = std::min(s.p1 * NR, H);
  s.nu = s.u1 - s.u0;
  s.r0 = (int)(N * p / np);
  s.r1 = (int)(N * (p + 1) / np);
  const size_t n = params_.size();
  s.f0 = p == 0 ? 0 : (n * p / np) / 16 * 16;
  s.f1 = p == np - 1 ? n : (n * (p + 1) / np) / 16 * 16;
  return s;
}

// ---------------------------------------------------------------------------------------------
// training step

StepResult Model::step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr,
                       float theta) {
  return run_pass(X, Y, B, T, reset, update ? Pass::Train : Pass::Gradient, lr, theta);
}

double Model::forward_loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) {
  return run_pass(X, Y, B, T, reset, Pass::Forward, 0.0f, 0.0f).loss;
}

StepResult Model::run_pass(const int32_t* X, const int32_t* Y, int B, int T, bool reset, Pass pass, float lr,
                           float theta) {
  if (B < 1 || T < 1) throw std::invalid_argument("batchSize and numSteps must be >= 1");
  const int V = cfg_.vocab, H = cfg_.hidden;
  for (size_t k = 0; k < (size_t)B * T; k++)
    if (X[k] < 0 || X[k] >= V || Y[k] < 0 || Y[k] >= V)
      throw std::invalid_argument("token id out of range [0, vocabSize)");
  ensure_workspace(B, T);
  // (B, T) batch-major → time-major rows t·B + b
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      tok_[(size_t)t * B + b] = X[(size_t)b * T + t];
      tgt_[(size_t)t * B + b] = Y[(size_t)b * T + t];
    }
  if (reset || stateB_ != B) {
    for (int l = 0; l < cfg_.layers; l++) {
      state_h_[l].resize((size_t)B * H);
      state_c_[l].resize((size_t)B * H);
      state_h_[l].zero();
      state_c_[l].zero();
    }
    stateB_ = B;
  }
  // the team's threads do all the work; OpenBLAS runs single-threaded inside each of them
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  loss_part_.assign((size_t)threads_ * 8, 0.0);
  sq_part_.assign((size_t)threads_ * 8, 0.0);
  ThreadPool::instance().run(threads_,
                             [&](int p, int np, Team& team) { step_thread(p, np, team, B, T, pass, lr, theta); });
  double loss_sum = 0.0, sq = 0.0;
  for (int p = 0; p < threads_; p++) {
    loss_sum += loss_part_[(size_t)p * 8];
    sq += sq_part_[(size_t)p * 8];
  }
  steps++;
  return {loss_sum / ((double)B * T), std::sqrt(sq)};
}

// One thread's view of a training step: its slice of the work, the phase timer, and the team it
// meets at the barriers between phases. Every thread passes the same sequence of barriers.
struct Model::ThreadStep {
  int p, np;
  Team& team;
  int B, T;
  Slice s;
  PhaseTimer timer;
  void barrier() {
    timer.lap(timer.last);
    team.barrier();
    timer.lap(kSync);
  }
};

void Model::step_thread(int p, int np, Team& team, int B, int T, Pass pass, float lr, float theta) {
  ThreadStep x{p, np, team, B, T, slice(p, np, B, T), PhaseTimer{p == 0 ? &phase_ns : nullptr}};
  const bool backward = pass != Pass::Forward;
  pack_weights(x, backward);
  x.barrier();  // every thread reads every panel
  for (int l = 0; l < cfg_.layers; l++) forward_layer(x, l);
  x.timer.last = kGateForward;
  x.barrier();  // H of every sequence, for the output layer's row split
  output_loss(x);
  if (!backward) return;  // the forward pass only: each thread's loss is in loss_part_
  output_backward(x);
  for (int l = cfg_.layers - 1; l >= 0; l--) backward_layer(x, l);
  clip_and_update(x, pass == Pass::Train, lr, theta);
}

// (nb, H)·(H, 4H) for this thread's sequences: out += in · W, W (K, 4H) given packed per gate
// block (Wp) and as the plain matrix (for the OpenBLAS path)
void Model::gates_gemm(const ThreadStep& x, const float* in, int K, const PackedB* Wp, const float* W,
                       float* out) const {
  const int H = cfg_.hidden, G = 4 * H;
  if (x.s.nb == 0) return;
  if (recurrent_ == RecurrentGemm::Packed) {
    const int all = packs_[0].Wh[0].panels;  // every panel of a gate block
    for (int g = 0; g < 4; g++) gemm_packed(x.s.nb, in, K, 1, Wp[g], 0, all, out + (size_t)g * H, G, true);
  } else {
    gemm(false, false, x.s.nb, G, K, 1.0f, in, K, W, G, 1.0f, out, G);
  }
}

// (nb, 4H)·(4H, H) for this thread's sequences: out (+)= dA · Wᵀ, W (K, 4H)
void Model::transposed_gemm(const ThreadStep& x, const float* dA, const PackedB& WTp, const float* W, float* out,
                            bool accumulate) const {
  const int H = cfg_.hidden, G = 4 * H;
  if (x.s.nb == 0) return;
  if (recurrent_ == RecurrentGemm::Packed)
    gemm_packed(x.s.nb, dA, G, 1, WTp, 0, WTp.panels, out, H, accumulate);
  else
    gemm(false, true, x.s.nb, H, G, 1.0f, dA, G, W, G, accumulate ? 1.0f : 0.0f, out, H);
}

// This thread's share of the panels of the recurrent (and upper input) kernels — and of their
// transposes, which only the backward pass reads; the initial state of this thread's sequences.
void Model::pack_weights(ThreadStep& x, bool backward) {
  const int H = cfg_.hidden, G = 4 * H, L = cfg_.layers;
  const Slice& s = x.s;
  const float* P = params_.data();
  x.timer.last = kPack;
  for (int l = 0; l < L && recurrent_ == RecurrentGemm::Packed; l++) {
    const LayerOffsets& lo = layout_.layers[l];
    LayerPacks& pk = packs_[l];
    for (int g = 0; g < 4; g++) pack_panels(pk.Wh[g], P + lo.Wh + (size_t)g * H, G, false, s.p0, s.p1);
    if (backward) pack_panels(pk.WhT, P + lo.Wh, G, true, s.p0, s.p1);  // WhT[k][n] = Wh[n][k]
    if (l > 0) {
      for (int g = 0; g < 4; g++) pack_panels(pk.Wx[g], P + lo.Wx + (size_t)g * H, G, false, s.p0, s.p1);
      if (backward) pack_panels(pk.WxT, P + lo.Wx, G, true, s.p0, s.p1);
    }
  }
  for (int l = 0; l < L; l++) {
    copy_block(s.nb, H, state_h_[l].data() + (size_t)s.b0 * H, H, acts_[l].h.data() + (size_t)s.b0 * H, H);
    copy_block(s.nb, H, state_c_[l].data() + (size_t)s.b0 * H, H, acts_[l].c.data() + (size_t)s.b0 * H, H);
  }
}

// Forward through time of layer l: each thread runs its own sequences (no barrier inside).
void Model::forward_layer(ThreadStep& x, int l) {
  const int H = cfg_.hidden, G = 4 * H, B = x.B, T = x.T;
  const size_t BH = (size_t)B * H;
  const Slice& s = x.s;
  const LayerOffsets& lo = layout_.layers[l];
  const LayerPacks& pk = packs_[l];
  LayerActs& a = acts_[l];
  const float* P = params_.data();
  const float* Wx = P + lo.Wx;
  const float* Wh = P + lo.Wh;
  const float* bias = P + lo.b;
  for (int t = 0; t < T && s.nb > 0; t++) {
    const size_t row = (size_t)t * B + s.b0;  // first row of this thread's sequences at step t
    float* gates_t = a.gates.data() + row * G;
    // input projection X_t·Wx + b
    if (l == 0) {
      embed_gather(s.nb, G, tok_.data() + row, Wx, G, bias, gates_t, G);  // one-hot X_t · Wx = rows of Wx
      x.timer.lap(kGather);
    } else {
      broadcast_rows(s.nb, G, bias, gates_t, G);
      gates_gemm(x, acts_[l - 1].h.data() + BH + row * H, H, pk.Wx, Wx, gates_t);  // H_t of the layer below
      x.timer.lap(kInputGemm);
    }
    // + H_{t−1}·Wh: all four gates in one (nb, H)·(H, 4H) product
    gates_gemm(x, a.h.data() + row * H, H, pk.Wh, Wh, gates_t);
    x.timer.lap(kRecurrentGemm);
    lstm_cell_forward(s.nb, H, gates_t, G, H, a.c.data() + row * H, a.c.data() + BH + row * H,
                      a.tanh_c.data() + row * H, a.h.data() + BH + row * H, H);
    x.timer.lap(kGateForward);
  }
  // the final state is the next minibatch's initial state (detached)
  copy_block(s.nb, H, a.h.data() + T * BH + (size_t)s.b0 * H, H, state_h_[l].data() + (size_t)s.b0 * H, H);
  copy_block(s.nb, H, a.c.data() + T * BH + (size_t)s.b0 * H, H, state_c_[l].data() + (size_t)s.b0 * H, H);
}

// Output layer Y = H·W_hq + b_q and softmax cross-entropy on rows [r0, r1): this thread's loss sum,
// and dY = ∂L/∂Y in place of the logits.
void Model::output_loss(ThreadStep& x) {
  const int V = cfg_.vocab, H = cfg_.hidden, L = cfg_.layers, N = x.T * x.B;
  const size_t BH = (size_t)x.B * H;
  const Slice& s = x.s;
  const float* P = params_.data();
  const float* hs = acts_[L - 1].h.data() + BH;  // H_1 … H_T of the top layer, (N, H)
  float* dY = logits_.data();
  const int nr = s.r1 - s.r0;
  broadcast_rows(nr, V, P + layout_.bq, dY + (size_t)s.r0 * V, V);
  gemm(false, false, nr, V, H, 1.0f, hs + (size_t)s.r0 * H, H, P + layout_.Wq, V, 1.0f, dY + (size_t)s.r0 * V, V);
  // logits := dlogits = (softmax − onehot) / N (the mean is over all N rows)
  loss_part_[(size_t)x.p * 8] =
      softmax_cross_entropy(nr, V, dY + (size_t)s.r0 * V, tgt_.data() + s.r0, dY + (size_t)s.r0 * V, 1.0f / (float)N);
  x.timer.lap(kOutputForward);
}

// dH = dY·W_hqᵀ on rows [r0, r1); then dW_hq (this thread's hidden units) and db_q.
void Model::output_backward(ThreadStep& x) {
  const int V = cfg_.vocab, H = cfg_.hidden, L = cfg_.layers, N = x.T * x.B;
  const size_t BH = (size_t)x.B * H;
  const Slice& s = x.s;
  const float* P = params_.data();
  float* D = grads_.data();
  const float* hs = acts_[L - 1].h.data() + BH;
  const float* Wq = P + layout_.Wq;
  const float* dY = logits_.data();
  const int nr = s.r1 - s.r0;
  gemm(false, true, nr, H, V, 1.0f, dY + (size_t)s.r0 * V, V, Wq, V, 0.0f, dH_.data() + (size_t)s.r0 * H,
       H);  // dH = dY·W_hqᵀ
  x.timer.last = kOutputBackward;
  x.barrier();  // dY and dH of every row
  gemm(true, false, s.nu, V, N, 1.0f, hs + s.u0, H, dY, V, 0.0f, D + layout_.Wq + (size_t)s.u0 * V,
       V);                                                 // dW_hq = Hᵀ·dY
  if (x.p == 0) column_sums(N, V, dY, V, D + layout_.bq);  // db_q
  x.timer.lap(kOutputBackward);
}

// Backward through time of layer l (top layer first). dH_ holds ∂L/∂H_t from above; the recurrent
// product of step t adds the path through H_{t−1}·Wh into row block t−1. Then the weight gradients
// of this thread's gate columns, and for l > 0 ∂L/∂H of the layer below (into dH_).
void Model::backward_layer(ThreadStep& x, int l) {
  const int H = cfg_.hidden, G = 4 * H, B = x.B, T = x.T, N = T * B;
  const size_t BH = (size_t)B * H;
  const Slice& s = x.s;
  const LayerOffsets& lo = layout_.layers[l];
  const LayerPacks& pk = packs_[l];
  LayerActs& a = acts_[l];
  const float* P = params_.data();
  float* D = grads_.data();
  const float* Wh = P + lo.Wh;
  float* dA = dA_.data();
  float* dH = dH_.data();
  std::memset(dc_.data() + (size_t)s.b0 * H, 0, (size_t)s.nb * H * sizeof(float));
  for (int t = T - 1; t >= 0 && s.nb > 0; t--) {
    const size_t row = (size_t)t * B + s.b0;
    float* dA_t = dA + row * G;
    lstm_cell_backward(s.nb, H, a.gates.data() + row * G, dA_t, G, H, a.c.data() + row * H, a.tanh_c.data() + row * H,
                       dH + row * H, dc_.data() + (size_t)s.b0 * H, H);
    x.timer.lap(kGateBackward);
    // ∂L/∂H_{t−1} += dA_t · Whᵀ; the state entering the minibatch is detached: no t = 0 term
    if (t > 0) transposed_gemm(x, dA_t, pk.WhT, Wh, dH + (row - B) * H, true);
    x.timer.lap(kRecurrentBackwardGemm);
  }
  if (l > 0) {
    // ∂L/∂H of the layer below (its outputs are this layer's inputs) = dA · Wxᵀ, own sequences
    for (int t = 0; t < T && s.nb > 0; t++) {
      const size_t row = (size_t)t * B + s.b0;
      transposed_gemm(x, dA + row * G, pk.WxT, P + lo.Wx, dH + row * H, false);
    }
  }
  x.timer.last = kRecurrentBackwardGemm;
  x.barrier();  // dA of every sequence
  // weight gradients of own gate columns, as single GEMMs over all T steps and sequences
  float* dWx = D + lo.Wx;
  for (int g = 0; g < 4 && s.nu > 0; g++) {
    const size_t col = (size_t)g * H + s.u0;
    gemm(true, false, H, s.nu, N, 1.0f, a.h.data(), H, dA + col, G, 0.0f, D + lo.Wh + col, G);  // Σ_t H_{t−1}ᵀ·dA_t
    column_sums(N, s.nu, dA + col, G, D + lo.b + col);                                          // db
    if (l == 0) {
      for (int v = 0; v < lo.inputs; v++) std::memset(dWx + (size_t)v * G + col, 0, s.nu * sizeof(float));
      embed_scatter_add(N, s.nu, tok_.data(), dA + col, G, dWx + col, G);  // one-hot Xᵀ·dA
    } else {
      gemm(true, false, H, s.nu, N, 1.0f, acts_[l - 1].h.data() + BH, H, dA + col, G, 0.0f, dWx + col, G);
    }
  }
  x.timer.last = kWeightGradGemm;
  if (l > 0) x.barrier();  // every read of dA done before the layer below overwrites it
}

// Global norm, d2l's grad_clipping(θ) and sgd, each thread on its range of the flat buffers.
void Model::clip_and_update(ThreadStep& x, bool update, float lr, float theta) {
  const Slice& s = x.s;
  float* P = params_.data();
  float* D = grads_.data();
  x.barrier();  // gradient complete
  sq_part_[(size_t)x.p * 8] = sum_squares(s.f1 - s.f0, D + s.f0);
  if (update) {
    x.timer.last = kUpdate;
    x.barrier();
    double sq = 0.0;
    for (int q = 0; q < x.np; q++) sq += sq_part_[(size_t)q * 8];
    const double norm = std::sqrt(sq);
    if (norm > theta) scale_inplace(s.f1 - s.f0, D + s.f0, (float)(theta / norm));
    axpy(s.f1 - s.f0, -lr, D + s.f0, P + s.f0);
  }
  x.timer.lap(kUpdate);
}

// ---------------------------------------------------------------------------------------------
// generation

void Model::generate_step(int32_t token, float* h, float* c, float* logits) const {
  const int V = cfg_.vocab, H = cfg_.hidden, G = 4 * H;
  if (token < 0 || token >= V) throw std::invalid_argument("token id out of range [0, vocabSize)");
  std::vector<float> gates(G), c_new(H), tanh_c(H), h_new(H);
  for (int l = 0; l < cfg_.layers; l++) {
    const LayerOffsets& L = layout_.layers[l];
    const float* Wx = params_.data() + L.Wx;
    std::memcpy(gates.data(), params_.data() + L.b, G * sizeof(float));
    if (l == 0)
      axpy(G, 1.0f, Wx + (size_t)token * G, gates.data());
    else
      vec_mat_accumulate(H, G, h + (size_t)(l - 1) * H, Wx, gates.data());
    float* hl = h + (size_t)l * H;
    float* cl = c + (size_t)l * H;
    vec_mat_accumulate(H, G, hl, params_.data() + L.Wh, gates.data());
    lstm_cell_forward(1, H, gates.data(), G, H, cl, c_new.data(), tanh_c.data(), h_new.data(), H);
    std::memcpy(hl, h_new.data(), H * sizeof(float));
    std::memcpy(cl, c_new.data(), H * sizeof(float));
  }
  std::memcpy(logits, params_.data() + layout_.bq, V * sizeof(float));
  vec_mat_accumulate(H, V, h + (size_t)(cfg_.layers - 1) * H, params_.data() + layout_.Wq, logits);
}

}  // namespace lstm
