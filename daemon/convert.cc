#include "daemon/convert.h"

namespace anomalyd {

void ToProto(const AnomalyRow& row, pb::Anomaly* out) {
  out->set_id(row.id);
  out->set_record_id(row.record_id);
  out->set_stream(row.stream);
  out->set_event_time_us(row.event_time_us);
  out->set_scored_time_us(row.scored_time_us);
  out->set_score(row.score);
  out->set_reconstruction(row.reconstruction);
  out->set_kl(row.kl);
  out->set_threshold(row.threshold);
  out->set_model_version(row.model_version);
  out->mutable_features()->Assign(row.features.begin(), row.features.end());
  out->mutable_contributions()->Assign(row.contributions.begin(),
                                       row.contributions.end());
  // The wire map keeps one value per key: the last one given wins.
  for (const auto& [k, v] : row.labels) (*out->mutable_labels())[k] = v;
}

void ToProto(const ModelRow& row, pb::ModelInfo* out) {
  out->set_stream(row.stream);
  out->set_version(row.version);
  out->set_bundle_path(row.bundle_path);
  out->set_created_us(row.created_us);
  out->set_baseline_rows(row.baseline_rows);
  out->set_active(row.status == ModelStatus::kActive);
  out->set_val_loss(static_cast<float>(row.val_loss));
}

const char* ThresholdMethodName(pb::ThresholdMethod m) {
  switch (m) {
    case pb::QUANTILE: return "quantile";
    case pb::FIXED: return "fixed";
    default: return "pot";
  }
}

pb::ThresholdMethod ThresholdMethodFromName(const std::string& name) {
  if (name == "quantile") return pb::QUANTILE;
  if (name == "fixed") return pb::FIXED;
  return pb::POT;
}

}  // namespace anomalyd
