// Recalibrator: keeps one stream's threshold in step with the scores it
// sees, without letting a flood of anomalies raise the bar to hide itself.
//
// Scores go into a bounded window (the most recent `window` scores). After
// `every_scores` new scores or `every_seconds`, whichever comes first, and
// only with at least `min_samples` in the window, a candidate threshold is
// computed from the window with the configured method. The threshold then
// moves towards it by at most `max_step` * scale in one recalibration and
// never leaves base +- `max_drift` * scale, where base is the threshold the
// model was trained with and scale = |base| (1 when base is 0). A flood can
// therefore raise the threshold by at most max_step per recalibration and
// max_drift in all, until a retrain sets a new base.
//
// Not thread-safe: owned by the thread that scores the stream.
#ifndef ANOMALYD_ENGINE_RECALIBRATOR_H_
#define ANOMALYD_ENGINE_RECALIBRATOR_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "model/threshold.h"
#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

struct RecalibrationOptions {
  bool enabled = true;
  uint64_t every_scores = 10000;  // recalibrate after this many new scores
  double every_seconds = 300;     // ... or this long (0: only by count)
  // A count-triggered recalibration waits until this long after the last:
  // at millions of scores a second, every 10,000 scores would be a new
  // threshold (and a stored row) every few milliseconds.
  double min_interval_seconds = 1;
  uint64_t window = 50000;        // most recent scores kept
  uint64_t min_samples = 1000;    // fewer: keep the current threshold
  double max_step = 0.1;          // relative move allowed per recalibration
  double max_drift = 0.5;         // relative distance allowed from base
  ThresholdOptions threshold;     // method for the candidate
};

class Recalibrator {
 public:
  // `base` is the model's own threshold; `now_us` starts the timer.
  Recalibrator(const RecalibrationOptions& options, double base, int64_t now_us);

  // Appends scores to the window (dropping the oldest beyond its size).
  void Add(const float* scores, size_t n);

  // When a recalibration is due, computes it and returns true with the new
  // threshold in *params (method, value, sample_count); the window is kept.
  // Returns false when not due, disabled, or too few samples. A failed
  // computation returns false and sets *error (the threshold stays).
  bool MaybeRecalibrate(int64_t now_us, pb::ThresholdParams* params,
                        Status* error);

  // A new model: new base, empty window, timer restarted.
  void Reset(double base, int64_t now_us);

  double threshold() const { return current_; }
  size_t window_size() const { return window_.size(); }

 private:
  RecalibrationOptions options_;
  double base_;
  double current_;
  std::deque<float> window_;
  uint64_t since_last_ = 0;
  int64_t last_us_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_RECALIBRATOR_H_
