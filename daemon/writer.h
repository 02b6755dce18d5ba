// Writer: the one thread that writes SQLite. Scored batches are committed in
// groups (everything waiting goes into one transaction), then their alerts
// are published and, with durability "commit", their replies sent. Other
// writes (model registry, thresholds from control requests) come as tasks
// run on the same thread, in order.
//
// Storage faults (disk full, read-only file, lock) never stop scoring: the
// replies then say stored = false, status reports the storage as degraded,
// and the next successful commit clears it.
#ifndef ANOMALYD_DAEMON_WRITER_H_
#define ANOMALYD_DAEMON_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "daemon/outbox.h"
#include "daemon/work.h"
#include "storage/store.h"

namespace anomalyd {

// What one scorer batch hands to the writer.
struct ScoredBatch {
  std::vector<AnomalyRow> anomalies;
  // For each anomaly, where its ScoreResult sits (to set `stored`); the
  // reply is null for ingest.
  std::vector<std::pair<std::shared_ptr<PendingReply>, int>> anomaly_results;
  // One entry per scored part; the reply goes out when its last part is in.
  // Empty when the scorer already replied (durability "async").
  std::vector<std::shared_ptr<PendingReply>> completions;
  struct Samples {
    std::string stream;
    uint32_t dim = 0;
    std::vector<float> values;
  };
  std::vector<Samples> samples;
  std::vector<ThresholdRow> thresholds;
};

struct WriterOptions {
  RetentionPolicy retention;     // applied every retention_every_s
  double retention_every_s = 60;
};

class Writer {
 public:
  using Task = std::function<void(Store& store, Outbox& outbox)>;

  Writer(zmq::context_t& ctx, std::unique_ptr<Store> store,
         const WriterOptions& options);
  ~Writer();  // Stop()s
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Start();
  // Finishes everything submitted so far, then ends the thread.
  void Stop();

  void Submit(ScoredBatch batch);
  void Post(Task task);

  bool healthy() const { return healthy_.load(); }
  std::string last_error() const;
  uint64_t pending() const;

 private:
  void Run();
  void Commit(std::vector<ScoredBatch>& batches, Store& store, Outbox& outbox);
  void SetHealth(const Status& s);

  zmq::context_t& ctx_;
  std::unique_ptr<Store> store_;
  WriterOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ScoredBatch> batches_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::atomic<bool> healthy_{true};
  std::string last_error_;
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_WRITER_H_
