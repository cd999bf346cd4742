// The native LSTM language model: parameters, fused forward/backward through time on BLAS,
// clipping and SGD, batch-1 generation. Plain C++ (no Node-API), so it can be tested alone.
//
// Internal layout, for every layer l (scratch: exactly one layer):
//   Wx[l] (I_l, 4H)  input kernel, I_0 = V (one-hot inputs: the projection is a row gather)
//   Wh[l] (H, 4H)    recurrent kernel — one (B,H)·(H,4H) GEMM per time step for all four gates
//   b[l]  (4H)
// then Wq (H, V), bq (V). Gate column blocks are i | f | g | o (g = candidate cell C~), i.e.
// tfjs's LSTM layer order, so the concise kind maps 1:1; the scratch kind's 14 tensors
// (W_xi, W_hi, b_i, W_xf, … in i, f, o, c order) are column blocks of these (see Model::views()).
// All parameters live in one contiguous buffer (grads likewise) so that the global norm,
// clipping and the SGD update are single passes.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gemm.h"
#include "lstm_buffer.h"
#include "thread_pool.h"

namespace lstm {

enum class Kind { Scratch, Concise };

struct Config {
  Kind kind = Kind::Scratch;
  int vocab = 0;
  int hidden = 0;
  int layers = 1;
};

// One interface tensor (a name of model/params.ts) as a strided block of the flat parameter buffer:
// rows × cols floats starting at `offset`, consecutive rows `ld` floats apart.
struct View {
  std::string name;
  std::vector<int> shape;
  size_t offset;
  int rows, cols, ld;
  size_t size() const { return (size_t)rows * cols; }
};

// Wall time per phase of a step, accumulated by thread 0 (nanoseconds; includes its waits at the
// barriers that end a phase), for profiling.
enum Phase {
  kPack,            // packing the recurrent weights into GEMM panels, initial state
  kGather,          // input projection of layer 0 (row gather + bias); bias broadcast of layers > 0
  kInputGemm,       // input projection of layers > 0 (one GEMM over all T steps)
  kRecurrentGemm,   // H_{t−1} · Wh, per step
  kGateForward,     // sigmoid/tanh and the cell update, per step
  kOutputForward,   // logits GEMM + softmax cross-entropy
  kOutputBackward,  // dWq, dbq, dH = dlogits · Wqᵀ
  kGateBackward,    // elementwise BPTT, per step
  kRecurrentBackwardGemm,  // dA_t · Whᵀ, per step
  kWeightGradGemm,  // dWh, dWx (layers > 0), dH of the layer below: GEMMs over all T steps; db; dWx row scatter
  kUpdate,          // global norm, clipping, SGD
  kSync,            // waiting at the barriers between phases (load imbalance, preempted threads)
  kNumPhases
};
const char* phase_name(int phase);

struct StepResult {
  double loss;       // mean cross-entropy
  double grad_norm;  // global L2 norm of the raw gradient
};

// How the per-step recurrent GEMMs are computed: the packed-panel kernel of gemm.h (default) or
// OpenBLAS (cblas_sgemm on each thread's sequences; LSTM_NATIVE_RECURRENT=blas), for comparison.
enum class RecurrentGemm { Packed, Blas };

class Model {
 public:
  // threads: how many threads run a step (thread_pool.h); OpenBLAS itself is kept at 1 thread.
  Model(const Config& config, int threads);
  const Config& config() const { return cfg_; }
  int threads() const { return threads_; }
  RecurrentGemm recurrent_gemm() const { return recurrent_; }

  // Interface tensors, in the order of model/params.ts paramShapes().
  const std::vector<View>& views() const { return views_; }
  const View* find_view(const std::string& name) const;
  // Copy an interface tensor into / out of the parameter (or gradient) buffer.
  void set_param(const View& v, const float* src);
  void get_param(const View& v, float* dst) const;
  void get_grad(const View& v, float* dst) const;
  size_t num_params() const { return params_.size(); }

  // One minibatch: forward, mean cross-entropy, backward through time; with update, also d2l's
  // grad_clipping(θ) (g *= θ/‖g‖ if ‖g‖ > θ) and sgd(lr, batch_size=1) (p −= lr·g). X, Y are
  // (B, T) row-major token ids in [0, V). Starts from zero state if reset or if B differs from the
  // last call; the final (H, C) of every layer becomes the carried (detached) state. Without
  // update the raw gradient stays readable with get_grad().
  StepResult step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr, float theta);
  // Forget the carried state.
  void reset_state();

  // Batch-1 generation step: h, c are this generator's state (layers × H each), updated in place;
  // logits (V) of the next token. Uses no BLAS and no threads.
  void generate_step(int32_t token, float* h, float* c, float* logits) const;

  std::array<double, kNumPhases> phase_ns{};
  uint64_t steps = 0;

 private:
  struct LayerOffsets {
    size_t Wx, Wh, b;
    int inputs;
  };
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
  void step_thread(int p, int np, Team& team, int B, int T, bool update, float lr, float theta);

  Config cfg_;
  int threads_;
  RecurrentGemm recurrent_;
  std::vector<LayerOffsets> layer_;
  size_t Wq_ = 0, bq_ = 0;
  Buffer params_, grads_;
  std::vector<View> views_;
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
