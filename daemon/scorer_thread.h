// ScoringLoop: the scorer thread. It takes work items from the queue
// (records of many requests), groups them by stream and has the Engine
// score each group as one batch; the verdicts then go into the replies
// (through the reply encoder) and, with the anomalies, samples and
// thresholds to store, to the writer (which commits, publishes alerts and
// sends the replies that wait for the commit). Which replies wait for the
// commit (durability) and which endpoint has no reply (ingest) is decided
// here, not in the engine.
//
// Thread-safe: Start/Join from the owner; Reconfigure from any thread;
// TryScoreNow from the I/O thread. The engine, options_ and the batch in
// hand belong to whoever holds work_mu_ (the scorer thread, or the I/O
// thread in TryScoreNow).
#ifndef ANOMALYD_DAEMON_SCORER_THREAD_H_
#define ANOMALYD_DAEMON_SCORER_THREAD_H_

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/config.h"
#include "daemon/outbox.h"
#include "daemon/streams.h"
#include "daemon/work.h"
#include "daemon/writer_thread.h"
#include "engine/engine.h"
#include "engine/recalibrator.h"

namespace anomalyd {

struct ScoringOptions {
  // The engine's part: recalibration, reservoir_rate and seed.
  EngineOptions engine() const;

  BatcherOptions batcher;
  RecalibrationOptions recalibration;
  bool durable_replies = true;   // storage.durability == "commit"
  double reservoir_rate = 0.05;
  uint64_t seed = 42;
  Histogram* batch_sizes = nullptr;  // observes records per scored batch
};

class ScoringLoop {
 public:
  ScoringLoop(zmq::context_t& ctx, const ScoringOptions& options,
              WorkQueue* queue, StreamRegistry* streams, Writer* writer);
  ~ScoringLoop();
  ScoringLoop(const ScoringLoop&) = delete;
  ScoringLoop& operator=(const ScoringLoop&) = delete;

  void Start();
  // Returns once the queue is closed and everything in it was scored.
  void Join();

  // Steady-clock microseconds of the loop's last turn: the watchdog checks
  // that the scorer is alive.
  int64_t heartbeat_us() const { return heartbeat_us_.load(); }

  // Applies new options (SIGHUP); taken at the next batch.
  void Reconfigure(const ScoringOptions& options);

  // Scores `items` (one request's parts) on the calling thread and sends
  // the reply to `sink`, when the loop is idle: nothing queued or being
  // scored, room at the writer, and the streams' models on the CPU.
  // Returns false, leaving `items` alone, otherwise. For the I/O thread: a
  // lone small request then costs no hand-off between threads.
  bool TryScoreNow(std::vector<WorkItem>& items, ReplySink& sink);

 private:
  void Run();
  void ApplyPendingOptions();  // under work_mu_
  void ScoreItems(std::vector<WorkItem>& items, ReplySink& sink);
  void ScoreStream(const std::string& stream, std::vector<WorkItem*>& items,
                   ScoredBatch* job, ReplySink& outbox);

  zmq::context_t& ctx_;
  ScoringOptions options_;
  std::mutex options_mu_;
  ScoringOptions pending_options_;
  std::atomic<bool> options_changed_{false};
  // Held while a batch is scored, by the loop or by TryScoreNow: options_
  // and engine_ belong to whoever holds it.
  std::mutex work_mu_;
  WorkQueue* queue_;
  StreamRegistry* streams_;
  Writer* writer_;
  Engine engine_;
  std::atomic<int64_t> heartbeat_us_{0};
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_SCORER_THREAD_H_
