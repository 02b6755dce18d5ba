#include "engine/stream_state.h"

namespace anomalyd {

Status StreamState::Score(const ServingSnapshot& snap,
                          const std::vector<const RecordPart*>& parts, size_t n,
                          double reservoir_rate, std::mt19937_64* rng,
                          const EngineClock& clock, StreamVerdicts* v) {
  const size_t d = snap.model->dim();
  // One tensor for the whole batch; a lone part is scored in place.
  std::vector<float> joined;
  const float* values = parts.front()->values;
  bool contributions = parts.front()->contributions;
  if (parts.size() > 1) {
    joined.reserve(n * d);  // one allocation, each value copied once
    for (const RecordPart* p : parts) {
      joined.insert(joined.end(), p->values, p->values + p->rows * d);
      contributions = contributions || p->contributions;
    }
    values = joined.data();
  }
  ScoreOptions opts;
  opts.contributions = contributions;
  opts.finite_checked = true;  // the caller checked every value
  ANOMALYD_RETURN_IF_ERROR(snap.model->Score(values, n, opts, &v->out));

  const float threshold = static_cast<float>(snap.threshold);
  const ScoreOutput& out = v->out;
  v->stream = stream_;
  v->dim = d;
  v->model_version = snap.version;
  v->threshold = threshold;
  v->rows = n;
  v->contributions = contributions;
  v->flagged.assign(n, 0);
  // Contributions are stored with every anomaly; when the batch was scored
  // without them, score the (few) flagged rows again with them.
  std::vector<float> flagged_contrib;
  std::vector<int64_t> contrib_row;
  if (!contributions) {
    contrib_row.assign(n, -1);
    std::vector<float> rows;
    int64_t k = 0;
    for (size_t r = 0; r < n; ++r) {
      if (out.score[r] > threshold) {
        rows.insert(rows.end(), values + r * d, values + (r + 1) * d);
        contrib_row[r] = k++;
      }
    }
    if (k > 0) {
      ScoreOptions with;
      with.contributions = true;
      with.finite_checked = true;
      ScoreOutput again;
      if (snap.model->Score(rows.data(), static_cast<size_t>(k), with, &again)
              .ok()) {
        flagged_contrib = std::move(again.contributions);
      }
    }
  }

  const int64_t now_us = clock.WallMicros();
  std::bernoulli_distribution sample(reservoir_rate);
  size_t row = 0;
  for (const RecordPart* p : parts) {
    for (size_t i = 0; i < p->rows; ++i, ++row) {
      const float* x = values + row * d;
      if (!(out.score[row] > threshold)) {
        if (reservoir_rate > 0 && sample(*rng)) {
          v->samples.insert(v->samples.end(), x, x + d);
        }
        continue;
      }
      v->flagged[row] = 1;
      ++v->flagged_count;
      AnomalyRow a;
      a.record_id = p->ids[i];
      a.stream = stream_;
      a.event_time_us = p->event_times_us[i] ? p->event_times_us[i] : now_us;
      a.scored_time_us = now_us;
      a.score = out.score[row];
      a.reconstruction = out.reconstruction[row];
      a.kl = out.kl[row];
      a.threshold = threshold;
      a.model_version = snap.version;
      a.features.assign(x, x + d);
      if (contributions) {
        a.contributions.assign(out.contributions.begin() + row * d,
                               out.contributions.begin() + (row + 1) * d);
      } else if (!flagged_contrib.empty()) {
        const size_t k = static_cast<size_t>(contrib_row[row]);
        a.contributions.assign(flagged_contrib.begin() + k * d,
                               flagged_contrib.begin() + (k + 1) * d);
      }
      a.labels = p->labels[i];
      v->anomalies.push_back(std::move(a));
      v->anomaly_rows.push_back(row);
    }
  }
  return Status::OK();
}

bool StreamState::Recalibrate(const ServingSnapshot& snap, const float* scores,
                              size_t n, const RecalibrationOptions& options,
                              const EngineClock& clock,
                              pb::ThresholdParams* params, Status* error) {
  // A threshold an operator fixed stays fixed.
  if (snap.method == pb::FIXED) return false;
  // The window restarts when the model or an operator changed the stream.
  if (recal_epoch_ != snap.epoch || !recal_) {
    recal_epoch_ = snap.epoch;
    recal_ = std::make_unique<Recalibrator>(options, snap.threshold,
                                            clock.SteadyMicros());
  }
  recal_->Add(scores, n);
  return recal_->MaybeRecalibrate(clock.SteadyMicros(), params, error);
}

}  // namespace anomalyd
