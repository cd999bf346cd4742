// The CUDA engine: the device executor of lstm_step.h and CudaModel (lstm_cuda.h).
//
// Per model: one CUDA stream, its buffers, and one CUDA graph per (batch size, steps, pass: loss
// only, gradient, or training step) captured from the first minibatch of that shape and replayed
// for every later one. A train_batches call is: upload the hyper-parameters and all the
// minibatches' tokens, then per minibatch one device-to-device copy of its tokens into place and
// one graph launch, then one read of the loss sum — no host synchronisation between minibatches
// (clipping is a device-side factor).
// LSTM_CUDA_GRAPHS=0 launches the kernels one by one instead (to measure what the graph saves).
// LSTM_CUDA_RECURRENT=persistent runs each layer's recurrence as one persistent cooperative launch
// per direction (persistent.cuh) where it fits; the per-step kernels are the default until the
// persistent ones have been measured on a GPU.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "../src/lstm.h"
#include "lstm_cuda.h"
#include "lstm_step.h"

namespace lstm::cuda {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

// Thread i of kernel K (kernels.cuh): the same body the host harness runs.
template <class K>
__global__ void __launch_bounds__(kBlockThreads) run_kernel(K k) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < k.threads()) k(i);
}

// A persistent kernel (persistent.cuh): its phases, with the block barrier and the grid barrier
// between them. Needs a cooperative launch (all blocks resident at once).
template <class K>
__global__ void __launch_bounds__(1024) run_persistent(K k) {
  extern __shared__ float smem[];
  cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  k.load_weights(blockIdx.x, threadIdx.x, smem);
  for (int s = 0; s < k.steps(); s++) {
    const int t = k.time_of(s);
    __syncthreads();  // the previous step's reads of shared memory are done
    k.load_state(blockIdx.x, threadIdx.x, t, smem);
    __syncthreads();
    k.step(blockIdx.x, threadIdx.x, t, smem);
    grid.sync();  // every block's step t is written before any block reads it
  }
}

Recurrence recurrence_from_env() {
  const char* e = std::getenv("LSTM_CUDA_RECURRENT");
  return e && std::strcmp(e, "persistent") == 0 ? Recurrence::Persistent : Recurrence::Steps;
}

bool graphs_from_env() {
  const char* e = std::getenv("LSTM_CUDA_GRAPHS");
  return !(e && std::strcmp(e, "0") == 0);
}

}  // namespace

struct DeviceExec {
  int device;
  cudaStream_t stream = nullptr;
  bool use_graphs = graphs_from_env();
  std::unordered_map<uint64_t, cudaGraphExec_t> graphs;

  explicit DeviceExec(int dev) : device(dev) {
    check(cudaSetDevice(device), "set device");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream create");
  }
  ~DeviceExec() {
    forget_graphs();
    if (stream) cudaStreamDestroy(stream);
  }
  DeviceExec(const DeviceExec&) = delete;
  DeviceExec& operator=(const DeviceExec&) = delete;

  // CUDA's current device is per host thread, and calls come from whichever libuv thread runs them.
  void activate() { check(cudaSetDevice(device), "set device"); }

  template <class K>
  void launch(const K& k) {
    const size_t n = k.threads();
    if (n == 0) return;
    const size_t blocks = (n + kBlockThreads - 1) / kBlockThreads;
    run_kernel<K><<<(unsigned)blocks, kBlockThreads, 0, stream>>>(k);
    check(cudaGetLastError(), "kernel launch");
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), "malloc");
    check(cudaMemset(p, 0, bytes), "memset");
    return p;
  }
  void free(void* p) { cudaFree(p); }
  // Waits for the copy, so the (pageable) source can be reused at once; called once per
  // train_batches call for the hyper-parameters and the tokens, never between minibatches.
  void upload(void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), "upload");
    check(cudaStreamSynchronize(stream), "upload");
  }
  void copy(void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "copy");
  }
  void download(void* dst, const void* src, size_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), "download");
    check(cudaStreamSynchronize(stream), "download");
  }
  template <class F>
  void replay(uint64_t key, F enqueue) {
    if (!use_graphs) {
      enqueue();
      return;
    }
    auto it = graphs.find(key);
    if (it == graphs.end()) {
      cudaGraph_t graph = nullptr;
      check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
      try {
        enqueue();
      } catch (...) {
        cudaStreamEndCapture(stream, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      check(cudaStreamEndCapture(stream, &graph), "end capture");
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      check(e, "graph instantiate");
      it = graphs.emplace(key, exec).first;
    }
    check(cudaGraphLaunch(it->second, stream), "graph launch");
  }
  void forget_graphs() {
    for (auto& kv : graphs) cudaGraphExecDestroy(kv.second);
    graphs.clear();
  }

  // All of the kernel's blocks must fit on the device at once (with the dynamic shared memory it
  // asks for); otherwise the grid barrier could never be reached, and the per-step kernels run.
  template <class K>
  bool persistent_fits(const K& k) {
    int coop = 0, sms = 0, per_sm = 0;
    check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device), "attribute");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "attribute");
    const size_t bytes = k.smem_floats() * sizeof(float);
    check(cudaFuncSetAttribute(run_persistent<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
          "smem attribute");
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, run_persistent<K>, k.block_threads(), bytes),
          "occupancy");
    return coop != 0 && (long)per_sm * sms >= k.blocks();
  }
  template <class K>
  void launch_persistent(const K& k) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)k.blocks());
    cfg.blockDim = dim3((unsigned)k.block_threads());
    cfg.dynamicSmemBytes = k.smem_floats() * sizeof(float);
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    check(cudaLaunchKernelEx(&cfg, run_persistent<K>, k), "persistent launch");
  }
};

DeviceInfo device_info() {
  DeviceInfo info;
  cudaDriverGetVersion(&info.driver);
  cudaRuntimeGetVersion(&info.runtime);
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    info.error = info.driver == 0 ? "no NVIDIA driver (libcuda.so.1) found" : cudaGetErrorString(e);
    cudaGetLastError();  // clear it
    return info;
  }
  if (n == 0) {
    info.error = "no CUDA device";
    return info;
  }
  info.count = n;
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
    info.name = p.name;
    info.major = p.major;
    info.minor = p.minor;
  }
  return info;
}

// Host copies: `host` (a CPU-engine model, also used for generation) holds the parameters;
// host_newer / device_newer say which side was written last.
struct CudaModel::Impl {
  DeviceExec ex;
  StepModel<DeviceExec> model;
  Model host;
  bool host_newer = true;
  bool device_newer = false;
  std::vector<float> grads;

  Impl(const Config& cfg, int device) : ex(device), model(cfg, ex, recurrence_from_env()), host(cfg, 1) {}

  void to_device() {
    ex.activate();
    if (host_newer) model.upload_params(host.params());
    host_newer = false;
  }
  void to_host() {
    if (device_newer) {
      ex.activate();
      model.download_params(host.params());
    }
    device_newer = false;
  }
};

CudaModel::CudaModel(const Config& config, int device) {
  const DeviceInfo info = device_info();
  if (info.count == 0) throw std::runtime_error("no usable GPU: " + info.error);
  if (device < 0 || device >= info.count)
    throw std::runtime_error("CUDA device " + std::to_string(device) + " does not exist");
  impl_ = std::make_unique<Impl>(config, device);
}

CudaModel::~CudaModel() = default;

const Config& CudaModel::config() const { return impl_->host.config(); }
const std::vector<View>& CudaModel::views() const { return impl_->host.views(); }

void CudaModel::set_param(const View& v, const float* src) {
  impl_->to_host();
  impl_->host.set_param(v, src);
  impl_->host_newer = true;
}

void CudaModel::get_param(const View& v, float* dst) const {
  impl_->to_host();
  impl_->host.get_param(v, dst);
}

void CudaModel::get_grad(const View& v, float* dst) const {
  Impl& m = *impl_;
  m.ex.activate();
  m.grads.resize(m.model.size());
  m.model.download_grads(m.grads.data());
  copy_view(v, m.grads.data() + v.offset, v.ld, dst, v.cols);
}

StepResult CudaModel::step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr,
                           float theta) {
  impl_->to_device();
  const StepResult r = impl_->model.step(X, Y, B, T, reset, update, lr, theta);
  if (update) impl_->device_newer = true;
  return r;
}

double CudaModel::forward_loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) {
  impl_->to_device();
  return impl_->model.loss(X, Y, B, T, reset);  // the weights are unchanged: the host copy stays current
}

double CudaModel::train_batches(const int32_t* X, const int32_t* Y, int batches, int B, int T, bool reset_first,
                                bool reset_each, float lr, float theta) {
  impl_->to_device();
  const double loss = impl_->model.train_batches(X, Y, batches, B, T, reset_first, reset_each, lr, theta);
  impl_->device_newer = true;
  return loss;
}

void CudaModel::reset_state() { impl_->model.reset_state(); }

const char* CudaModel::path() const { return impl_->model.ran_persistent() ? "cuda-persistent" : "cuda-steps"; }

void CudaModel::generate_step(int32_t token, float* h, float* c, float* logits) const {
  impl_->to_host();
  impl_->host.generate_step(token, h, c, logits);
}

}  // namespace lstm::cuda
