// StreamRegistry: the serving state of every stream (model, threshold,
// counters, training progress). Thread-safe: the scoring thread reads
// snapshots, the retrainer and control requests swap models and set
// thresholds, and no reader ever waits for a training or a bundle load.
#ifndef ANOMALYD_DAEMON_STREAMS_H_
#define ANOMALYD_DAEMON_STREAMS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/serving.h"
#include "model/model.h"
#include "proto/anomalyd.pb.h"

namespace anomalyd {

// The daemon's ServingSource: the engine reads snapshots and sets
// recalibrated thresholds through it.
class StreamRegistry : public ServingSource {
 public:
  StreamRegistry() = default;
  StreamRegistry(const StreamRegistry&) = delete;
  StreamRegistry& operator=(const StreamRegistry&) = delete;

  // The stream's snapshot; model is null when the stream is unknown.
  ServingSnapshot Snapshot(const std::string& stream) const override;
  // The stream's feature count, or -1 without a model.
  int64_t DimensionOf(const std::string& stream) const;
  std::vector<std::string> Names() const;

  // Installs a model (new, retrained or rolled back) with its threshold.
  // `trained_us`: when a freshly trained model starts serving (the wall
  // clock), for RetrainedAt; 0 for a restored or rolled-back one.
  void Install(const std::string& stream, std::shared_ptr<const Model> model, uint32_t version,
               double threshold, pb::ThresholdMethod method, int64_t trained_us = 0);
  // The version a training last installed for `stream` and when it started
  // serving; false when none has since the daemon started.
  bool RetrainedAt(const std::string& stream, uint32_t* version, int64_t* since_us) const;
  // Sets a threshold chosen by an operator (calibrate); bumps the epoch.
  // False when the stream has no model.
  bool SetThreshold(const std::string& stream, double value, pb::ThresholdMethod method);
  // Sets a threshold computed by the scorer's recalibration, unless the
  // stream changed since `epoch` (then the value is stale and dropped).
  bool SetRecalibrated(const std::string& stream, double value, uint64_t epoch) override;

  void CountScored(const std::string& stream, const ScoreCounts& counts) override;
  // Every stream's counters, by name (for the metrics).
  std::map<std::string, ScoreCounts> Counts() const;

  // Marks a stream whose registered model could not be loaded: it serves
  // nothing (DimensionOf -1) and status shows `error` with the version,
  // until a model is installed.
  void SetUnavailable(const std::string& stream, uint32_t version, const std::string& error);

  // Forgets the training outcome of model-less streams (a retrain under a
  // new name that failed) beyond the `keep` most recent, so that status
  // and this registry stay bounded however many such names are tried.
  // Streams with a model, with a training running, or unavailable stay.
  void ForgetOldTrainings(size_t keep);

  // Training progress, for status.
  void SetTraining(const std::string& stream, const pb::TrainingStatus& t);
  pb::TrainingStatus Training(const std::string& stream) const;

  // One StreamStatus per stream (with or without a model), sorted by name.
  std::vector<pb::StreamStatus> Status() const;

 private:
  struct State {
    std::shared_ptr<const Model> model;
    uint32_t version = 0;
    double threshold = 0;
    pb::ThresholdMethod method = pb::POT;
    uint64_t epoch = 0;
    ScoreCounts counts;
    pb::TrainingStatus training;
    std::string error;             // why the registered model is not served
    uint32_t trained_version = 0;  // see RetrainedAt
    int64_t trained_us = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, State> streams_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_STREAMS_H_
