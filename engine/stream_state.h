// StreamState: everything the engine keeps about one stream for scoring,
// and the scoring of one batch of it: the serving snapshot the batch is
// judged with (model, threshold, version), the recalibration window, the
// reservoir sampling decision. Per-series windows belong here too when
// streams grow series.
//
// Not thread-safe: owned by the Engine and used by the thread scoring.
#ifndef ANOMALYD_ENGINE_STREAM_STATE_H_
#define ANOMALYD_ENGINE_STREAM_STATE_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/recalibrator.h"
#include "engine/serving.h"
#include "engine/verdicts.h"

namespace anomalyd {

class StreamState {
 public:
  explicit StreamState(std::string stream) : stream_(std::move(stream)) {}
  StreamState(const StreamState&) = delete;
  StreamState& operator=(const StreamState&) = delete;

  // Scores `parts` (n rows in all) as one tensor with `snap` and fills *v:
  // every field but `recalibrated`. Flagged rows are scored again with
  // contributions when the batch had none, so that each anomaly row
  // carries them. Records judged normal are drawn for the reservoir with
  // probability `reservoir_rate` from *rng. REQUIRES: snap.model, parts
  // non-empty and all of the model's dimension.
  // Errors: the model's (nothing is filled then).
  Status Score(const ServingSnapshot& snap,
               const std::vector<const RecordPart*>& parts, size_t n,
               double reservoir_rate, std::mt19937_64* rng,
               const EngineClock& clock, StreamVerdicts* v);

  // Feeds the batch's scores to the recalibration window, which restarts
  // (from the snapshot's threshold) whenever the snapshot's epoch moved.
  // True, with the new threshold in *params, when a recalibration was due
  // and succeeded; false when not due, too few scores, or it failed (then
  // *error says why). Streams whose threshold an operator fixed are not
  // recalibrated. REQUIRES: snap.model
  bool Recalibrate(const ServingSnapshot& snap, const float* scores, size_t n,
                   const RecalibrationOptions& options,
                   const EngineClock& clock, pb::ThresholdParams* params,
                   Status* error);

  // Forgets the recalibration window (new options); the next batch starts
  // a new one.
  void ResetRecalibration() { recal_.reset(); }

  const std::string& stream() const { return stream_; }
  // Scores in the recalibration window (0 before the first, or after a
  // reset).
  size_t recalibration_window() const {
    return recal_ ? recal_->window_size() : 0;
  }

 private:
  const std::string stream_;
  uint64_t recal_epoch_ = ~0ull;  // snapshot epoch the window started at
  std::unique_ptr<Recalibrator> recal_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_STREAM_STATE_H_
