#include "engine/engine.h"

#include <spdlog/spdlog.h>

#include "engine/method_names.h"

namespace anomalyd {

Engine::Engine(const EngineOptions& options, ServingSource* streams)
    : options_(options),
      streams_(streams),
      clock_(options.clock != nullptr ? options.clock : EngineClock::Real()),
      rng_(options.seed) {}

void Engine::Reconfigure(const EngineOptions& options) {
  const EngineClock* clock = options_.clock;
  options_ = options;
  options_.clock = clock;  // the clock is fixed at construction
  for (auto& [name, state] : states_) state->ResetRecalibration();
}

const StreamState* Engine::State(const std::string& stream) const {
  auto it = states_.find(stream);
  return it == states_.end() ? nullptr : it->second.get();
}

size_t Engine::ScoreStream(const std::string& stream,
                           const std::vector<RecordPart>& parts,
                           VerdictSink* sink) {
  const ServingSnapshot snap = streams_->Snapshot(stream);
  if (!snap.model) {
    const Status s(pb::UNKNOWN_STREAM, "stream '" + stream + "' has no model");
    for (size_t i = 0; i < parts.size(); ++i) sink->Rejected(i, s);
    return 0;
  }
  const size_t d = snap.model->dim();
  // A retrain may change the dimension between validation and scoring.
  std::vector<const RecordPart*> ok;
  std::vector<size_t> ok_index;
  size_t n = 0;
  Status wrong;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].dim == d) {
      ok.push_back(&parts[i]);
      ok_index.push_back(i);
      n += parts[i].rows;
      continue;
    }
    if (wrong.ok()) {
      wrong = Status(pb::WRONG_DIMENSION, "stream '" + stream +
                                              "' was retrained with " +
                                              std::to_string(d) + " features");
    }
    sink->Rejected(i, wrong);
  }
  if (ok.empty()) return 0;

  std::unique_ptr<StreamState>& state = states_[stream];
  if (!state) state = std::make_unique<StreamState>(stream);
  StreamVerdicts v;
  Status s =
      state->Score(snap, ok, n, options_.reservoir_rate, &rng_, *clock_, &v);
  if (!s.ok()) {
    spdlog::error("scoring stream '{}' failed: {}", stream, s.ToString());
    for (size_t i : ok_index) sink->Rejected(i, s);
    return n;
  }
  v.parts = std::move(ok_index);
  ScoreCounts counts;
  counts.scored = n;
  counts.flagged = v.flagged_count;
  for (double p : v.out.p_value) counts.AddPValue(p);
  streams_->CountScored(stream, counts);

  pb::ThresholdParams params;
  Status err;
  // An unchanged threshold is neither stored nor logged: at millions of
  // records a second a recalibration is due many times a second, and a
  // flood pinned at max_drift would otherwise log and store each one.
  if (state->Recalibrate(snap, v.out.score.data(), n, options_.recalibration,
                         *clock_, &params, &err)) {
    if (params.value() != snap.threshold &&
        streams_->SetRecalibrated(stream, params.value(), snap.epoch)) {
      ThresholdRow t;
      t.stream = stream;
      t.model_version = snap.version;
      t.method =
          std::string("recalibrated-") + ThresholdMethodName(params.method());
      t.value = params.value();
      t.window = params.sample_count();
      v.recalibrated = std::move(t);
      spdlog::info("stream '{}': threshold recalibrated to {} from {} scores",
                   stream, params.value(), params.sample_count());
    }
  } else if (!err.ok()) {
    spdlog::warn("stream '{}': recalibration failed: {}", stream,
                 err.ToString());
  }
  sink->Scored(&v);
  return n;
}

}  // namespace anomalyd
