// Writer: the one thread that writes the store. Scored batches are committed in
// groups (everything waiting goes into one transaction), then their alerts
// are published and, with durability "commit", their replies sent. Other
// writes (model registry, thresholds from control requests) come as tasks
// run on the same thread, in order.
//
// Storage faults (disk full, read-only file, lock) never stop scoring: the
// replies then say stored = false, status reports the storage as degraded,
// and the next successful commit clears it. A database file deleted,
// replaced or truncated under the daemon is noticed after the next commit
// and stays a fault until a restart.
#ifndef ANOMALYD_DAEMON_WRITER_THREAD_H_
#define ANOMALYD_DAEMON_WRITER_THREAD_H_

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
  // Records scored in the batch (their replies wait here with durability
  // "commit"): what the writer's bound counts.
  uint64_t records = 0;
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
  // Records of the batches the writer holds (waiting or being committed)
  // beyond which Submit blocks. Default: 1 << 20.
  uint64_t max_pending_records = 1 << 20;
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

  // Hands a batch over. Blocks while the batches held already come to
  // max_pending_records: a writer slower than the scorer (a flood of
  // anomalies) then holds the scorer back, the work queue fills and new
  // requests get BUSY, instead of memory growing without bound. An empty
  // writer takes any batch.
  void Submit(ScoredBatch batch);
  // Whether Submit would take `records` records now without blocking.
  bool HasRoom(uint64_t records) const;
  void Post(Task task);

  // Every recalibrated threshold submitted so far is stored (or its write
  // failed): a reply that carries one and flags nothing need not wait for
  // the writer to be durable.
  bool thresholds_settled() const { return unsettled_thresholds_.load() == 0; }

  bool healthy() const { return healthy_.load(); }
  std::string last_error() const;
  // Flagged records whose commit failed (storage faults), since start.
  uint64_t unstored() const { return unstored_.load(); }

 private:
  void Run();
  void Commit(std::vector<ScoredBatch>& batches, Store& store, Outbox& outbox);
  // Gives back the room of committed batches to Submit.
  void Release(const std::vector<ScoredBatch>& batches);
  void SetHealth(const Status& s);
  // Checks that the database file is still the one opened and whole
  // (Store::CheckFile); once it is not, storage stays unhealthy and no
  // anomaly is reported stored until a restart. Writer thread only.
  void CheckFile(Store& store);
  // Feeds a write's outcome to the health; bad input (a bug, not a fault)
  // is logged instead. Faults are logged once, when storage degrades.
  void Track(const Status& s, const std::string& what);
  static Status AddSamples(Store& store, const ScoredBatch::Samples& smp);

  zmq::context_t& ctx_;
  std::unique_ptr<Store> store_;
  WriterOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable room_;  // pending_records_ went down
  std::deque<ScoredBatch> batches_;
  uint64_t pending_records_ = 0;  // of batches_ and the group in Commit
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> unstored_{0};
  std::atomic<uint64_t> unsettled_thresholds_{0};  // submitted, not yet written
  std::string last_error_;
  Status damaged_;  // writer thread only; see CheckFile
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_WRITER_THREAD_H_
