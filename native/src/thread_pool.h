// A process-wide pool of worker threads for the training step: run(np, fn) executes fn(p, np) on
// the calling thread (p = 0) and np − 1 workers, which meet at Team::barrier() between phases.
//
// Why not OpenMP: the step is started from whichever libuv thread runs the AsyncWorker; libgomp
// gives every new master thread its own team, then counts them all, finds more threads than
// cores and stops spinning at barriers — every one of the 70 per-step barriers became a futex
// sleep/wake (≈ 25 µs each, 1.6–1.8 ms of a 13 ms step). Here one pool serves every caller,
// waiting threads spin briefly (then yield) inside a step, and idle workers sleep between steps.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lstm {

class Team {
 public:
  // Every one of the np threads must call it the same number of times.
  void barrier();

 private:
  friend class ThreadPool;
  alignas(64) std::atomic<int> count_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
  int n_ = 1;
};

class ThreadPool {
 public:
  static ThreadPool& instance();
  // Runs fn(p, np) for p in [0, np) — p = 0 on the calling thread — and returns when all have
  // returned. One run at a time (callers are serialised). fn must not throw.
  void run(int np, const std::function<void(int p, int np, Team& team)>& fn);

 private:
  ThreadPool() = default;
  void worker(int p);
  void grow(int workers);

  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  const std::function<void(int, int, Team&)>* job_ = nullptr;
  int job_np_ = 0;
  alignas(64) std::atomic<uint32_t> job_generation_{0};
  alignas(64) std::atomic<int> done_{0};
  Team team_;
};

}  // namespace lstm
