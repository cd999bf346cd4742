// The CUDA engine's training step as a sequence of kernel launches (kernels.cuh), written once
// for two executors:
//   DeviceExec (lstm_cuda.cu)                    — cudaMalloc'd buffers, launches on the model's
//     stream, the whole minibatch captured once as a CUDA graph and replayed;
//   HostExec (native/test/cuda_host_exec.h)      — malloc'd buffers, every kernel's full grid run
//     thread by thread on the CPU (the host harness).
// So the schedule — which kernel reads what, in which order, the carried state, clipping and the
// update — is the same code in the GPU build and in the tests.
//
// An Exec provides:
//   template <class K> void launch(const K&)        run kernel K over its threads()
//   void* alloc(size_t bytes)                        zero-filled buffer; free(void*)
//   void upload(void* dst, const void* src, size_t)  host → buffer, ordered with the launches (the
//                                                    source may be reused as soon as it returns)
//   void copy(void* dst, const void* src, size_t)    buffer → buffer, ordered with the launches
//   void download(void* dst, const void* src, size_t) buffer → host, then waits for it
//   template <class F> void replay(uint64_t key, F enqueue)   runs enqueue() (the device captures
//                                                    it as graph `key` the first time, then replays)
//   void forget_graphs()                             buffers moved: captured graphs are stale
//   template <class K> bool persistent_fits(const K&)  whether a persistent kernel's blocks can all
//                                                    be resident at once (persistent.cuh)
//   template <class K> void launch_persistent(const K&)  run it: its phases with the barriers between
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "../src/model_api.h"
#include "kernels.cuh"
#include "persistent.cuh"

namespace lstm::cuda {

// How a layer's recurrence runs: one CellForward / CellBackward launch per time step (default), or
// one persistent launch per layer and direction where the shapes fit (persistent.cuh).
enum class Recurrence { Steps, Persistent };

template <class Exec>
class StepModel {
 public:
  StepModel(const Config& cfg, Exec& ex, Recurrence recurrence = Recurrence::Steps)
      : cfg_(cfg), lo_(make_layout(cfg)), ex_(ex), recurrence_(recurrence) {
    params_ = alloc<float>(lo_.size);
    grads_ = alloc<float>(lo_.size);
    hyper_ = alloc<float>(2);
    loss_ = alloc<double>(2);
    clip_ = alloc<double>(2);
    part_ = alloc<double>(kPartials);
  }
  ~StepModel() {
    release_workspace();
    void* owned[] = {params_, grads_, hyper_, loss_, clip_, part_};
    for (void* p : owned) ex_.free(p);
  }
  StepModel(const StepModel&) = delete;
  StepModel& operator=(const StepModel&) = delete;

  const Config& config() const { return cfg_; }
  const Layout& layout() const { return lo_; }
  Recurrence recurrence() const { return recurrence_; }
  // Whether the last minibatch ran its recurrences as persistent kernels.
  bool ran_persistent() const { return ran_persistent_; }
  size_t size() const { return lo_.size; }

  void upload_params(const float* flat) { ex_.upload(params_, flat, lo_.size * sizeof(float)); }
  void download_params(float* flat) { ex_.download(flat, params_, lo_.size * sizeof(float)); }
  void download_grads(float* flat) { ex_.download(flat, grads_, lo_.size * sizeof(float)); }
  void reset_state() { stateB_ = 0; }

  // One minibatch (ModelApi::step); waits for it and reads back the loss and the gradient norm.
  StepResult step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr, float theta) {
    begin(B, T, lr, theta);
    stage(X, Y, 1, reset, reset);
    run_minibatch(0, update ? Pass::Train : Pass::Gradient);
    double loss[2], clip[2];
    ex_.download(loss, loss_, sizeof loss);
    ex_.download(clip, clip_, sizeof clip);
    return {loss[0], clip[0]};
  }

  // The forward pass and loss of one minibatch alone (ModelApi::forward_loss): the forward and
  // loss kernels of step(), none of the backward's, no update; the carried state advances as in
  // step(). Waits for it and reads back the loss.
  double loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) {
    begin(B, T, 0.0f, 0.0f);
    stage(X, Y, 1, reset, reset);
    run_minibatch(0, Pass::Forward);
    double loss[2];
    ex_.download(loss, loss_, sizeof loss);
    return loss[0];
  }

  // ModelApi::train_batches: one upload for all the minibatches, then per minibatch one copy into
  // place and one graph replay; the loss sum is read back once, at the end.
  double train_batches(const int32_t* X, const int32_t* Y, int batches, int B, int T, bool reset_first, bool reset_each,
                       float lr, float theta) {
    if (batches < 1) throw std::invalid_argument("batches must be >= 1");
    begin(B, T, lr, theta);
    stage(X, Y, batches, reset_first, reset_each);
    for (int k = 0; k < batches; k++) run_minibatch(k, Pass::Train);
    double loss[2];
    ex_.download(loss, loss_, sizeof loss);
    return loss[1] / ((double)batches * B * T);
  }

 private:
  static constexpr int kPartials = 512;  // threads of the first pass of a reduction

  // How far a minibatch's kernels go: forward and loss (loss()), then the backward (step() without
  // update), then clipping and SGD (step() with update, train_batches()).
  enum class Pass : unsigned { Forward = 0, Gradient = 1, Train = 2 };

  template <class T>
  T* alloc(size_t n) {
    return static_cast<T*>(ex_.alloc((n > 0 ? n : 1) * sizeof(T)));
  }

  struct LayerBuffers {
    float* gates = nullptr;      // (T, B, 4H): pre-activations, then the activations I, F, C~, O
    float* h = nullptr;          // (T+1, B, H): slot 0 is the initial state
    float* c = nullptr;          // (T+1, B, H)
    float* tanh_c = nullptr;     // (T, B, H)
    float* carried_h = nullptr;  // (B, H): the final state, the next minibatch's initial state
    float* carried_c = nullptr;
    float* WhT = nullptr;  // (4H, H)
    float* WxT = nullptr;  // (4H, H), layers > 0
  };

  // Per-call settings, and the workspace for (B, T).
  void begin(int B, int T, float lr, float theta) {
    if (B < 1 || T < 1) throw std::invalid_argument("batchSize and numSteps must be >= 1");
    if (B != B_ || T != T_) {
      release_workspace();
      allocate_workspace(B, T);
      ex_.forget_graphs();
    }
    hyper_host_[0] = lr;
    hyper_host_[1] = theta;
    ex_.upload(hyper_, hyper_host_, sizeof hyper_host_);
    const double zero[2] = {0.0, 0.0};
    ex_.upload(loss_, zero, sizeof zero);
  }

  void allocate_workspace(int B, int T) {
    const size_t H = cfg_.hidden, G = 4 * H, V = cfg_.vocab, N = (size_t)T * B, BH = (size_t)B * H;
    B_ = B;
    T_ = T;
    in_ = alloc<int32_t>(2 * N + 1);
    tok_ = alloc<int32_t>(N);
    tgt_ = alloc<int32_t>(N);
    layers_.resize(cfg_.layers);
    for (int l = 0; l < cfg_.layers; l++) {
      LayerBuffers& a = layers_[l];
      a.gates = alloc<float>(N * G);
      a.h = alloc<float>(N * H + BH);
      a.c = alloc<float>(N * H + BH);
      a.tanh_c = alloc<float>(N * H);
      a.carried_h = alloc<float>(BH);
      a.carried_c = alloc<float>(BH);
      a.WhT = alloc<float>(G * H);
      if (l > 0) a.WxT = alloc<float>(G * H);
    }
    logits_ = alloc<float>(N * V);
    dA_ = alloc<float>(N * G);
    dH_ = alloc<float>(N * H);
    dc_ = alloc<float>(BH);
    row_loss_ = alloc<double>(N);
    stateB_ = 0;
  }

  void release_workspace() {
    for (LayerBuffers& a : layers_) {
      float* owned[] = {a.gates, a.h, a.c, a.tanh_c, a.carried_h, a.carried_c, a.WhT, a.WxT};
      for (float* p : owned)
        if (p) ex_.free(p);
    }
    layers_.clear();
    if (staged_) ex_.free(staged_);
    staged_ = nullptr;
    staged_capacity_ = 0;
    void* owned[] = {in_, tok_, tgt_, logits_, dA_, dH_, dc_, row_loss_};
    for (void* p : owned)
      if (p) ex_.free(p);
    in_ = tok_ = tgt_ = nullptr;
    logits_ = dA_ = dH_ = dc_ = nullptr;
    row_loss_ = nullptr;
    B_ = T_ = 0;
  }

  // Minibatch k's input record: X (B, T) | Y (B, T) | reset flag.
  size_t record() const { return 2 * (size_t)B_ * T_ + 1; }

  // Upload `batches` input records at once. A minibatch starts from zero state when asked to or
  // when there is no carried state of this batch size.
  void stage(const int32_t* X, const int32_t* Y, int batches, bool reset_first, bool reset_each) {
    const size_t N = (size_t)B_ * T_, R = record();
    if ((size_t)batches > staged_capacity_) {
      if (staged_) ex_.free(staged_);
      staged_ = alloc<int32_t>(R * batches);
      staged_capacity_ = batches;
    }
    staged_host_.resize(R * batches);
    for (int k = 0; k < batches; k++) {
      int32_t* rec = staged_host_.data() + k * R;
      std::copy(X + k * N, X + (k + 1) * N, rec);
      std::copy(Y + k * N, Y + (k + 1) * N, rec + N);
      rec[2 * N] = (k == 0 ? reset_first || stateB_ != B_ : reset_each) ? 1 : 0;
    }
    ex_.upload(staged_, staged_host_.data(), R * batches * sizeof(int32_t));
    stateB_ = B_;
  }

  // Minibatch k: its record into place, then its kernels — replayed from one graph per
  // (B, T, pass).
  void run_minibatch(int k, Pass pass) {
    ex_.copy(in_, staged_ + k * record(), record() * sizeof(int32_t));
    const uint64_t key = ((uint64_t)B_ << 34) | ((uint64_t)T_ << 2) | (uint64_t)pass;
    ex_.replay(key, [&] { enqueue_minibatch(pass); });
  }

  // forward (every layer), output layer and loss; then, unless Pass::Forward, the backward (top
  // layer first) and the gradient norm; with Pass::Train, clipping and the update
  void enqueue_minibatch(Pass pass) {
    const int N = B_ * T_;
    ex_.launch(TimeMajor{B_, T_, in_, in_ + N, tok_, tgt_});
    for (int l = 0; l < cfg_.layers; l++) forward_layer(l);
    output_loss();
    if (pass == Pass::Forward) return;
    output_backward();
    for (int l = cfg_.layers - 1; l >= 0; l--) backward_layer(l);
    clip_and_update(pass == Pass::Train);
  }

  void forward_layer(int l) {
    const int H = cfg_.hidden, G = 4 * H, N = B_ * T_;
    const size_t BH = (size_t)B_ * H;
    const Layout::Layer& L = lo_.layers[l];
    LayerBuffers& a = layers_[l];
    ex_.launch(LoadState{BH, in_ + 2 * N, a.carried_h, a.carried_c, a.h, a.c});
    if (l == 0)
      ex_.launch(EmbedGather{N, G, tok_, params_ + L.Wx, params_ + L.b, a.gates});
    else
      ex_.launch(Affine{N, H, G, layers_[l - 1].h + BH, params_ + L.Wx, params_ + L.b, a.gates});
    const RecurrentForward rec{B_, H, T_, params_ + L.Wh, a.gates, a.h, a.c, a.tanh_c};
    if (persistent(rec)) {
      ex_.launch_persistent(rec);
    } else {
      for (int t = 0; t < T_; t++) {
        const size_t s = (size_t)t * BH;  // slot t = H_{t−1}
        ex_.launch(CellForward{B_, H, params_ + L.Wh, a.h + s, a.c + s, a.gates + (size_t)t * B_ * G, a.c + s + BH,
                               a.tanh_c + s, a.h + s + BH});
      }
    }
    ex_.launch(Copy{BH, a.h + (size_t)T_ * BH, a.carried_h});
    ex_.launch(Copy{BH, a.c + (size_t)T_ * BH, a.carried_c});
  }

  void output_loss() {
    const int H = cfg_.hidden, V = cfg_.vocab, N = B_ * T_;
    const float* hs = layers_[cfg_.layers - 1].h + (size_t)B_ * H;  // H_1 … H_T of the top layer
    const float* Wq = params_ + lo_.Wq;
    ex_.launch(Affine{N, H, V, hs, Wq, params_ + lo_.bq, logits_});                    // Y = H·Wq + bq
    ex_.launch(SoftmaxCrossEntropy{N, V, tgt_, 1.0f / (float)N, logits_, row_loss_});  // logits_ := dY
    ex_.launch(PartialSums<double>{(size_t)N, kPartials, false, row_loss_, part_});
    ex_.launch(FinishLoss{kPartials, 1.0 / N, part_, loss_});
  }

  void output_backward() {
    const int H = cfg_.hidden, V = cfg_.vocab, N = B_ * T_;
    const float* hs = layers_[cfg_.layers - 1].h + (size_t)B_ * H;
    const float* Wq = params_ + lo_.Wq;
    ex_.launch(OutputGradWeights{N, H, V, hs, logits_, grads_ + lo_.Wq, grads_ + lo_.bq});
    ex_.launch(OutputGradHidden{N, H, V, logits_, Wq, dH_});
  }

  void backward_layer(int l) {
    const int H = cfg_.hidden, G = 4 * H, N = B_ * T_;
    const size_t BH = (size_t)B_ * H;
    const Layout::Layer& L = lo_.layers[l];
    LayerBuffers& a = layers_[l];
    const RecurrentBackward rec{B_, H, T_, params_ + L.Wh, a.gates, a.c, a.tanh_c, dH_, dc_, dA_};
    if (persistent(rec)) {
      ex_.launch_persistent(rec);
    } else {
      ex_.launch(Transpose{H, G, params_ + L.Wh, a.WhT});
      for (int t = T_ - 1; t >= 0; t--) {
        const size_t row = (size_t)t * B_;
        const bool has_next = t < T_ - 1;
        ex_.launch(CellBackward{B_, H, has_next, a.WhT, has_next ? dA_ + (row + B_) * G : dA_, a.gates + row * G,
                                a.c + row * H, a.tanh_c + row * H, dH_ + row * H, dc_, dA_ + row * G});
      }
    }
    ex_.launch(WeightGrad{N, H, G, a.h, dA_, grads_ + L.Wh, grads_ + L.b});  // Σ_t H_{t−1}ᵀ·dA_t, db
    if (l == 0) {
      ex_.launch(EmbedGrad{N, cfg_.vocab, G, tok_, dA_, grads_ + L.Wx});
    } else {
      const float* below = layers_[l - 1].h + BH;
      ex_.launch(WeightGrad{N, H, G, below, dA_, grads_ + L.Wx, nullptr});
      ex_.launch(Transpose{H, G, params_ + L.Wx, a.WxT});
      ex_.launch(InputGradHidden{N, H, G, dA_, a.WxT, dH_});  // ∂L/∂H of the layer below
    }
  }

  template <class K>
  bool persistent(const K& k) {
    const bool use =
        recurrence_ == Recurrence::Persistent && persistent_fits(B_, cfg_.hidden, T_) && ex_.persistent_fits(k);
    ran_persistent_ = use;
    return use;
  }

  void clip_and_update(bool update) {
    ex_.launch(PartialSums<float>{lo_.size, kPartials, true, grads_, part_});
    ex_.launch(ClipScale{kPartials, part_, hyper_, clip_});
    if (update) ex_.launch(SgdUpdate{lo_.size, hyper_, clip_, params_, grads_});
  }

  Config cfg_;
  Layout lo_;
  Exec& ex_;
  Recurrence recurrence_;
  bool ran_persistent_ = false;
  float *params_, *grads_, *hyper_;
  double *loss_, *clip_, *part_;  // loss_: [mean loss of the last minibatch, loss sum since begin()]
  float hyper_host_[2] = {0, 0};

  int B_ = 0, T_ = 0;
  int stateB_ = 0;  // batch size of the carried state (0: none)
  int32_t *in_ = nullptr, *tok_ = nullptr, *tgt_ = nullptr;
  int32_t* staged_ = nullptr;  // input records of the minibatches of one call
  size_t staged_capacity_ = 0;
  std::vector<int32_t> staged_host_;
  std::vector<LayerBuffers> layers_;
  float *logits_ = nullptr, *dA_ = nullptr, *dH_ = nullptr, *dc_ = nullptr;
  double* row_loss_ = nullptr;
};

}  // namespace lstm::cuda
