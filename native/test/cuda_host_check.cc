// Host harness of the CUDA engine: runs the CUDA engine's training step (native/cuda/lstm_step.h,
// the same schedule and kernel bodies the GPU build runs) with every kernel's full grid executed on
// the CPU (host_exec.h), and compares it with the CPU engine (native/src/lstm.h) on the same
// weights and minibatches:
//   - forward: the loss of every minibatch;
//   - backward: the gradient norm of every minibatch, and every interface tensor's raw gradient;
//   - clipping and SGD: the parameters after several updates;
//   - state: sequential sampling (state carried across minibatches, reset at the first) and random
//     sampling (reset every minibatch);
//   - train_batches (the GPU path: several minibatches, loss read once) against per-minibatch steps;
//   - the forward-only loss (held-out perplexity) against the CPU engine's, the weights left as they
//     were, the state carried as a step carries it, and fewer kernels than a step;
//   - both recurrences: the per-step cell kernels and the persistent kernels (persistent.cuh).
// Tolerance: max |cuda − cpu| ≤ 1e-4 · max |cpu| per tensor (float32; the two engines sum in
// different orders and the CPU engine uses its own exp/tanh approximations).
//
// Build and run (test/model/native/cuda-host.test.ts does this):
//   g++ -std=c++17 -O2 -pthread -Inative/src native/test/cuda_host_check.cc native/src/{model_api,lstm,
//       kernels,gemm,thread_pool}.cc -lopenblas -o native/build/cuda_host_check && native/build/cuda_host_check
// Prints one line per case ("ok …" or "FAIL …") and exits 1 if any case fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../cuda/host_exec.h"
#include "../cuda/lstm_step.h"
#include "lstm.h"

using lstm::Config;
using lstm::Kind;
using lstm::Model;
using lstm::cuda::HostExec;
using lstm::cuda::Recurrence;
using lstm::cuda::StepModel;

namespace {

constexpr double kTol = 1e-4;

struct Lcg {
  uint64_t s;
  explicit Lcg(uint64_t seed) : s(seed * 6364136223846793005ULL + 1442695040888963407ULL) {}
  uint32_t next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(s >> 33);
  }
  float uniform(float a, float b) { return a + (b - a) * (next() / 2147483648.0f); }
  int below(int n) { return (int)(next() % (uint32_t)n); }
};

// max |a − b| / max |b| (0 when both are all zeros)
double rel_diff(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = std::max(num, (double)std::fabs(a[i] - b[i]));
    den = std::max(den, (double)std::fabs(b[i]));
  }
  return den == 0 ? num : num / den;
}
double rel_scalar(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-30); }

struct Case {
  const char* name;
  Kind kind;
  int V, H, L, B, T;
  bool random_sampling;
  int steps;
};

struct Check {
  std::string what;
  double worst = 0;
  bool ok = true;
  void add(double rel) {
    worst = std::max(worst, rel);
    if (!(rel <= kTol)) ok = false;
  }
};

bool run_case(const Case& c, Recurrence recurrence) {
  Config cfg;
  cfg.kind = c.kind;
  cfg.vocab = c.V;
  cfg.hidden = c.H;
  cfg.layers = c.L;
  Model cpu(cfg, 2);
  HostExec ex;
  StepModel<HostExec> dev(cfg, ex, recurrence);
  const size_t P = dev.size();
  if (P != cpu.num_params()) {
    std::printf("FAIL %s: %zu parameters vs the CPU engine's %zu\n", c.name, P, cpu.num_params());
    return false;
  }

  Lcg rng(1000 + c.V * 31 + c.H * 7 + c.L);
  // PyTorch's LSTM init scale, U(−1/√H, 1/√H), doubled so that gates are not all near 0.5
  const float scale = 2.0f / std::sqrt((float)c.H);
  std::vector<float> w(P);
  for (float& x : w) x = rng.uniform(-scale, scale);
  std::memcpy(cpu.params(), w.data(), P * sizeof(float));
  dev.upload_params(w.data());

  // a token stream: sequential minibatches continue each row; random ones are independent draws
  const size_t n = (size_t)c.B * c.T;
  const int rowLen = c.T * (c.steps + 7) + 1;
  std::vector<int32_t> stream((size_t)c.B * rowLen);
  for (auto& t : stream) t = rng.below(c.V);
  auto batch = [&](int k, std::vector<int32_t>& X, std::vector<int32_t>& Y) {
    X.resize(n);
    Y.resize(n);
    for (int b = 0; b < c.B; b++)
      for (int t = 0; t < c.T; t++) {
        const int pos = c.random_sampling ? rng.below(rowLen - 1) : k * c.T + t;
        X[b * c.T + t] = stream[(size_t)b * rowLen + pos];
        Y[b * c.T + t] = stream[(size_t)b * rowLen + pos + 1];
      }
  };

  Check loss{"loss"}, norm{"grad norm"}, grads{"gradients"}, params{"parameters"}, batches{"train_batches"},
      forward{"forward-only loss"};
  std::vector<int32_t> X, Y;
  const float lr = 0.5f, theta = 1.0f;
  // training steps: forward, backward, clipping (θ = 1 clips most of them), SGD, carried state
  for (int k = 0; k < c.steps; k++) {
    batch(k, X, Y);
    const bool reset = k == 0 || c.random_sampling;
    auto a = dev.step(X.data(), Y.data(), c.B, c.T, reset, true, lr, theta);
    auto b = cpu.step(X.data(), Y.data(), c.B, c.T, reset, true, lr, theta);
    loss.add(rel_scalar(a.loss, b.loss));
    norm.add(rel_scalar(a.grad_norm, b.grad_norm));
  }
  std::vector<float> pa(P), ga(P);
  dev.download_params(pa.data());
  params.add(rel_diff(pa.data(), cpu.params(), P));

  // the raw gradient of one more minibatch (from the carried state when sequential), per tensor
  batch(c.steps, X, Y);
  auto a = dev.step(X.data(), Y.data(), c.B, c.T, c.random_sampling, false, lr, theta);
  auto b = cpu.step(X.data(), Y.data(), c.B, c.T, c.random_sampling, false, lr, theta);
  loss.add(rel_scalar(a.loss, b.loss));
  norm.add(rel_scalar(a.grad_norm, b.grad_norm));
  dev.download_grads(ga.data());
  std::string worst_view;
  double worst_rel = -1;
  for (const lstm::View& v : cpu.views()) {
    std::vector<float> x(v.size()), y(v.size());
    lstm::copy_view(v, ga.data() + v.offset, v.ld, x.data(), v.cols);
    cpu.get_grad(v, y.data());
    const double r = rel_diff(x.data(), y.data(), v.size());
    grads.add(r);
    if (r > worst_rel) worst_rel = r, worst_view = v.name;
  }

  // train_batches (what the GPU worker calls) against the CPU engine's steps, 3 minibatches
  std::vector<int32_t> Xs, Ys;
  for (int k = 0; k < 3; k++) {
    batch(c.steps + 1 + k, X, Y);
    Xs.insert(Xs.end(), X.begin(), X.end());
    Ys.insert(Ys.end(), Y.begin(), Y.end());
  }
  const double la = dev.train_batches(Xs.data(), Ys.data(), 3, c.B, c.T, true, c.random_sampling, lr, theta);
  const double lb = cpu.train_batches(Xs.data(), Ys.data(), 3, c.B, c.T, true, c.random_sampling, lr, theta);
  batches.add(rel_scalar(la, lb));
  dev.download_params(pa.data());
  batches.add(rel_diff(pa.data(), cpu.params(), P));

  // the persistent kernels must really have run (every harness shape fits them)
  const bool path_ok = dev.ran_persistent() == (recurrence == Recurrence::Persistent);

  // the forward-only loss of two minibatches, the second from the state the first carried: against
  // the CPU engine's, and on the same engine against steps without update (the same forward
  // kernels, so the same bits); neither engine's weights change
  std::vector<int32_t> X2, Y2;
  batch(c.steps + 4, X, Y);
  batch(c.steps + 5, X2, Y2);
  std::vector<float> dev_before(P), dev_after(P);
  const std::vector<float> cpu_before(cpu.params(), cpu.params() + P);
  dev.download_params(dev_before.data());
  const size_t launches_before = ex.launches;
  const double f1 = dev.loss(X.data(), Y.data(), c.B, c.T, true);
  const size_t forward_launches = ex.launches - launches_before;
  const double f2 = dev.loss(X2.data(), Y2.data(), c.B, c.T, false);
  forward.add(rel_scalar(f1, cpu.forward_loss(X.data(), Y.data(), c.B, c.T, true)));
  forward.add(rel_scalar(f2, cpu.forward_loss(X2.data(), Y2.data(), c.B, c.T, false)));
  dev.download_params(dev_after.data());
  const bool unchanged = dev_after == dev_before && std::equal(cpu_before.begin(), cpu_before.end(), cpu.params());
  const size_t step_before = ex.launches;
  const double g1 = dev.step(X.data(), Y.data(), c.B, c.T, true, false, lr, theta).loss;
  const size_t step_launches = ex.launches - step_before;
  const double g2 = dev.step(X2.data(), Y2.data(), c.B, c.T, false, false, lr, theta).loss;
  const bool same_as_step = f1 == g1 && f2 == g2;
  const bool fewer_kernels = forward_launches < step_launches;
  if (!unchanged) std::printf("  %s: the forward-only loss changed the weights\n", c.name);
  if (!same_as_step)
    std::printf("  %s: forward-only losses %.9g, %.9g vs the step's %.9g, %.9g\n", c.name, f1, f2, g1, g2);
  if (!fewer_kernels)
    std::printf("  %s: forward-only %zu kernels, a step %zu\n", c.name, forward_launches, step_launches);

  const bool ok = loss.ok && norm.ok && grads.ok && params.ok && batches.ok && path_ok && forward.ok && unchanged &&
                  same_as_step && fewer_kernels;
  std::printf(
      "%s %s/%s: kind=%s V=%d H=%d L=%d B=%d T=%d sampling=%s steps=%d | rel loss %.2e, grad norm %.2e, "
      "gradients %.2e (worst %s), parameters %.2e, train_batches %.2e, forward-only loss %.2e (%zu of a step's %zu "
      "kernels) | %zu kernel launches\n",
      ok ? "ok" : "FAIL", c.name, recurrence == Recurrence::Persistent ? "persistent" : "steps",
      c.kind == Kind::Scratch ? "scratch" : "concise", c.V, c.H, c.L, c.B, c.T,
      c.random_sampling ? "random" : "sequential", c.steps, loss.worst, norm.worst, grads.worst, worst_view.c_str(),
      params.worst, batches.worst, forward.worst, forward_launches, step_launches, ex.launches);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const Case cases[] = {
      {"scratch-small-seq", Kind::Scratch, 28, 32, 1, 4, 5, false, 3},
      {"scratch-odd-random", Kind::Scratch, 11, 37, 1, 3, 7, true, 3},
      {"concise-odd-seq", Kind::Concise, 13, 37, 1, 5, 6, false, 3},
      {"concise-2layer-seq", Kind::Concise, 13, 20, 2, 5, 6, false, 3},
      {"concise-3layer-random", Kind::Concise, 7, 9, 3, 2, 3, true, 3},
      {"concise-tiny", Kind::Concise, 2, 1, 1, 1, 1, false, 2},
      {"scratch-d2l", Kind::Scratch, 28, 256, 1, 32, 35, false, 2},
      {"concise-d2l-2layer", Kind::Concise, 28, 64, 2, 32, 35, false, 2},
  };
  // optional filter: run only the cases whose name contains argv[1]
  const char* only = argc > 1 ? argv[1] : nullptr;
  int failed = 0, run = 0;
  for (const Recurrence r : {Recurrence::Steps, Recurrence::Persistent})
    for (const Case& c : cases) {
      if (only && !std::strstr(c.name, only)) continue;
      run++;
      if (!run_case(c, r)) failed++;
    }
  std::printf("%d passed, %d failed\n", run - failed, failed);
  return failed ? 1 : 0;
}
