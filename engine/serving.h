// What the engine reads and writes of a stream's serving state that other
// threads share: the model and threshold in force (swapped by retraining
// and control requests), and the counters status reports. The daemon's
// StreamRegistry is the one implementation; tests use an in-memory fake.
#ifndef ANOMALYD_ENGINE_SERVING_H_
#define ANOMALYD_ENGINE_SERVING_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "model/model.h"
#include "proto/anomalyd.pb.h"  // pb::ThresholdMethod (an enum, no wire message)

namespace anomalyd {

// What the scorer needs of a stream for one batch; immutable once taken.
struct ServingSnapshot {
  std::shared_ptr<const Model> model;  // null when the stream has none
  uint32_t version = 0;
  double threshold = 0;
  pb::ThresholdMethod method = pb::QUANTILE;
  // Bumped on every change made outside the scorer (new model, rollback,
  // calibrate): the scorer then restarts its recalibration window.
  uint64_t epoch = 0;
};

// Upper bounds of the per-stream p-value histogram (the metric
// anomalyd_score_p_value): how unusual the records a stream scores are, on
// one scale for every stream whatever its scores' units (p-value: the share
// of the model's held-out baseline scores at or above a record's score).
inline constexpr std::array<double, 8> kPValueBounds = {
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0};

// What scored batches add to a stream's counters.
struct ScoreCounts {
  uint64_t scored = 0;
  uint64_t flagged = 0;
  // Records per p-value bucket: [i] counts p <= kPValueBounds[i] and above
  // the bound before (not cumulative).
  std::array<uint64_t, kPValueBounds.size()> p_value_buckets{};
  double p_value_sum = 0;

  void AddPValue(double p) {
    size_t i = 0;
    while (i + 1 < kPValueBounds.size() && p > kPValueBounds[i]) ++i;
    ++p_value_buckets[i];
    p_value_sum += p;
  }
  ScoreCounts& operator+=(const ScoreCounts& o) {
    scored += o.scored;
    flagged += o.flagged;
    for (size_t i = 0; i < p_value_buckets.size(); ++i) {
      p_value_buckets[i] += o.p_value_buckets[i];
    }
    p_value_sum += o.p_value_sum;
    return *this;
  }
};

// The shared side of every stream's serving state. Implementations are
// thread-safe: the engine calls them from the scoring thread while other
// threads install models and thresholds.
class ServingSource {
 public:
  virtual ~ServingSource() = default;
  // The stream's snapshot; model is null when the stream is unknown.
  virtual ServingSnapshot Snapshot(const std::string& stream) const = 0;
  // Sets a threshold computed by recalibration, unless the stream changed
  // since `epoch` (then the value is stale and dropped: false).
  virtual bool SetRecalibrated(const std::string& stream, double value,
                               uint64_t epoch) = 0;
  // Adds one batch to the stream's counters.
  virtual void CountScored(const std::string& stream,
                           const ScoreCounts& counts) = 0;
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_SERVING_H_
