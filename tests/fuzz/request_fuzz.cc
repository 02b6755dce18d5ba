// Fuzzes what any client can send to the score and control endpoints: a
// frame through DecodeRequest and, for score requests, ValidateScoreRequest.
// Beyond "no crash" it checks that every error is typed and explained, that
// accepted requests are split faithfully, and that the records and dense
// forms of the same records are judged alike.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "daemon/protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace anomalyd {
namespace {

// Small limits, so that short inputs reach TOO_LARGE too.
RequestLimits FuzzLimits() {
  RequestLimits l;
  l.max_message_bytes = 8192;
  l.max_records = 64;
  return l;
}

// The streams with a model; the seeds use these names.
int64_t Dim(const std::string& stream) {
  if (stream == "default") return 3;
  if (stream == "wide") return 5;
  if (stream == "one") return 1;
  return -1;
}

bool IsDecodeError(ErrorCode c) {
  return c == pb::TOO_LARGE || c == pb::MALFORMED || c == pb::UNKNOWN_REQUEST;
}

// The codes ValidateScoreRequest documents.
bool IsValidationError(ErrorCode c) {
  switch (c) {
    case pb::EMPTY_BATCH:
    case pb::TOO_LARGE:
    case pb::INVALID_ARGUMENT:
    case pb::UNKNOWN_STREAM:
    case pb::WRONG_DIMENSION:
    case pb::NON_FINITE:
    case pb::DUPLICATE_ID:
      return true;
    default:
      return false;
  }
}

// The error reply a client gets decodes to the same error.
void CheckErrorReply(const Status& s, int record_index) {
  FUZZ_CHECK(!s.ok());
  FUZZ_CHECK(!s.message().empty());
  pb::Response r;
  FUZZ_CHECK(r.ParseFromString(EncodeError(42, s, record_index)));
  FUZZ_CHECK(r.request_id() == 42);
  FUZZ_CHECK(r.error().code() == s.code());
  FUZZ_CHECK(r.error().message() == s.message());
  FUZZ_CHECK(r.error().record_index() == record_index);
}

bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool SameParts(const std::vector<ScorePart>& a, const std::vector<ScorePart>& b,
               bool compare_labels) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const ScorePart& x = a[i];
    const ScorePart& y = b[i];
    if (x.stream != y.stream || x.dim != y.dim || !SameFloats(x.values, y.values) ||
        x.index != y.index || x.ids != y.ids || x.event_times_us != y.event_times_us ||
        (compare_labels && x.labels != y.labels)) {
      return false;
    }
  }
  return true;
}

// Runs the validator, checking what holds for any outcome.
Status Validate(const pb::ScoreRequest& req, std::vector<ScorePart>* parts, int* bad) {
  std::map<std::string, int> lookups;
  const DimensionOf dim_of = [&lookups](const std::string& s) {
    ++lookups[s];
    return Dim(s);
  };
  *bad = 12345;  // must be overwritten
  const Status s = ValidateScoreRequest(req, FuzzLimits(), dim_of, parts, bad);
  for (const auto& [stream, n] : lookups) FUZZ_CHECK(n == 1);
  if (!s.ok()) {
    FUZZ_CHECK(IsValidationError(s.code()));
    FUZZ_CHECK(parts->empty());
    const int most = std::max({req.records_size(), req.dense().values_size(),
                               req.dense().ids_size()});
    FUZZ_CHECK(*bad >= -1 && *bad < most);
    CheckErrorReply(s, *bad);
  } else {
    FUZZ_CHECK(*bad == -1);
  }
  return s;
}

// An accepted request: every row lands once, in one part, unchanged.
void CheckAccepted(const pb::ScoreRequest& req, const std::vector<ScorePart>& parts) {
  const bool dense = req.has_dense();
  const pb::DenseBatch& d = req.dense();
  const size_t n = dense ? d.values_size() / d.dim() : req.records_size();
  FUZZ_CHECK(n > 0 && n <= FuzzLimits().max_records);
  std::set<uint32_t> rows_seen;
  std::set<std::string> streams;
  std::set<std::string> ids;
  for (const ScorePart& p : parts) {
    FUZZ_CHECK(streams.insert(p.stream).second);
    FUZZ_CHECK(Dim(p.stream) == p.dim);
    FUZZ_CHECK(p.rows() > 0);
    FUZZ_CHECK(p.values.size() == p.rows() * p.dim);
    FUZZ_CHECK(p.ids.size() == p.rows() && p.event_times_us.size() == p.rows() &&
               p.labels.size() == p.rows());
    for (size_t r = 0; r < p.rows(); ++r) {
      const uint32_t i = p.index[r];
      FUZZ_CHECK(i < n && rows_seen.insert(i).second);
      FUZZ_CHECK(r == 0 || p.index[r - 1] < i);  // request order
      FUZZ_CHECK(p.ids[r].empty() || ids.insert(p.ids[r]).second);
      const float* v = p.values.data() + r * p.dim;
      for (uint32_t j = 0; j < p.dim; ++j) FUZZ_CHECK(std::isfinite(v[j]));
      const float* src = nullptr;
      if (dense) {
        src = d.values().data() + static_cast<size_t>(i) * d.dim();
        FUZZ_CHECK(p.ids[r] == (d.ids_size() ? d.ids(i) : ""));
        FUZZ_CHECK(p.event_times_us[r] == (d.event_times_us_size() ? d.event_times_us(i) : 0));
      } else {
        const pb::Record& rec = req.records(i);
        FUZZ_CHECK(p.stream == (rec.stream().empty() ? kDefaultStream : rec.stream()));
        src = rec.features().data();
        FUZZ_CHECK(p.ids[r] == rec.id());
        FUZZ_CHECK(p.event_times_us[r] == rec.event_time_us());
        FUZZ_CHECK(p.labels[r].size() == rec.labels().size());
      }
      FUZZ_CHECK(std::memcmp(v, src, p.dim * sizeof(float)) == 0);
    }
  }
  FUZZ_CHECK(rows_seen.size() == n);
}

// Map entries in key order, so equal messages give equal bytes.
std::string Canonical(const pb::Request& r) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    FUZZ_CHECK(r.SerializeToCodedStream(&coded));
  }  // the streams flush into `out` as they close
  return out;
}

// The same rows of one stream in the other form of a score request.
pb::ScoreRequest OtherForm(const ScorePart& p, bool to_dense) {
  pb::ScoreRequest out;
  if (to_dense) {
    pb::DenseBatch* d = out.mutable_dense();
    d->set_stream(p.stream);
    d->set_dim(p.dim);
    d->mutable_values()->Add(p.values.begin(), p.values.end());
    for (const std::string& id : p.ids) d->add_ids(id);
    d->mutable_event_times_us()->Add(p.event_times_us.begin(), p.event_times_us.end());
    return out;
  }
  for (size_t r = 0; r < p.rows(); ++r) {
    pb::Record* rec = out.add_records();
    rec->set_stream(p.stream);
    rec->set_id(p.ids[r]);
    rec->set_event_time_us(p.event_times_us[r]);
    rec->mutable_features()->Add(p.values.begin() + r * p.dim,
                                 p.values.begin() + (r + 1) * p.dim);
  }
  return out;
}

void CheckScore(const pb::ScoreRequest& req) {
  std::vector<ScorePart> parts;
  int bad = 0;
  const Status s = Validate(req, &parts, &bad);
  if (s.ok()) CheckAccepted(req, parts);

  // Validating again into the filled vector gives the same answer: no state
  // leaks from one call into the next.
  std::vector<ScorePart> again = parts;
  int bad_again = 0;
  const Status s2 = Validate(req, &again, &bad_again);
  FUZZ_CHECK(s2.code() == s.code() && s2.message() == s.message() && bad_again == bad);
  FUZZ_CHECK(SameParts(parts, again, /*compare_labels=*/true));

  // One stream's rows are accepted alike as records or as a dense batch.
  if (s.ok() && parts.size() == 1) {
    const bool to_dense = !req.has_dense();
    const Status o = Validate(OtherForm(parts[0], to_dense), &again, &bad_again);
    FUZZ_CHECK(o.ok());
    FUZZ_CHECK(SameParts(parts, again, /*compare_labels=*/false));
  }
}

}  // namespace
}  // namespace anomalyd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace anomalyd;
  // Protobuf logs every invalid UTF-8 string it parses; that is expected here.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;

  pb::Request req;
  const Status s = DecodeRequest(data, size, FuzzLimits(), &req);
  if (!s.ok()) {
    FUZZ_CHECK(IsDecodeError(s.code()));
    FUZZ_CHECK((s.code() == pb::TOO_LARGE) == (size > FuzzLimits().max_message_bytes));
    CheckErrorReply(s, -1);
    return 0;
  }
  FUZZ_CHECK(size <= FuzzLimits().max_message_bytes);
  FUZZ_CHECK(req.body_case() != pb::Request::BODY_NOT_SET);

  // What decoded once decodes again, unchanged, after re-encoding.
  const std::string bytes = Canonical(req);
  RequestLimits unlimited;
  unlimited.max_message_bytes = bytes.size();
  pb::Request again;
  FUZZ_CHECK(DecodeRequest(bytes.data(), bytes.size(), unlimited, &again).ok());
  FUZZ_CHECK(Canonical(again) == bytes);

  if (req.has_score()) CheckScore(req.score());
  return 0;
}
