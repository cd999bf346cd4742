// A float buffer aligned to 64 bytes (a cache line, an AVX-512 vector), zero-filled on resize.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace lstm {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  void resize(size_t n) {
    if (n == n_) return;
    ptr_.reset();
    n_ = 0;
    if (n == 0) return;
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    ptr_.reset(p);
    n_ = n;
    zero();
  }
  void zero() {
    if (n_) std::memset(ptr_.get(), 0, n_ * sizeof(float));
  }
  float* data() { return ptr_.get(); }
  const float* data() const { return ptr_.get(); }
  size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> ptr_;
  size_t n_ = 0;
};

}  // namespace lstm
