#include "thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LSTM_PAUSE() _mm_pause()
#else
#define LSTM_PAUSE() std::this_thread::yield()
#endif

namespace lstm {

namespace {

// Spin (with pause) for up to `spin_us`, then keep checking between sched_yield()s, which lets
// another runnable thread (another process on a busy machine) have the core.
template <class Pred>
void spin_wait(Pred ready, int spin_us) {
  auto start = std::chrono::steady_clock::now();
  for (unsigned i = 0;; i++) {
    if (ready()) return;
    LSTM_PAUSE();
    if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(spin_us)) break;
  }
  while (!ready()) std::this_thread::yield();
}

}  // namespace

void Team::barrier() {
  if (n_ <= 1) return;
  const uint32_t gen = generation_.load(std::memory_order_acquire);
  if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    count_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_release);  // releases everyone's writes (acq_rel above)
  } else {
    spin_wait([&] { return generation_.load(std::memory_order_acquire) != gen; }, 200);
  }
}

ThreadPool& ThreadPool::instance() {
  // never destroyed: workers sleep on the condition variable until the process exits
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

void ThreadPool::grow(int workers) {
  while ((int)threads_.size() < workers) {
    const int p = (int)threads_.size() + 1;
    threads_.emplace_back([this, p] { worker(p); });
    threads_.back().detach();
  }
}

void ThreadPool::run(int np, const std::function<void(int, int, Team&)>& fn) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (np < 1) np = 1;
  if (np == 1) {
    team_.n_ = 1;
    fn(0, 1, team_);
    return;
  }
  grow(np - 1);
  team_.n_ = np;
  team_.count_.store(0, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(m_);
    job_ = &fn;
    job_np_ = np;
    job_generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  fn(0, np, team_);
  spin_wait([&] { return done_.load(std::memory_order_acquire) == np - 1; }, 200);
}

void ThreadPool::worker(int p) {
  uint32_t seen = 0;
  for (;;) {
    // a step usually follows the last one within a few hundred µs: spin a little, then sleep
    auto start = std::chrono::steady_clock::now();
    bool have = false;
    for (unsigned i = 0;; i++) {
      if (job_generation_.load(std::memory_order_acquire) != seen) {
        have = true;
        break;
      }
      LSTM_PAUSE();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > std::chrono::microseconds(300)) break;
    }
    const std::function<void(int, int, Team&)>* job;
    int np;
    {
      std::unique_lock<std::mutex> lock(m_);
      if (!have) cv_.wait(lock, [&] { return job_generation_.load(std::memory_order_acquire) != seen; });
      seen = job_generation_.load(std::memory_order_acquire);
      job = job_;
      np = job_np_;
    }
    if (p < np) {
      (*job)(p, np, team_);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace lstm
