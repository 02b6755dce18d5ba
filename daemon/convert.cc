#include "daemon/convert.h"

#include "proto/utf8.h"

namespace anomalyd {
namespace {

// Strings read back from the store go into protobuf `string` fields, which
// a client cannot parse unless they are UTF-8. Everything the daemon
// stores came from a parsed request, so this only matters for a database
// written by something else; a copy is made only then.
const std::string& Utf8(const std::string& s, std::string* scratch) {
  if (IsValidUtf8(s)) return s;
  *scratch = ToValidUtf8(s);
  return *scratch;
}

}  // namespace

void ToProto(const AnomalyRow& row, pb::Anomaly* out) {
  out->set_id(row.id);
  std::string scratch;
  out->set_record_id(Utf8(row.record_id, &scratch));
  out->set_stream(Utf8(row.stream, &scratch));
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
  for (const auto& [k, v] : row.labels) {
    std::string key_scratch;
    (*out->mutable_labels())[Utf8(k, &key_scratch)] = Utf8(v, &scratch);
  }
}

void ToProto(const ModelRow& row, pb::ModelInfo* out) {
  std::string scratch;
  out->set_stream(Utf8(row.stream, &scratch));
  out->set_version(row.version);
  out->set_bundle_path(Utf8(row.bundle_path, &scratch));
  out->set_created_us(row.created_us);
  out->set_baseline_rows(row.baseline_rows);
  out->set_active(row.status == ModelStatus::kActive);
  out->set_val_loss(static_cast<float>(row.val_loss));
}

}  // namespace anomalyd
