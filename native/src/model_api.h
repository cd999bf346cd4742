// What every build of the native engine offers the addon (addon.cc): the CPU model (lstm.h) and
// the CUDA model (native/cuda/lstm_cuda.h) implement ModelApi over the same parameter layout, so
// weights, gradients and checkpoints are interchangeable between them.
//
// Parameter layout, for every layer l (scratch: exactly one layer):
//   Wx[l] (I_l, 4H)  input kernel, I_0 = V (one-hot inputs: the projection is a row gather)
//   Wh[l] (H, 4H)    recurrent kernel — one (B,H)·(H,4H) product per time step for all four gates
//   b[l]  (4H)
// then Wq (H, V), bq (V), all in one contiguous float buffer (gradients likewise), so that the
// global norm, clipping and the SGD update are single passes. Gate column blocks are i | f | g | o
// (g = candidate cell C~), i.e. tfjs's LSTM layer order, so the concise kind maps 1:1; the
// scratch kind's 14 tensors (W_xi, W_hi, b_i, W_xf, … in i, f, o, c order) are column blocks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lstm {

class Model;  // the CPU model, lstm.h

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

// Where each parameter block starts in the flat buffer, and the interface tensors over it.
struct Layout {
  struct Layer {
    size_t Wx, Wh, b;
    int inputs;
  };
  std::vector<Layer> layers;
  size_t Wq = 0, bq = 0, size = 0;
  std::vector<View> views;  // in the order of model/params.ts paramShapes()
};
// Throws std::invalid_argument for a config no engine can build.
Layout make_layout(const Config& config);

// Copy rows × cols floats between strided blocks.
void copy_view(const View& v, const float* src, int lds, float* dst, int ldd);

struct StepResult {
  double loss;       // mean cross-entropy
  double grad_norm;  // global L2 norm of the raw gradient
};

class ModelApi {
 public:
  virtual ~ModelApi() = default;
  virtual const Config& config() const = 0;
  virtual const std::vector<View>& views() const = 0;
  const View* find_view(const std::string& name) const;
  // Copy an interface tensor into / out of the parameter (or gradient) buffer.
  virtual void set_param(const View& v, const float* src) = 0;
  virtual void get_param(const View& v, float* dst) const = 0;
  virtual void get_grad(const View& v, float* dst) const = 0;

  // One minibatch: forward, mean cross-entropy, backward through time; with update, also d2l's
  // grad_clipping(θ) (g *= θ/‖g‖ if ‖g‖ > θ) and sgd(lr, batch_size=1) (p −= lr·g). X, Y are
  // (B, T) row-major token ids in [0, V). Starts from zero state if reset or if B differs from the
  // last call; the final (H, C) of every layer becomes the carried (detached) state. Without
  // update the raw gradient stays readable with get_grad().
  virtual StepResult step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr,
                          float theta) = 0;
  // The forward pass of step() alone, for the held-out perplexity: from the carried state (zeros if
  // reset or if B differs from the last call), the mean cross-entropy of the minibatch — no
  // backward, no gradient (get_grad() still reads the last step's), no update. The final (H, C) of
  // every layer becomes the carried state, exactly as step() leaves it.
  virtual double forward_loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) = 0;
  // `batches` training steps (update = true) over consecutive (B, T) minibatches of X and Y; the
  // first starts from zero state if reset_first, every later one if reset_each. Returns the mean
  // loss over all of them. The CUDA model reads the loss back once per call, not per minibatch.
  virtual double train_batches(const int32_t* X, const int32_t* Y, int batches, int B, int T, bool reset_first,
                               bool reset_each, float lr, float theta);
  // Forget the carried state.
  virtual void reset_state() = 0;
  // Batch-1 generation step: h, c are this generator's state (layers × H each), updated in place;
  // logits (V) of the next token.
  virtual void generate_step(int32_t token, float* h, float* c, float* logits) const = 0;
  virtual int threads() const = 0;
  // "cpu" or "cuda"
  virtual const char* device() const = 0;
  // How the last training step ran: "cpu", "cuda-steps" (a launch per time step) or
  // "cuda-persistent" (a persistent launch per layer and direction).
  virtual const char* path() const { return device(); }
  // The CPU model itself (for its phase profile), else null. (The addon builds without RTTI.)
  virtual Model* as_cpu_model() { return nullptr; }
};

}  // namespace lstm
