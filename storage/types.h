// Row types of the anomalyd store (see storage/store.h and docs/storage.md).
// Plain values: copyable, no pointers into the database. All times are
// microseconds since the Unix epoch (UTC).
#ifndef ANOMALYD_STORAGE_TYPES_H_
#define ANOMALYD_STORAGE_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace anomalyd {

// One flagged record.
struct AnomalyRow {
  int64_t id = 0;         // assigned by the store on insert; never reused
  std::string record_id;  // the caller's id of the record
  std::string stream;
  int64_t event_time_us = 0;   // when the record happened (client's clock)
  int64_t scored_time_us = 0;  // when it was scored; 0 on insert: "now"
  double score = 0;            // reconstruction + beta * kl
  float reconstruction = 0;
  float kl = 0;
  float threshold = 0;  // the threshold it was judged against
  uint32_t model_version = 0;
  std::vector<float> features;       // raw values, as the client sent them
  std::vector<float> contributions;  // per-feature share of the error
  // Free-form key/value tags in the order given. Any bytes (embedded NULs
  // included) round-trip exactly; duplicate keys are kept.
  std::vector<std::pair<std::string, std::string>> labels;
};

// Which of an anomaly's two times a query filters and orders on.
enum class TimeField { kEvent, kScored };

// Order of a page: newest first (by the query's TimeField), highest score
// first, or oldest first (for catching up, e.g. `anomalyctl tail --since`).
// Ties are broken by id, in the same direction, so the order is total.
enum class AnomalyOrder { kTimeDesc, kScoreDesc, kTimeAsc };

// The most rows one page may hold.
inline constexpr int64_t kMaxQueryLimit = 10000;

// A query over anomalies. Every filter is optional; given ones are ANDed.
struct AnomalyQuery {
  std::optional<int64_t> since_us;  // inclusive
  std::optional<int64_t> until_us;  // exclusive
  TimeField time_field = TimeField::kEvent;
  std::optional<std::string> stream;
  std::optional<double> min_score;  // inclusive
  std::optional<uint32_t> model_version;
  AnomalyOrder order = AnomalyOrder::kTimeDesc;
  int64_t limit = 100;  // rows per page, 1..kMaxQueryLimit
  // Bound of a page's size on the wire, in bytes; 0: no bound. A page stops
  // before the row that would take it past max_bytes, but holds at least
  // one row when one matches (which may alone exceed it). A row counts
  // record_id and stream bytes, 4 bytes per feature and per contribution,
  // the bytes of every label key and value, and 64 bytes for its other
  // fields and the encoding's overhead. `limit` still applies.
  int64_t max_bytes = 0;
  // "" for the first page, else the next_cursor of the previous page of a
  // query with the same order and time_field.
  std::string cursor;
};

// One page of results.
struct AnomalyPage {
  std::vector<AnomalyRow> rows;
  // Opaque; pass it back as AnomalyQuery::cursor for the next page. Empty
  // when this page is the last one. Paging is by key (order key, id): rows
  // inserted meanwhile are neither skipped nor repeated, and a new row shows
  // up on a later page only if it sorts after the cursor.
  std::string next_cursor;
};

// How many anomalies one stream had in one time bucket.
struct BucketCount {
  std::string stream;
  int64_t bucket_start_us = 0;  // a multiple of the bucket width
  int64_t count = 0;
};

enum class ModelStatus {
  kCandidate,  // registered, not (yet) serving
  kActive,     // serving; at most one per stream
  kRetired,    // served before, or was replaced
};

// One version of one stream's model in the registry.
struct ModelRow {
  std::string stream;
  uint32_t version = 0;        // >= 1, unique within the stream
  std::string bundle_path;     // the bundle directory
  int64_t created_us = 0;      // 0 on register: "now"
  uint64_t baseline_rows = 0;  // rows the model was trained on
  double train_loss = 0;       // final losses; NaN when not recorded
  double val_loss = 0;
  ModelStatus status = ModelStatus::kCandidate;
};

// One threshold in a stream's history.
struct ThresholdRow {
  int64_t id = 0;  // assigned on append
  std::string stream;
  uint32_t model_version = 0;  // REQUIRES: registered for the stream
  std::string method;          // "pot", "quantile", "fixed", ...
  double value = 0;
  uint64_t window = 0;  // scores it was computed from
  int64_t time_us = 0;  // 0 on append: "now"
};

// A stream's reservoir of normal records, as a baseline for retraining.
struct Baseline {
  uint32_t dim = 0;
  uint64_t seen = 0;          // records offered to the reservoir so far
  std::vector<float> values;  // rows() x dim, row-major, in slot order
  size_t rows() const { return dim == 0 ? 0 : values.size() / dim; }
};

// Which anomalies Store::Prune deletes. Ages are by scored time.
struct RetentionPolicy {
  int64_t max_age_us = 0;  // delete rows scored before now - max_age; 0: no limit
  int64_t max_rows = 0;    // then keep only the newest max_rows; 0: no limit
  // Rows per transaction: small enough that a writer waiting for the lock
  // (or the daemon's own next batch) is not held up for long. Default 2,000
  // takes a few milliseconds.
  int64_t batch_rows = 2000;
  int64_t max_batches = 0;  // stop after this many transactions; 0: no limit
};

// Where the alert sender stands (Store::LoadAlertCheckpoint): every anomaly
// with an id up to `cursor` has been shaped into notifications; `state` is
// the shaper's own state (incidents open at that point), opaque to the
// store.
struct AlertCheckpoint {
  int64_t cursor = 0;
  std::string state;
};

// One notification waiting to be delivered to one sink (the alert outbox).
struct OutboxRow {
  int64_t id = 0;               // assigned on append; also the delivery id sinks see
  std::string sink;             // which receiver: "alertmanager", "webhook:0", ...
  int64_t created_us = 0;       // 0 on append: "now"
  uint32_t attempts = 0;        // failed deliveries so far
  int64_t next_attempt_us = 0;  // not before this time
  bool dead = false;            // given up (a dead letter): kept, never retried
  std::string last_error;       // why the last attempt failed; "" before any
  std::string payload;          // the request body, as the sink takes it
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_TYPES_H_
