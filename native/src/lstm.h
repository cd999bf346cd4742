// The native LSTM language model on the CPU: fused forward/backward through time on BLAS,
// clipping and SGD, batch-1 generation. Plain C++ (no Node-API), so it can be tested alone.
// The parameter layout and the ModelApi contract are in model_api.h (shared with the CUDA model).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gemm.h"
#include "lstm_buffer.h"
#include "model_api.h"
#include "thread_pool.h"

namespace lstm {

// Wall time per phase of a step, accumulated by thread 0 (nanoseconds; includes its waits at the
// barriers that end a phase), for profiling.
enum Phase {
  kPack,                   // packing the recurrent weights into GEMM panels, initial state
  kGather,                 // input projection of layer 0 (row gather + bias); bias broadcast of layers > 0
  kInputGemm,              // input projection of layers > 0 (one GEMM over all T steps)
  kRecurrentGemm,          // H_{t−1} · Wh, per step
  kGateForward,            // sigmoid/tanh and the cell update, per step
  kOutputForward,          // logits GEMM + softmax cross-entropy
  kOutputBackward,         // dWq, dbq, dH = dlogits · Wqᵀ
  kGateBackward,           // elementwise BPTT, per step
  kRecurrentBackwardGemm,  // dA_t · Whᵀ, per step
  kWeightGradGemm,         // dWh, dWx (layers > 0), dH of the layer below: GEMMs over all T steps; db; dWx row scatter
  kUpdate,                 // global norm, clipping, SGD
  kSync,                   // waiting at the barriers between phases (load imbalance, preempted threads)
  kNumPhases
};
const char* phase_name(int phase);

// How the per-step recurrent GEMMs are computed: the packed-panel kernel of gemm.h (default) or
// OpenBLAS (cblas_sgemm on each thread's sequences; LSTM_NATIVE_RECURRENT=blas), for comparison.
enum class RecurrentGemm { Packed, Blas };

class Model : public ModelApi {
 public:
  // threads: how many threads run a step (thread_pool.h); OpenBLAS itself is kept at 1 thread.
  Model(const Config& config, int threads);
  const Config& config() const override { return cfg_; }
  int threads() const override { return threads_; }
  const char* device() const override { return "cpu"; }
  Model* as_cpu_model() override { return this; }
  RecurrentGemm recurrent_gemm() const { return recurrent_; }

  const std::vector<View>& views() const override { return layout_.views; }
  void set_param(const View& v, const float* src) override;
  void get_param(const View& v, float* dst) const override;
  void get_grad(const View& v, float* dst) const override;
  size_t num_params() const { return params_.size(); }
  // The flat parameter / gradient buffers (model_api.h's layout).
  float* params() { return params_.data(); }
  const float* grads() const { return grads_.data(); }

  StepResult step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr,
                  float theta) override;
  double forward_loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) override;
  void reset_state() override;

  // Uses no BLAS and no threads.
  void generate_step(int32_t token, float* h, float* c, float* logits) const override;

  std::array<double, kNumPhases> phase_ns{};
  uint64_t steps = 0;  // minibatches run, training and forward-only (phase_ns covers both)

 private:
  using LayerOffsets = Layout::Layer;
  // The recurrent kernel packed per gate block (K = H, N = H), its transpose (K = 4H, N = H) for
  // the backward product, and the same for the input kernel of layers > 0.
  struct LayerPacks {
    PackedB Wh[4], WhT, Wx[4], WxT;
  };
  // What thread p of np owns: sequences [b0, b1) of the batch through the recurrences (forward
  // and backward through time need no synchronisation across sequences); hidden units [u0, u1)
  // = panels [p0, p1) of every gate block for packing and the weight-gradient GEMMs; rows
  // [r0, r1) of the output layer; params [f0, f1) of the flat buffer for the update.
  struct Slice {
    int b0, b1, nb, p0, p1, u0, u1, nu, r0, r1;
    size_t f0, f1;
  };
  Slice slice(int p, int np, int B, int T) const;
  void build_layout();
  void ensure_workspace(int B, int T);
  // How far a pass over one minibatch goes: the forward pass and loss only (forward_loss), with
  // the backward pass (step without update), or with clipping and SGD too (step with update).
  enum class Pass { Forward, Gradient, Train };
  // Checks and stages the minibatch (time-major tokens, the initial state) and runs the pass on
  // the thread team; the loss and the gradient norm (0 for Pass::Forward).
  StepResult run_pass(const int32_t* X, const int32_t* Y, int B, int T, bool reset, Pass pass, float lr, float theta);
  // The pass, on each thread of the team, in named phases (lstm.cc).
  struct ThreadStep;
  void step_thread(int p, int np, Team& team, int B, int T, Pass pass, float lr, float theta);
  void pack_weights(ThreadStep& x, bool backward);
  void forward_layer(ThreadStep& x, int l);
  void output_loss(ThreadStep& x);
  void output_backward(ThreadStep& x);
  void backward_layer(ThreadStep& x, int l);
  void clip_and_update(ThreadStep& x, bool update, float lr, float theta);
  void gates_gemm(const ThreadStep& x, const float* in, int K, const PackedB* Wp, const float* W, float* out) const;
  void transposed_gemm(const ThreadStep& x, const float* dA, const PackedB& WTp, const float* W, float* out,
                       bool accumulate) const;

  Config cfg_;
  int threads_;
  RecurrentGemm recurrent_;
  Layout layout_;
  Buffer params_, grads_;
  std::vector<LayerPacks> packs_;

  // workspace for a (B, T) minibatch
  int wsB_ = 0, wsT_ = 0;
  std::vector<int32_t> tok_, tgt_;  // time-major inputs and targets, row = t·B + b
  struct LayerActs {
    Buffer gates;   // (T, B, 4H): pre-activations, then the activations I, F, C~, O
    Buffer h, c;    // (T+1, B, H): slot 0 is the initial state
    Buffer tanh_c;  // (T, B, H)
  };
  std::vector<LayerActs> acts_;
  Buffer logits_;  // (T·B, V), then dlogits
  Buffer dA_;      // (T, B, 4H) pre-activation gradients of the current layer
  Buffer dH_;      // (T, B, H) ∂L/∂H_t of the current layer, from above and (added per step) from t+1
  Buffer dc_;      // (B, H) ∂L/∂C carried backwards
  // per-thread partial sums (cache-line apart)
  std::vector<double> loss_part_, sq_part_;

  // carried state: (B, H) per layer
  int stateB_ = 0;
  std::vector<Buffer> state_h_, state_c_;
};

}  // namespace lstm
