// Node-API binding of the native LSTM engine: the CPU model (lstm.h) and, in a build with
// LSTM_CUDA, the CUDA model (native/cuda/lstm_cuda.h), both behind ModelApi. Training steps and
// forward-only loss passes run as Napi::AsyncWorker on the libuv thread pool (the event loop stays
// free during a minibatch); generation steps run inline for small models and as an AsyncWorker for
// large ones. One model accepts one call at a time: a call while a step is in flight is refused
// with an error (the TypeScript wrapper queues calls so this does not happen in normal use).
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "kernels.h"
#include "lstm.h"
#include "model_api.h"
#ifdef LSTM_CUDA
#include "../cuda/lstm_cuda.h"
#endif

extern "C" {
// OpenBLAS extensions (declared here so that any cblas.h works)
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
int openblas_get_num_procs(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace {

// A CPU step runs on `threads` threads of the process-wide pool (each calling OpenBLAS
// single-threaded, and OpenBLAS's thread count is process-wide): CPU training steps of different
// models run one at a time (on a CPU box they would only contend for the same cores anyway). CUDA
// models each have their own stream and run concurrently.
std::mutex g_compute;

struct Shared {
  std::unique_ptr<lstm::ModelApi> model;
  bool busy = false;  // touched on the JS thread only
  bool dispose_pending = false;
};

Napi::Error Err(Napi::Env env, const std::string& msg) { return Napi::Error::New(env, "native engine: " + msg); }

// What a StepWorker runs: a training step (trainStep), a step without update that hands back the
// gradient (lossAndGrads), the forward pass and loss alone (loss), or several training steps
// (trainBatches).
enum class Call { Train, Gradient, Loss, Batches };

// One minibatch (or `batches` of them) off the event loop.
class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, std::shared_ptr<Shared> shared, Call call, std::vector<int32_t> X, std::vector<int32_t> Y,
             int B, int T, bool reset, float lr = 0, float theta = 0, int batches = 1, bool reset_each = false)
      : Napi::AsyncWorker(env, "lstm-native:step"),
        deferred_(Napi::Promise::Deferred::New(env)),
        shared_(std::move(shared)),
        call_(call),
        X_(std::move(X)),
        Y_(std::move(Y)),
        B_(B),
        T_(T),
        reset_(reset),
        lr_(lr),
        theta_(theta),
        batches_(batches),
        reset_each_(reset_each) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      lstm::ModelApi& m = *shared_->model;
      std::unique_lock<std::mutex> lock(g_compute, std::defer_lock);
      if (std::string(m.device()) == "cpu") lock.lock();
      switch (call_) {
        case Call::Train:
        case Call::Gradient:
          result_ = m.step(X_.data(), Y_.data(), B_, T_, reset_, call_ == Call::Train, lr_, theta_);
          break;
        case Call::Loss:
          result_.loss = m.forward_loss(X_.data(), Y_.data(), B_, T_, reset_);
          break;
        case Call::Batches:
          result_.loss = m.train_batches(X_.data(), Y_.data(), batches_, B_, T_, reset_, reset_each_, lr_, theta_);
          break;
      }
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    shared_->busy = false;
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", result_.loss);
    if (call_ == Call::Train || call_ == Call::Gradient) out.Set("gradNorm", result_.grad_norm);
    if (call_ == Call::Gradient) {
      Napi::Object grads = Napi::Object::New(env);
      for (const lstm::View& v : shared_->model->views()) {
        Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
        shared_->model->get_grad(v, a.Data());
        grads.Set(v.name, a);
      }
      out.Set("grads", grads);
    }
    if (shared_->dispose_pending) shared_->model.reset();
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    shared_->busy = false;
    if (shared_->dispose_pending) shared_->model.reset();
    deferred_.Reject(Err(Env(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Shared> shared_;
  Call call_;
  std::vector<int32_t> X_, Y_;
  int B_, T_;
  bool reset_;
  float lr_, theta_;
  int batches_;
  bool reset_each_;
  lstm::StepResult result_{0, 0};
};

// One batch-1 generation step off the event loop (for large models: ~8·L·H² multiply-adds).
class GenerateWorker : public Napi::AsyncWorker {
 public:
  GenerateWorker(Napi::Env env, std::shared_ptr<Shared> shared, int token, Napi::Float32Array h, Napi::Float32Array c)
      : Napi::AsyncWorker(env, "lstm-native:generate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        shared_(std::move(shared)),
        token_(token),
        h_(h.Data(), h.Data() + h.ElementLength()),
        c_(c.Data(), c.Data() + c.ElementLength()),
        logits_(shared_->model->config().vocab),
        hRef_(Napi::Persistent(h)),
        cRef_(Napi::Persistent(c)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      shared_->model->generate_step(token_, h_.data(), c_.data(), logits_.data());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    shared_->busy = false;
    // the state arrays are updated only when the step succeeded
    Napi::Float32Array h = hRef_.Value(), c = cRef_.Value();
    std::copy(h_.begin(), h_.end(), h.Data());
    std::copy(c_.begin(), c_.end(), c.Data());
    Napi::Float32Array logits = Napi::Float32Array::New(env, logits_.size());
    std::copy(logits_.begin(), logits_.end(), logits.Data());
    if (shared_->dispose_pending) shared_->model.reset();
    deferred_.Resolve(logits);
  }

  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    shared_->busy = false;
    if (shared_->dispose_pending) shared_->model.reset();
    deferred_.Reject(Err(Env(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Shared> shared_;
  int token_;
  std::vector<float> h_, c_, logits_;
  Napi::Reference<Napi::Float32Array> hRef_, cRef_;
};

int DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? (int)n : 1;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {
                           InstanceMethod<&NativeModel::ParamShapes>("paramShapes"),
                           InstanceMethod<&NativeModel::SetWeights>("setWeights"),
                           InstanceMethod<&NativeModel::GetWeights>("getWeights"),
                           InstanceMethod<&NativeModel::TrainStep>("trainStep"),
                           InstanceMethod<&NativeModel::LossAndGrads>("lossAndGrads"),
                           InstanceMethod<&NativeModel::Loss>("loss"),
                           InstanceMethod<&NativeModel::TrainBatches>("trainBatches"),
                           InstanceMethod<&NativeModel::GenerateStep>("generateStep"),
                           InstanceMethod<&NativeModel::GenerateStepAsync>("generateStepAsync"),
                           InstanceMethod<&NativeModel::ResetState>("resetState"),
                           InstanceMethod<&NativeModel::Profile>("profile"),
                           InstanceMethod<&NativeModel::ResetProfile>("resetProfile"),
                           InstanceMethod<&NativeModel::Dispose>("dispose"),
                           InstanceAccessor<&NativeModel::Busy>("busy"),
                           InstanceAccessor<&NativeModel::Threads>("threads"),
                           InstanceAccessor<&NativeModel::Device>("device"),
                           InstanceAccessor<&NativeModel::Path>("path"),
                       });
  }

  // new NativeModel({ kind, vocabSize, numHiddens, numLayers, threads?, device?: 'cpu' | 'cuda', cudaDevice? })
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Err(env, "NativeModel(config) needs a config object");
    Napi::Object cfg = info[0].As<Napi::Object>();
    auto num = [&](const char* key, double dflt) -> double {
      Napi::Value v = cfg.Get(key);
      if (v.IsUndefined()) return dflt;
      if (!v.IsNumber()) throw Err(env, std::string(key) + " must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    std::string kind = cfg.Get("kind").IsString() ? cfg.Get("kind").As<Napi::String>().Utf8Value() : "";
    if (kind != "scratch" && kind != "concise") throw Err(env, "kind must be 'scratch' or 'concise'");
    lstm::Config c;
    c.kind = kind == "scratch" ? lstm::Kind::Scratch : lstm::Kind::Concise;
    double V = num("vocabSize", -1), H = num("numHiddens", -1), L = num("numLayers", 1);
    double threads = num("threads", DefaultThreads());
    if (!(V >= 1 && V <= 1e6) || !(H >= 1 && H <= 65536) || !(L >= 1 && L <= 64) || V != (int)V || H != (int)H ||
        L != (int)L)
      throw Err(env, "vocabSize, numHiddens, numLayers must be positive integers");
    if (!(threads >= 1 && threads <= 1024)) throw Err(env, "threads must be >= 1");
    c.vocab = (int)V;
    c.hidden = (int)H;
    c.layers = (int)L;
    std::string device = cfg.Get("device").IsString() ? cfg.Get("device").As<Napi::String>().Utf8Value() : "cpu";
    if (device != "cpu" && device != "cuda") throw Err(env, "device must be 'cpu' or 'cuda'");
    double cudaDevice = num("cudaDevice", 0);
    shared_ = std::make_shared<Shared>();
    try {
      if (device == "cuda") {
#ifdef LSTM_CUDA
        shared_->model = std::make_unique<lstm::cuda::CudaModel>(c, (int)cudaDevice);
#else
        (void)cudaDevice;
        throw std::runtime_error("this build of the addon has no CUDA support (built without nvcc)");
#endif
      } else {
        shared_->model = std::make_unique<lstm::Model>(c, (int)threads);
      }
    } catch (const std::exception& e) {
      throw Err(env, e.what());
    }
  }

 private:
  lstm::ModelApi& Ready(Napi::Env env) {
    if (!shared_->model || shared_->dispose_pending) throw Err(env, "model is disposed");
    if (shared_->busy) throw Err(env, "model is busy (a training step is in flight)");
    return *shared_->model;
  }

  Napi::Value ParamShapes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    Napi::Object out = Napi::Object::New(env);
    for (const lstm::View& v : m.views()) {
      Napi::Array shape = Napi::Array::New(env, v.shape.size());
      for (size_t i = 0; i < v.shape.size(); i++) shape.Set((uint32_t)i, v.shape[i]);
      out.Set(v.name, shape);
    }
    return out;
  }

  // setWeights({ name: Float32Array }) — every parameter, each of its exact size.
  Napi::Value SetWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    if (info.Length() < 1 || !info[0].IsObject()) throw Err(env, "setWeights needs an object of Float32Arrays");
    Napi::Object w = info[0].As<Napi::Object>();
    std::vector<std::pair<const lstm::View*, Napi::Float32Array>> todo;
    for (const lstm::View& v : m.views()) {
      Napi::Value a = w.Get(v.name);
      if (!a.IsTypedArray() || a.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw Err(env, "weight '" + v.name + "' is missing or not a Float32Array");
      Napi::Float32Array f = a.As<Napi::Float32Array>();
      if (f.ElementLength() != v.size())
        throw Err(env, "weight '" + v.name + "' has " + std::to_string(f.ElementLength()) + " elements, expected " +
                           std::to_string(v.size()));
      todo.emplace_back(&v, f);
    }
    for (auto& [v, f] : todo) m.set_param(*v, f.Data());
    return env.Undefined();
  }

  Napi::Value GetWeights(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    Napi::Object out = Napi::Object::New(env);
    for (const lstm::View& v : m.views()) {
      Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
      m.get_param(v, a.Data());
      out.Set(v.name, a);
    }
    return out;
  }

  static std::vector<int32_t> Tokens(Napi::Env env, Napi::Value v, size_t n, const char* what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Err(env, std::string(what) + " must be an Int32Array");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    if (a.ElementLength() != n) throw Err(env, std::string(what) + " must have batchSize*numSteps elements");
    return std::vector<int32_t>(a.Data(), a.Data() + n);
  }

  // Token ids index weight rows (on the GPU without bounds checks): every one is checked here.
  static void CheckTokens(Napi::Env env, const std::vector<int32_t>& X, const std::vector<int32_t>& Y, int V) {
    for (size_t k = 0; k < X.size(); k++)
      if (X[k] < 0 || X[k] >= V || Y[k] < 0 || Y[k] >= V) throw Err(env, "token id out of range [0, vocabSize)");
  }

  // (X, Y, batchSize, numSteps, resetState[, lr, clipTheta]) → Promise<{ loss[, gradNorm][, grads] }>
  Napi::Value Step(const Napi::CallbackInfo& info, Call call) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    const bool update = call == Call::Train;
    if (info.Length() < (update ? 7u : 5u)) throw Err(env, "wrong number of arguments");
    if (!info[2].IsNumber() || !info[3].IsNumber()) throw Err(env, "batchSize and numSteps must be numbers");
    int B = info[2].As<Napi::Number>().Int32Value(), T = info[3].As<Napi::Number>().Int32Value();
    if (B < 1 || T < 1 || (double)B * T > 1e8) throw Err(env, "batchSize and numSteps must be positive");
    size_t n = (size_t)B * T;
    std::vector<int32_t> X = Tokens(env, info[0], n, "X"), Y = Tokens(env, info[1], n, "Y");
    CheckTokens(env, X, Y, m.config().vocab);
    bool reset = info[4].ToBoolean().Value();
    float lr = 0, theta = 0;
    if (update) {
      if (!info[5].IsNumber() || !info[6].IsNumber()) throw Err(env, "lr and clipTheta must be numbers");
      lr = info[5].As<Napi::Number>().FloatValue();
      theta = info[6].As<Napi::Number>().FloatValue();
    }
    auto* w = new StepWorker(env, shared_, call, std::move(X), std::move(Y), B, T, reset, lr, theta);
    Napi::Promise p = w->Promise();
    shared_->busy = true;
    w->Queue();
    return p;
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) { return Step(info, Call::Train); }
  Napi::Value LossAndGrads(const Napi::CallbackInfo& info) { return Step(info, Call::Gradient); }
  // loss(X, Y, batchSize, numSteps, resetState) → Promise<{ loss }>: ModelApi::forward_loss.
  Napi::Value Loss(const Napi::CallbackInfo& info) { return Step(info, Call::Loss); }

  // trainBatches(X, Y, batches, batchSize, numSteps, resetFirst, resetEach, lr, clipTheta) →
  // Promise<{ loss }>: `batches` consecutive (batchSize, numSteps) minibatches of X and Y, the
  // mean loss over all of them (ModelApi::train_batches).
  Napi::Value TrainBatches(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    if (info.Length() < 9) throw Err(env, "wrong number of arguments");
    for (int k : {2, 3, 4, 7, 8})
      if (!info[k].IsNumber()) throw Err(env, "batches, batchSize, numSteps, lr and clipTheta must be numbers");
    const int nb = info[2].As<Napi::Number>().Int32Value(), B = info[3].As<Napi::Number>().Int32Value(),
              T = info[4].As<Napi::Number>().Int32Value();
    if (nb < 1 || B < 1 || T < 1 || (double)nb * B * T > 1e8)
      throw Err(env, "batches, batchSize and numSteps must be positive");
    const size_t n = (size_t)nb * B * T;
    std::vector<int32_t> X = Tokens(env, info[0], n, "X"), Y = Tokens(env, info[1], n, "Y");
    CheckTokens(env, X, Y, m.config().vocab);
    auto* w = new StepWorker(env, shared_, Call::Batches, std::move(X), std::move(Y), B, T, info[5].ToBoolean().Value(),
                             info[7].As<Napi::Number>().FloatValue(), info[8].As<Napi::Number>().FloatValue(), nb,
                             info[6].ToBoolean().Value());
    Napi::Promise p = w->Promise();
    shared_->busy = true;
    w->Queue();
    return p;
  }

  // (token, h: Float32Array(L·H), c: Float32Array(L·H)), validated
  std::tuple<int, Napi::Float32Array, Napi::Float32Array> GenerateArgs(const Napi::CallbackInfo& info,
                                                                       lstm::ModelApi& m) {
    Napi::Env env = info.Env();
    const auto& c = m.config();
    if (info.Length() < 3 || !info[0].IsNumber()) throw Err(env, "generateStep(token, h, c)");
    const double token = info[0].As<Napi::Number>().DoubleValue();
    if (!(token >= 0 && token < c.vocab) || token != (int)token) throw Err(env, "token id out of range [0, vocabSize)");
    size_t n = (size_t)c.layers * c.hidden;
    auto state = [&](Napi::Value v, const char* what) {
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
          v.As<Napi::Float32Array>().ElementLength() != n)
        throw Err(env, std::string(what) + " must be a Float32Array of numLayers*numHiddens");
      return v.As<Napi::Float32Array>();
    };
    return {(int)token, state(info[1], "h"), state(info[2], "c")};
  }

  // generateStep(token, h, c) → logits Float32Array(V); h, c updated in place. Synchronous (small models).
  Napi::Value GenerateStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    auto [token, h, c] = GenerateArgs(info, m);
    Napi::Float32Array logits = Napi::Float32Array::New(env, m.config().vocab);
    m.generate_step(token, h.Data(), c.Data(), logits.Data());
    return logits;
  }

  // generateStepAsync(token, h, c) → Promise<logits>; h, c updated when it resolves. Off the event loop.
  Napi::Value GenerateStepAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lstm::ModelApi& m = Ready(env);
    auto [token, h, c] = GenerateArgs(info, m);
    auto* w = new GenerateWorker(env, shared_, token, h, c);
    Napi::Promise p = w->Promise();
    shared_->busy = true;
    w->Queue();
    return p;
  }

  Napi::Value ResetState(const Napi::CallbackInfo& info) {
    Ready(info.Env()).reset_state();
    return info.Env().Undefined();
  }

  // { steps, phasesMs: { gather: …, … } } accumulated since creation or resetProfile() (CPU models;
  // a CUDA model reports no phases)
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    auto* cpu = Ready(env).as_cpu_model();
    if (!cpu) {
      out.Set("steps", 0);
      out.Set("phasesMs", Napi::Object::New(env));
      return out;
    }
    lstm::Model& m = *cpu;
    out.Set("steps", (double)m.steps);
    Napi::Object ph = Napi::Object::New(env);
    for (int p = 0; p < lstm::kNumPhases; p++) ph.Set(lstm::phase_name(p), m.phase_ns[p] / 1e6);
    out.Set("phasesMs", ph);
    return out;
  }

  Napi::Value ResetProfile(const Napi::CallbackInfo& info) {
    auto* m = Ready(info.Env()).as_cpu_model();
    if (m) {
      m->phase_ns.fill(0);
      m->steps = 0;
    }
    return info.Env().Undefined();
  }

  // Frees the native memory now, or when the step in flight ends.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (shared_->busy)
      shared_->dispose_pending = true;
    else
      shared_->model.reset();
    return info.Env().Undefined();
  }

  Napi::Value Busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), shared_->busy); }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), shared_->model ? shared_->model->device() : "disposed");
  }
  Napi::Value Path(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), shared_->model ? shared_->model->path() : "disposed");
  }
  Napi::Value Threads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), shared_->model ? shared_->model->threads() : 0);
  }

  std::shared_ptr<Shared> shared_;
};

// info() → { blas, blasConfig, blasCorename, blasThreads, procs, defaultThreads, kernelIsa, gemmKernel, recurrentGemm,
// cuda: { built, devices, error?, name?, capability?, driverVersion, runtimeVersion } }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("blas", "openblas");
  out.Set("blasConfig", openblas_get_config());
  out.Set("blasCorename", openblas_get_corename());
  out.Set("blasThreads", openblas_get_num_threads());
  out.Set("procs", openblas_get_num_procs());
  out.Set("defaultThreads", DefaultThreads());
  out.Set("kernelIsa", lstm::kernel_isa());
  out.Set("gemmKernel", lstm::gemm_kernel_name());
  const char* rec = std::getenv("LSTM_NATIVE_RECURRENT");
  out.Set("recurrentGemm", rec && std::string(rec) == "blas" ? "openblas" : "packed");
  Napi::Object cuda = Napi::Object::New(env);
#ifdef LSTM_CUDA
  const lstm::cuda::DeviceInfo d = lstm::cuda::device_info();
  cuda.Set("built", true);
  cuda.Set("devices", d.count);
  if (!d.error.empty()) cuda.Set("error", d.error);
  if (d.count > 0) {
    cuda.Set("name", d.name);
    cuda.Set("capability", std::to_string(d.major) + "." + std::to_string(d.minor));
  }
  cuda.Set("driverVersion", d.driver);
  cuda.Set("runtimeVersion", d.runtime);
#else
  cuda.Set("built", false);
  cuda.Set("devices", 0);
  cuda.Set("error", "the addon was built without nvcc");
#endif
  out.Set("cuda", cuda);
  return out;
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeModel", NativeModel::Init(env));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}

}  // namespace

NODE_API_MODULE(lstm_native, InitModule)
