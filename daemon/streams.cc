#include "daemon/streams.h"

#include <algorithm>

namespace anomalyd {

ServingSnapshot StreamRegistry::Snapshot(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end()) return {};
  return {it->second.model, it->second.version, it->second.threshold, it->second.method,
          it->second.epoch};
}

int64_t StreamRegistry::DimensionOf(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end() || !it->second.model) return -1;
  return static_cast<int64_t>(it->second.model->dim());
}

std::vector<std::string> StreamRegistry::Names() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> names;
  for (const auto& [name, s] : streams_) names.push_back(name);
  return names;
}

void StreamRegistry::Install(const std::string& stream, std::shared_ptr<const Model> model,
                             uint32_t version, double threshold, pb::ThresholdMethod method,
                             int64_t trained_us) {
  std::lock_guard<std::mutex> l(mu_);
  State& s = streams_[stream];
  s.model = std::move(model);
  s.version = version;
  s.threshold = threshold;
  s.method = method;
  s.error.clear();
  if (trained_us != 0) {
    s.trained_version = version;
    s.trained_us = trained_us;
  }
  ++s.epoch;
}

bool StreamRegistry::RetrainedAt(const std::string& stream, uint32_t* version,
                                 int64_t* since_us) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end() || it->second.trained_us == 0) return false;
  *version = it->second.trained_version;
  *since_us = it->second.trained_us;
  return true;
}

void StreamRegistry::SetUnavailable(const std::string& stream, uint32_t version,
                                    const std::string& error) {
  std::lock_guard<std::mutex> l(mu_);
  State& s = streams_[stream];
  s.model.reset();
  s.version = version;
  s.error = error;
  ++s.epoch;
}

void StreamRegistry::ForgetOldTrainings(size_t keep) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<int64_t, std::string>> idle;  // (finished, name)
  for (const auto& [name, s] : streams_) {
    if (s.model || !s.error.empty() || s.training.state() == pb::RUNNING) continue;
    idle.emplace_back(s.training.finished_us(), name);
  }
  if (idle.size() <= keep) return;
  std::sort(idle.begin(), idle.end());
  for (size_t i = 0; i + keep < idle.size(); ++i) streams_.erase(idle[i].second);
}

bool StreamRegistry::SetThreshold(const std::string& stream, double value,
                                  pb::ThresholdMethod method) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end() || !it->second.model) return false;
  it->second.threshold = value;
  it->second.method = method;
  ++it->second.epoch;
  return true;
}

bool StreamRegistry::SetRecalibrated(const std::string& stream, double value, uint64_t epoch) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  if (it == streams_.end() || it->second.epoch != epoch) return false;
  it->second.threshold = value;
  return true;
}

void StreamRegistry::CountScored(const std::string& stream, const ScoreCounts& counts) {
  std::lock_guard<std::mutex> l(mu_);
  streams_[stream].counts += counts;
}

std::map<std::string, ScoreCounts> StreamRegistry::Counts() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, ScoreCounts> out;
  for (const auto& [name, s] : streams_) out[name] = s.counts;
  return out;
}

void StreamRegistry::SetTraining(const std::string& stream, const pb::TrainingStatus& t) {
  std::lock_guard<std::mutex> l(mu_);
  streams_[stream].training = t;
}

pb::TrainingStatus StreamRegistry::Training(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = streams_.find(stream);
  return it == streams_.end() ? pb::TrainingStatus() : it->second.training;
}

std::vector<pb::StreamStatus> StreamRegistry::Status() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<pb::StreamStatus> out;
  for (const auto& [name, s] : streams_) {
    pb::StreamStatus st;
    st.set_stream(name);
    st.set_model_version(s.version);
    st.set_dim(s.model ? static_cast<uint32_t>(s.model->dim()) : 0);
    st.set_threshold(s.threshold);
    st.set_threshold_method(s.method);
    st.set_scored(s.counts.scored);
    st.set_flagged(s.counts.flagged);
    *st.mutable_training() = s.training;
    st.set_error(s.error);
    if (s.model) {
      *st.mutable_feature_names() = s.model->meta().feature_names();
    }
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace anomalyd
