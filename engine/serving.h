// What the engine reads and writes of a stream's serving state that other
// threads share: the model and threshold in force (swapped by retraining
// and control requests), and the counters status reports. The daemon's
// StreamRegistry is the one implementation; tests use an in-memory fake.
#ifndef ANOMALYD_ENGINE_SERVING_H_
#define ANOMALYD_ENGINE_SERVING_H_

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
  // Adds to the stream's scored and flagged counters.
  virtual void CountScored(const std::string& stream, uint64_t scored,
                           uint64_t flagged) = 0;
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_SERVING_H_
