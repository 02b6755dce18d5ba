// Engine: the scoring pipeline without a transport. Scores a batch of one
// stream's records with the stream's current model, judges each record
// against the stream's threshold, builds the anomaly rows to store, draws
// records for the reservoir and recalibrates the threshold, and hands the
// outcome to a VerdictSink as plain structs.
//
//   Engine engine(options, &registry);      // registry: a ServingSource
//   std::vector<RecordPart> parts = ...;     // one per request
//   engine.ScoreStream("cpu", parts, &sink); // sink.Scored / sink.Rejected
//
// Not thread-safe: one thread at a time (the daemon's scorer, or the I/O
// thread under the scorer's lock). The ServingSource is thread-safe, so
// models and thresholds may change meanwhile; each call judges with one
// snapshot of the stream.
#ifndef ANOMALYD_ENGINE_ENGINE_H_
#define ANOMALYD_ENGINE_ENGINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/recalibrator.h"
#include "engine/serving.h"
#include "engine/stream_state.h"
#include "engine/verdicts.h"

namespace anomalyd {

struct EngineOptions {
  RecalibrationOptions recalibration;
  // Share of the records judged normal offered to the stream's reservoir.
  // Default: 0.05 (storage.reservoir_rate).
  double reservoir_rate = 0.05;
  uint64_t seed = 42;  // of the reservoir draws
  // Time source; null: the real clocks. Not owned; must outlive the Engine.
  const EngineClock* clock = nullptr;
};

class Engine {
 public:
  // `streams` is not owned and must outlive the Engine.
  Engine(const EngineOptions& options, ServingSource* streams);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Applies new options; every recalibration window restarts. The reservoir
  // draws go on from where they were.
  void Reconfigure(const EngineOptions& options);

  // Scores `parts` of `stream` and reports to *sink (see VerdictSink for
  // the order of calls): Rejected(UNKNOWN_STREAM) for every part when the
  // stream has no model; Rejected(WRONG_DIMENSION) for parts whose dim is
  // not the model's; then Scored with the verdicts of the others, or
  // Rejected with the model's error for each of them. Before Scored, the
  // stream's counters are updated and a recalibrated threshold is put in
  // force (it is in the verdicts, to be stored). Returns the records handed
  // to the model (0 when none were).
  size_t ScoreStream(const std::string& stream,
                     const std::vector<RecordPart>& parts, VerdictSink* sink);

  // The state kept for `stream`; null before its first scored batch.
  const StreamState* State(const std::string& stream) const;

 private:
  EngineOptions options_;
  ServingSource* const streams_;
  const EngineClock* clock_;
  std::map<std::string, std::unique_ptr<StreamState>> states_;
  std::mt19937_64 rng_;  // reservoir draws, across streams
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_ENGINE_H_
