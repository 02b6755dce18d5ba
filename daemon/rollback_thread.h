// RollbackThread: loads the bundle a rollback asks for on a thread of its
// own, then activates it and swaps it in on the writer thread, the way a
// retrain does: the writer (every commit and durable reply) never waits for
// a bundle to be read and deserialised.
//
// Thread-safe: Submit may be called from any thread (the I/O thread does).
#ifndef ANOMALYD_DAEMON_ROLLBACK_THREAD_H_
#define ANOMALYD_DAEMON_ROLLBACK_THREAD_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/state_dir.h"
#include "daemon/streams.h"
#include "daemon/writer_thread.h"
#include "storage/store.h"

namespace anomalyd {

struct RollbackJob {
  std::string stream;
  uint32_t to_version = 0;
  // Called once on the writer thread with the outcome: OK once version
  // to_version is active in the registry and serving.
  std::function<void(const Status&, Outbox&)> done;
};

class RollbackThread {
 public:
  // Rollbacks that may wait for the thread; beyond, Submit answers BUSY.
  static constexpr size_t kMaxPending = 8;

  // `reader` is the thread's own read-only connection (the registry's bundle
  // paths); bundles load on `device`. state, streams and writer must
  // outlive the thread.
  RollbackThread(std::unique_ptr<Store> reader, const StateDir* state,
                 StreamRegistry* streams, Writer* writer, std::string device);
  ~RollbackThread();  // Stop()s
  RollbackThread(const RollbackThread&) = delete;
  RollbackThread& operator=(const RollbackThread&) = delete;

  void Start();
  // Loads what was submitted and hands it to the writer, then ends the
  // thread. Call before the writer stops.
  void Stop();

  // Queues a rollback. BUSY when kMaxPending wait, SHUTTING_DOWN once
  // stopping; job.done is then not called.
  Status Submit(RollbackJob job);

 private:
  void Run();
  // Loads the job's bundle and posts its activation to the writer (or its
  // error, so that every reply leaves from one place).
  void Load(RollbackJob job);

  std::unique_ptr<Store> reader_;  // thread_ only
  const StateDir* state_;
  StreamRegistry* streams_;
  Writer* writer_;
  const std::string device_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RollbackJob> jobs_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_ROLLBACK_THREAD_H_
