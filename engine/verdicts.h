// The engine's input (one stream's records, in parts) and output (plain
// verdict structs), and the interface through which verdicts leave it.
// No transport here: the daemon encodes verdicts into replies, hands the
// anomalies, samples and thresholds to its writer; tests record them.
#ifndef ANOMALYD_ENGINE_VERDICTS_H_
#define ANOMALYD_ENGINE_VERDICTS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "proto/status.h"
#include "storage/types.h"

namespace anomalyd {

using RecordLabels = std::vector<std::pair<std::string, std::string>>;

// Records of one stream from one request, as raw values. The pointers are
// not owned and must stay valid for the call that takes the part.
struct RecordPart {
  const float* values = nullptr;  // rows x dim, row-major, every value finite
  size_t rows = 0;
  size_t dim = 0;
  const std::string* ids = nullptr;         // rows of them ("" when not given)
  const int64_t* event_times_us = nullptr;  // rows of them (0: scored time)
  const RecordLabels* labels = nullptr;     // rows of them
  bool contributions = false;  // the caller wants per-feature contributions
};

// The verdicts of the parts of one stream's batch that were scored, their
// rows one after the other in the order of `parts`.
struct StreamVerdicts {
  std::string stream;
  size_t dim = 0;
  uint32_t model_version = 0;
  float threshold = 0;        // every record was judged against this
  std::vector<size_t> parts;  // indexes of the input parts scored
  size_t rows = 0;
  // reconstruction, kl, score and p_value per row; contributions (rows x
  // dim) only when `contributions`, i.e. some scored part asked for them.
  ScoreOutput out;
  bool contributions = false;
  std::vector<uint8_t> flagged;  // per row: score > threshold
  uint64_t flagged_count = 0;
  // One row per flagged record, in row order, with its contributions
  // (always, asked for or not); anomaly_rows[k] is the batch row of
  // anomalies[k].
  std::vector<AnomalyRow> anomalies;
  std::vector<size_t> anomaly_rows;
  // Records judged normal and drawn for the stream's reservoir, rows x dim.
  std::vector<float> samples;
  // A new threshold from recalibration, already in force for the next
  // batch; empty when none was due or it did not change.
  std::optional<ThresholdRow> recalibrated;
};

// Where an engine call's outcome goes, part by part. Called on the thread
// that called the engine, in this order: Rejected for parts of the wrong
// dimension, then either Scored once or Rejected for every other part.
class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  // Part `part` of the call was not scored: UNKNOWN_STREAM (no model),
  // WRONG_DIMENSION (the model was retrained with another feature count)
  // or the model's own error.
  virtual void Rejected(size_t part, const Status& s) = 0;
  // The verdicts of the parts that were scored; the sink may move from *v.
  virtual void Scored(StreamVerdicts* v) = 0;
};

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_VERDICTS_H_
