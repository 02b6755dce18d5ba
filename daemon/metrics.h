// Metrics: the daemon's counters and histograms, rendered in the Prometheus
// text exposition format (version 0.0.4). Lock-free to update from any
// thread; Render takes a consistent-enough snapshot (each value is read
// atomically, the set of them is not).
#ifndef ANOMALYD_DAEMON_METRICS_H_
#define ANOMALYD_DAEMON_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "daemon/alert_stats.h"
#include "daemon/process_metrics.h"
#include "engine/serving.h"
#include "proto/anomalyd.pb.h"

namespace anomalyd {

// A histogram with fixed upper bounds (Prometheus "le" buckets).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends NAME_bucket{le=...}, NAME_sum and NAME_count lines.
  void Render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};  // sum in millionths, to stay atomic
};

class Metrics {
 public:
  Metrics();

  void CountError(pb::ErrorCode code);
  void CountRequest() { requests_++; }
  // A reply that could not be queued to its client (gone, or not reading).
  void CountDroppedReply() { dropped_replies_++; }
  void CountScoredInline() { scored_inline_++; }
  // A training that ended: SUCCEEDED, FAILED or CANCELLED_TRAINING.
  void CountTraining(pb::TrainingState outcome);
  Histogram& batch_size() { return batch_size_; }
  Histogram& latency_seconds() { return latency_; }

  // The whole exposition. `streams` gives per-stream gauges and counters;
  // the caller adds what it knows at render time.
  struct Gauges {
    uint64_t queue_records = 0;
    uint64_t queue_capacity = 0;  // batcher.queue_records: beyond, BUSY
    bool storage_ok = true;
    uint64_t anomalies_unstored = 0;  // flagged, but their commit failed
    int64_t started_us = 0;
    std::vector<pb::StreamStatus> streams;
    std::map<std::string, ScoreCounts> counts;  // by stream
    // When each serving model was trained (BundleMeta.created_us), by stream.
    std::map<std::string, int64_t> model_created_us;
    bool process_ok = false;  // process_* lines only when it was read
    ProcessStats process;
    // The alert sender's figures; no anomalyd_alert_* lines without it.
    bool alerts_on = false;
    AlertStats alerts;
  };
  std::string Render(const Gauges& g) const;

 private:
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> dropped_replies_{0};
  std::atomic<uint64_t> scored_inline_{0};
  std::array<std::atomic<uint64_t>, 100> errors_{};
  std::atomic<uint64_t> trainings_succeeded_{0}, trainings_failed_{0}, trainings_cancelled_{0};
  Histogram batch_size_;
  Histogram latency_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_METRICS_H_
