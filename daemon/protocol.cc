#include "daemon/protocol.h"

#include <cmath>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "model/finite.h"

namespace anomalyd {
namespace {

// Longest stream name: names become SQLite keys and alert topics.

Status CheckStreamName(const std::string& s) {
  if (s.size() > kMaxStreamName) {
    return Status::InvalidArgument("stream name longer than " +
                                   std::to_string(kMaxStreamName) + " bytes");
  }
  return Status::OK();
}

// Finds (or adds) the part of `stream`, checking the stream once.
Status PartFor(const std::string& stream, const DimensionOf& dimension_of,
               std::vector<ScorePart>* parts,
               std::unordered_map<std::string, size_t>* where, ScorePart** out) {
  auto it = where->find(stream);
  if (it != where->end()) {
    *out = &(*parts)[it->second];
    return Status::OK();
  }
  ANOMALYD_RETURN_IF_ERROR(CheckStreamName(stream));
  const int64_t dim = dimension_of(stream);
  if (dim < 0) {
    return Status(pb::UNKNOWN_STREAM,
                  "stream '" + stream + "' has no model (train one first)");
  }
  ScorePart p;
  p.stream = stream;
  p.dim = static_cast<uint32_t>(dim);
  parts->push_back(std::move(p));
  where->emplace(stream, parts->size() - 1);
  *out = &parts->back();
  return Status::OK();
}

Status CheckFinite(const float* v, size_t n, size_t record) {
  for (size_t j = 0; j < n; ++j) {
    if (!std::isfinite(v[j])) {
      return Status(pb::NON_FINITE, "record " + std::to_string(record) +
                                        ", feature " + std::to_string(j) +
                                        " is " + (std::isnan(v[j]) ? "NaN" : "infinite"));
    }
  }
  return Status::OK();
}

// Finds repeated non-empty ids: an open-addressing table of indices into
// `ids` (no per-id allocation or copy; a node-based set cost ~5% of the I/O
// thread with an id on every record of a dense batch).
class IdSet {
 public:
  explicit IdSet(size_t n) {
    size_t size = 16;
    while (size < 2 * n) size *= 2;
    slots_.assign(size, kEmpty);
  }
  // False when `id` was inserted before. `id` must outlive the set.
  bool Insert(std::string_view id) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = std::hash<std::string_view>()(id) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kEmpty) {
        slots_[i] = static_cast<uint32_t>(seen_.size());
        seen_.push_back(id);
        return true;
      }
      if (seen_[slots_[i]] == id) return false;
    }
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  std::vector<uint32_t> slots_;
  std::vector<std::string_view> seen_;
};

Status ValidateRecords(const pb::ScoreRequest& req, const DimensionOf& dim_of,
                       std::vector<ScorePart>* parts, int* bad) {
  std::unordered_map<std::string, size_t> where;
  IdSet ids(static_cast<size_t>(req.records_size()));
  for (int i = 0; i < req.records_size(); ++i) {
    *bad = i;
    const pb::Record& r = req.records(i);
    const std::string& stream = r.stream().empty() ? kDefaultStream : r.stream();
    ScorePart* part = nullptr;
    ANOMALYD_RETURN_IF_ERROR(PartFor(stream, dim_of, parts, &where, &part));
    if (static_cast<uint32_t>(r.features_size()) != part->dim) {
      return Status(pb::WRONG_DIMENSION,
                    "record " + std::to_string(i) + " has " +
                        std::to_string(r.features_size()) + " features; stream '" +
                        stream + "' expects " + std::to_string(part->dim));
    }
    ANOMALYD_RETURN_IF_ERROR(CheckFinite(r.features().data(), part->dim, i));
    if (!r.id().empty() && !ids.Insert(r.id())) {
      return Status(pb::DUPLICATE_ID, "record id '" + r.id() + "' appears twice");
    }
    part->values.insert(part->values.end(), r.features().begin(), r.features().end());
    part->index.push_back(static_cast<uint32_t>(i));
    part->ids.push_back(r.id());
    part->event_times_us.push_back(r.event_time_us());
    part->labels.emplace_back();
    for (const auto& [k, v] : r.labels()) part->labels.back().emplace_back(k, v);
  }
  *bad = -1;
  return Status::OK();
}

Status ValidateDense(const pb::DenseBatch& b, const RequestLimits& limits,
                     const DimensionOf& dim_of, std::vector<ScorePart>* parts,
                     int* bad) {
  const std::string& stream = b.stream().empty() ? kDefaultStream : b.stream();
  std::unordered_map<std::string, size_t> where;
  ScorePart* part = nullptr;
  if (b.dim() == 0) return Status::InvalidArgument("dense batch with dim 0");
  if (b.values_size() % b.dim() != 0) {
    return Status::InvalidArgument("dense batch has " + std::to_string(b.values_size()) +
                                   " values, not a multiple of dim " +
                                   std::to_string(b.dim()));
  }
  const size_t n = static_cast<size_t>(b.values_size()) / b.dim();
  if (n == 0) return Status(pb::EMPTY_BATCH, "dense batch has no rows");
  if (n > limits.max_records) {
    return Status(pb::TOO_LARGE, std::to_string(n) + " records; at most " +
                                     std::to_string(limits.max_records) + " per request");
  }
  ANOMALYD_RETURN_IF_ERROR(PartFor(stream, dim_of, parts, &where, &part));
  if (b.dim() != part->dim) {
    return Status(pb::WRONG_DIMENSION, "dense batch has dim " + std::to_string(b.dim()) +
                                           "; stream '" + stream + "' expects " +
                                           std::to_string(part->dim));
  }
  if (b.ids_size() != 0 && static_cast<size_t>(b.ids_size()) != n) {
    return Status::InvalidArgument("dense batch has " + std::to_string(b.ids_size()) +
                                   " ids for " + std::to_string(n) + " rows");
  }
  if (b.event_times_us_size() != 0 && static_cast<size_t>(b.event_times_us_size()) != n) {
    return Status::InvalidArgument("dense batch has " + std::to_string(b.event_times_us_size()) +
                                   " event times for " + std::to_string(n) + " rows");
  }
  if (!AllFinite(b.values().data(), n * b.dim())) {
    for (size_t i = 0; i < n; ++i) {
      *bad = static_cast<int>(i);
      ANOMALYD_RETURN_IF_ERROR(CheckFinite(b.values().data() + i * b.dim(), b.dim(), i));
    }
  }
  if (b.ids_size() != 0) {
    IdSet seen(static_cast<size_t>(b.ids_size()));
    for (int i = 0; i < b.ids_size(); ++i) {
      *bad = i;
      if (!b.ids(i).empty() && !seen.Insert(b.ids(i))) {
        return Status(pb::DUPLICATE_ID, "record id '" + b.ids(i) + "' appears twice");
      }
    }
  }
  *bad = -1;
  part->values.assign(b.values().begin(), b.values().end());
  part->index.resize(n);
  for (size_t i = 0; i < n; ++i) part->index[i] = static_cast<uint32_t>(i);
  part->ids.assign(b.ids().begin(), b.ids().end());
  part->ids.resize(n);
  part->event_times_us.assign(b.event_times_us().begin(), b.event_times_us().end());
  part->event_times_us.resize(n);
  part->labels.resize(n);
  return Status::OK();
}

}  // namespace

Status DecodeRequest(const void* data, size_t size, const RequestLimits& limits,
                     pb::Request* request) {
  if (size > limits.max_message_bytes) {
    return Status(pb::TOO_LARGE, "message of " + std::to_string(size) +
                                     " bytes; at most " +
                                     std::to_string(limits.max_message_bytes));
  }
  if (size > static_cast<size_t>(INT32_MAX) ||
      !request->ParseFromArray(data, static_cast<int>(size))) {
    return Status(pb::MALFORMED, "not an anomalyd Request message");
  }
  if (request->body_case() == pb::Request::BODY_NOT_SET) {
    return Status(pb::UNKNOWN_REQUEST, "request carries no known request type");
  }
  return Status::OK();
}

Status ValidateScoreRequest(const pb::ScoreRequest& request,
                            const RequestLimits& limits,
                            const DimensionOf& dimension_of,
                            std::vector<ScorePart>* parts, int* bad_record) {
  parts->clear();
  *bad_record = -1;
  const bool has_records = request.records_size() > 0;
  const bool has_dense = request.has_dense();
  if (has_records && has_dense) {
    return Status::InvalidArgument("request has both records and a dense batch");
  }
  if (!has_records && !has_dense) return Status(pb::EMPTY_BATCH, "request has no records");
  if (has_records) {
    if (static_cast<uint32_t>(request.records_size()) > limits.max_records) {
      return Status(pb::TOO_LARGE, std::to_string(request.records_size()) +
                                       " records; at most " +
                                       std::to_string(limits.max_records) + " per request");
    }
    Status s = ValidateRecords(request, dimension_of, parts, bad_record);
    if (!s.ok()) parts->clear();
    return s;
  }
  Status s = ValidateDense(request.dense(), limits, dimension_of, parts, bad_record);
  if (!s.ok()) parts->clear();
  return s;
}

std::string EncodeError(uint64_t request_id, const Status& status,
                        int record_index, const std::string& record_id) {
  pb::Response r;
  r.set_request_id(request_id);
  pb::Error* e = r.mutable_error();
  e->set_code(status.code());
  e->set_message(status.message());
  e->set_record_index(record_index);
  e->set_record_id(record_id);
  return r.SerializeAsString();
}

}  // namespace anomalyd
