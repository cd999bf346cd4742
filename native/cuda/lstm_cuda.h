// The CUDA engine as a ModelApi (native/src/model_api.h), for the addon. Plain C++: no CUDA types,
// so addon.cc compiles with g++; the implementation (lstm_cuda.cu) is compiled by nvcc.
//
// Training runs on the GPU (lstm_step.h: the minibatch as one CUDA graph, clipping and SGD on the
// device, the loss read back once per train_batches call). Each model has its own CUDA stream, so
// several models (jobs) share one GPU. Generation (batch 1, a few kFLOP per character) runs on the
// CPU engine's code over a host copy of the weights, refreshed after training.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../src/model_api.h"

namespace lstm::cuda {

struct DeviceInfo {
  int count = 0;             // visible GPUs; 0 with `error` set when none can be used
  std::string error;         // why not (no driver, no device, …)
  std::string name;          // device 0's name
  int major = 0, minor = 0;  // compute capability of device 0
  int driver = 0, runtime = 0;
};
// What CUDA sees in this process (does not throw).
DeviceInfo device_info();

class CudaModel : public ModelApi {
 public:
  // Throws std::runtime_error when no GPU can be used.
  CudaModel(const Config& config, int device = 0);
  ~CudaModel() override;

  const Config& config() const override;
  const std::vector<View>& views() const override;
  void set_param(const View& v, const float* src) override;
  void get_param(const View& v, float* dst) const override;
  void get_grad(const View& v, float* dst) const override;
  StepResult step(const int32_t* X, const int32_t* Y, int B, int T, bool reset, bool update, float lr,
                  float theta) override;
  double forward_loss(const int32_t* X, const int32_t* Y, int B, int T, bool reset) override;
  double train_batches(const int32_t* X, const int32_t* Y, int batches, int B, int T, bool reset_first, bool reset_each,
                       float lr, float theta) override;
  void reset_state() override;
  void generate_step(int32_t token, float* h, float* c, float* logits) const override;
  int threads() const override { return 1; }
  const char* device() const override { return "cuda"; }
  const char* path() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lstm::cuda
