// WorkerPool: the fork-join pool the fused CPU scorer splits large batches
// over. LibTorch's own pool (OpenMP in Debian's build) busy-waits between
// jobs; on a two-core machine shared with the daemon's I/O threads that
// spinning took half the CPU (perf: 47% of cycles in libgomp at batch
// 1024). These workers linger 100 us after a job, yielding the core, then
// sleep on a condition variable; a caller never waits for a worker that has
// not started: whatever no worker has taken, the caller runs itself.
#ifndef ANOMALYD_MODEL_PARALLEL_H_
#define ANOMALYD_MODEL_PARALLEL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace anomalyd {

class WorkerPool {
 public:
  // The process-wide pool, sized by ConfigureThreads (model/model.h).
  static WorkerPool& Instance();

  ~WorkerPool();

  // n participants including the caller (n - 1 worker threads); n <= 1
  // runs everything on the calling thread.
  void Resize(int n);
  int threads() const;

  // Runs fn(i) for every i in [0, tasks) on the caller and the workers and
  // returns when all are done. A second caller while a job runs gets no
  // workers: it runs its tasks itself rather than waiting.
  void Run(size_t tasks, const std::function<void(size_t)>& fn);

 private:
  struct Job {
    const std::function<void(size_t)>* fn = nullptr;
    size_t tasks = 0;
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    int users = 0;  // workers holding a pointer to this job; under mu_
  };
  void Work(Job& job);
  void WorkerLoop();
  void Stop();

  std::mutex run_mu_;  // one job at a time
  mutable std::mutex mu_;
  std::condition_variable wake_;  // workers: a job or stop
  std::condition_variable done_;  // caller: tasks done, users gone
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};  // generation_, read without mu_
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_PARALLEL_H_
