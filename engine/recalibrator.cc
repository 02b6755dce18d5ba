#include "engine/recalibrator.h"

#include <algorithm>
#include <cmath>

namespace anomalyd {

Recalibrator::Recalibrator(const RecalibrationOptions& options, double base,
                           int64_t now_us)
    : options_(options), base_(base), current_(base), last_us_(now_us) {}

void Recalibrator::Add(const float* scores, size_t n) {
  for (size_t i = 0; i < n; ++i) window_.push_back(scores[i]);
  while (window_.size() > options_.window) window_.pop_front();
  since_last_ += n;
}

bool Recalibrator::MaybeRecalibrate(int64_t now_us, pb::ThresholdParams* params,
                                    Status* error) {
  if (!options_.enabled || options_.threshold.method == pb::FIXED) return false;
  const double elapsed_s = static_cast<double>(now_us - last_us_) / 1e6;
  const bool by_count = since_last_ >= options_.every_scores &&
                        elapsed_s >= options_.min_interval_seconds;
  const bool by_time = options_.every_seconds > 0 && elapsed_s >= options_.every_seconds;
  if (!by_count && !by_time) return false;
  if (window_.size() < options_.min_samples) return false;
  since_last_ = 0;
  last_us_ = now_us;

  std::vector<double> scores(window_.begin(), window_.end());
  pb::ThresholdParams candidate;
  Status s = ComputeThreshold(options_.threshold, scores, &candidate);
  if (!s.ok()) {
    *error = s;
    return false;
  }
  const double scale = base_ != 0 ? std::fabs(base_) : 1.0;
  const double step = options_.max_step * scale;
  const double drift = options_.max_drift * scale;
  double next = std::clamp(candidate.value(), current_ - step, current_ + step);
  next = std::clamp(next, base_ - drift, base_ + drift);
  current_ = next;
  *params = candidate;
  params->set_value(next);
  params->set_sample_count(scores.size());
  return true;
}

void Recalibrator::Reset(double base, int64_t now_us) {
  base_ = base;
  current_ = base;
  window_.clear();
  since_last_ = 0;
  last_us_ = now_us;
}

}  // namespace anomalyd
