// The host executor of lstm_step.h: buffers are plain memory and a launch runs every thread of the
// kernel's grid — the same grid as on the GPU (blocks of kBlockThreads, the tail guarded) — one
// after another on the calling CPU thread. Used by the host harness (native/test/cuda_host_check.cc)
// to check the CUDA engine's arithmetic without a GPU.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "kernels.cuh"
#include "persistent.cuh"

namespace lstm::cuda {

struct HostExec {
  size_t launches = 0;    // kernels run (for the harness's report)
  size_t graph_runs = 0;  // minibatches enqueued

  template <class K>
  void launch(const K& k) {
    const size_t n = k.threads();
    const size_t blocks = (n + kBlockThreads - 1) / kBlockThreads;
    for (size_t block = 0; block < blocks; block++)
      for (size_t thread = 0; thread < kBlockThreads; thread++) {
        const size_t i = block * kBlockThreads + thread;
        if (i < n) k(i);
      }
    launches++;
  }
  void* alloc(size_t bytes) {
    void* p = std::calloc(1, bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void free(void* p) { std::free(p); }
  void upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  template <class F>
  void replay(uint64_t, F enqueue) {
    enqueue();
    graph_runs++;
  }
  void forget_graphs() {}

  // A persistent kernel: each phase for every thread of every block before the next phase — what
  // the device's __syncthreads and grid barrier guarantee — with a shared-memory array per block.
  template <class K>
  bool persistent_fits(const K&) const {
    return true;
  }
  template <class K>
  void launch_persistent(const K& k) {
    const int nb = k.blocks(), nt = k.block_threads();
    std::vector<std::vector<float>> smem(nb, std::vector<float>(k.smem_floats()));
    for (int r = 0; r < nb; r++)
      for (int tid = 0; tid < nt; tid++) k.load_weights(r, tid, smem[r].data());
    for (int s = 0; s < k.steps(); s++) {
      const int t = k.time_of(s);
      for (int r = 0; r < nb; r++)
        for (int tid = 0; tid < nt; tid++) k.load_state(r, tid, t, smem[r].data());
      for (int r = 0; r < nb; r++)
        for (int tid = 0; tid < nt; tid++) k.step(r, tid, t, smem[r].data());
    }
    launches++;
  }
};

}  // namespace lstm::cuda
