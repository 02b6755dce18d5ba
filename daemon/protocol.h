// The wire protocol of the daemon's endpoints: decoding request frames,
// validating score requests into per-stream parts, encoding replies.
// Pure functions with no sockets, so they are unit-tested and fuzzed alone.
#ifndef ANOMALYD_DAEMON_PROTOCOL_H_
#define ANOMALYD_DAEMON_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/stream_name.h"  // kDefaultStream, kMaxStreamName
#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

struct RequestLimits {
  uint64_t max_message_bytes = 16 << 20;
  uint32_t max_records = 65536;
};

// Decodes one request frame. TOO_LARGE above max_message_bytes, MALFORMED
// when it does not parse, UNKNOWN_REQUEST when it carries no request body.
Status DecodeRequest(const void* data, size_t size, const RequestLimits& limits,
                     pb::Request* request);

// The records of one stream from one score request, flattened.
struct ScorePart {
  std::string stream;
  uint32_t dim = 0;
  std::vector<float> values;       // rows() x dim, row-major, raw
  std::vector<uint32_t> index;     // position of each row in the request
  std::vector<std::string> ids;    // one per row ("" when not given)
  std::vector<int64_t> event_times_us;  // one per row (0 when not given)
  // One per row (empty for rows without labels).
  std::vector<std::vector<std::pair<std::string, std::string>>> labels;
  size_t rows() const { return index.size(); }
};

// The feature count of a stream's model, or -1 when it has no model.
using DimensionOf = std::function<int64_t(const std::string& stream)>;

// Validates a score request and splits it into parts, one per stream, in
// order of first appearance. Errors (the request is rejected whole, so that
// a client never has to work out which records were taken):
//   EMPTY_BATCH, TOO_LARGE (more than max_records), INVALID_ARGUMENT (both
//   forms, dense values not N x dim, ids/times count mismatch, stream name
//   too long), UNKNOWN_STREAM, WRONG_DIMENSION, NON_FINITE, DUPLICATE_ID.
// *bad_record is the offending record's index, or -1.
Status ValidateScoreRequest(const pb::ScoreRequest& request,
                            const RequestLimits& limits,
                            const DimensionOf& dimension_of,
                            std::vector<ScorePart>* parts, int* bad_record);

// A serialised Response carrying only an error.
std::string EncodeError(uint64_t request_id, const Status& status,
                        int record_index = -1,
                        const std::string& record_id = "");

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_PROTOCOL_H_
