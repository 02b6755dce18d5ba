#include "model/parallel.h"

#include <chrono>

namespace anomalyd {
namespace {

// A futex sleep and wake-up costs ~30 us in these VMs (a batch of 1024
// takes ~220 us on two cores), so both sides stay awake a little first.
constexpr auto kWorkerLinger = std::chrono::microseconds(100);
constexpr auto kCallerSpin = std::chrono::microseconds(50);

// Polls `ready` until it holds or `limit` passes; `yield` gives the core
// to any runnable thread between polls instead of a pause instruction.
template <class Ready>
void SpinFor(std::chrono::microseconds limit, bool yield, Ready ready) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!ready() && std::chrono::steady_clock::now() < until) {
    if (yield) {
      std::this_thread::yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
}

}  // namespace

WorkerPool& WorkerPool::Instance() {
  static WorkerPool* pool = new WorkerPool();  // never destroyed: used at exit
  return *pool;
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  stop_ = false;
}

void WorkerPool::Resize(int n) {
  std::lock_guard<std::mutex> run(run_mu_);
  Stop();
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

int WorkerPool::threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(workers_.size()) + 1;
}

void WorkerPool::Work(Job& job) {
  for (size_t i; (i = job.next.fetch_add(1)) < job.tasks;) {
    (*job.fn)(i);
    if (job.done.fetch_add(1) + 1 == job.tasks) {
      std::lock_guard<std::mutex> l(mu_);
      done_.notify_all();
    }
  }
}

void WorkerPool::WorkerLoop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    wake_.wait(l, [&] { return stop_ || (job_ != nullptr && generation_ != seen); });
    if (stop_) return;
    seen = generation_;
    Job* job = job_;
    ++job->users;
    l.unlock();
    Work(*job);
    l.lock();
    if (--job->users == 0) done_.notify_all();
    // Batches under load come back to back: linger for the next one,
    // yielding to anything runnable (the I/O threads share these cores).
    l.unlock();
    SpinFor(kWorkerLinger, true, [&] {
      return published_.load(std::memory_order_acquire) != seen;
    });
    l.lock();
  }
}

void WorkerPool::Run(size_t tasks, const std::function<void(size_t)>& fn) {
  std::unique_lock<std::mutex> run(run_mu_, std::try_to_lock);
  if (!run.owns_lock() || workers_.empty() || tasks <= 1) {
    for (size_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  Job job;
  job.fn = &fn;
  job.tasks = tasks;
  {
    std::lock_guard<std::mutex> l(mu_);
    job_ = &job;
    ++generation_;
    published_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  Work(job);
  // What is left is at most one task per worker, already running.
  SpinFor(kCallerSpin, false, [&] { return job.done.load() == job.tasks; });
  std::unique_lock<std::mutex> l(mu_);
  done_.wait(l, [&] { return job.done.load() == job.tasks; });
  job_ = nullptr;  // late wakers find no job
  done_.wait(l, [&] { return job.users == 0; });
}

}  // namespace anomalyd
