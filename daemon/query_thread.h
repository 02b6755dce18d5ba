// QueryThread: answers anomaly queries and model listings from a read-only
// connection of its own, off the I/O thread, so that a slow query (a page
// deep into a million score-ordered rows) never holds up scoring replies.
// It runs at a lower CPU priority than the scoring threads for the same
// reason. Replies leave through its own Outbox.
//
// Thread-safe: Submit may be called from any thread (the I/O thread does).
#ifndef ANOMALYD_DAEMON_QUERY_THREAD_H_
#define ANOMALYD_DAEMON_QUERY_THREAD_H_

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "daemon/metrics.h"
#include "daemon/work.h"
#include "proto/anomalyd.pb.h"
#include "storage/store.h"

namespace anomalyd {

struct QueryOptions {
  uint32_t default_limit = 100;  // rows of a page when the request names none
  // A page stops before its encoded rows would pass this many bytes (at
  // least one row is always returned); the cursor continues after it.
  uint64_t max_reply_bytes = 16 << 20;
  // Requests waiting to be answered; beyond, Submit refuses (BUSY).
  size_t max_pending = 64;
};

class QueryThread {
 public:
  // `reader` is the thread's own connection (read-only); `metrics` counts
  // errors and must outlive the thread.
  QueryThread(zmq::context_t& ctx, std::unique_ptr<Store> reader,
              const QueryOptions& options, Metrics* metrics);
  ~QueryThread();  // Stop()s
  QueryThread(const QueryThread&) = delete;
  QueryThread& operator=(const QueryThread&) = delete;

  void Start();
  // Answers what was submitted, then ends the thread.
  void Stop();

  // Queues a query or models request. `streams` are the names a models
  // request without a stream lists. False when max_pending requests wait
  // (the caller answers BUSY) or the thread is stopping.
  bool Submit(Origin origin, pb::Request request, std::vector<std::string> streams);

 private:
  struct Job {
    Origin origin;
    pb::Request request;
    std::vector<std::string> streams;
  };
  void Run();
  // The reply to one job: a query page, a models list or an error.
  std::string Answer(const Job& job);

  zmq::context_t& ctx_;
  std::unique_ptr<Store> reader_;  // used by thread_ only
  const QueryOptions options_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_QUERY_THREAD_H_
