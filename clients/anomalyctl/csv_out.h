// What anomalyctl writes as CSV: the file or stdout it goes to, and the
// columns of `score`, the same offline and against the daemon. Fields are
// written with CsvField (model/csv.h), which quotes per RFC 4180.
#ifndef ANOMALYD_CLIENTS_ANOMALYCTL_CSV_OUT_H_
#define ANOMALYD_CLIENTS_ANOMALYCTL_CSV_OUT_H_

#include <cstdint>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "proto/status.h"

namespace anomalyd::ctl {

// Writes to a file or, for "-", to stdout. Not copyable.
class Output {
 public:
  Output() = default;
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  // Truncates or creates `path`. IO_ERROR naming it when it cannot.
  Status Open(const std::string& path);
  // REQUIRES: Open succeeded.
  std::ostream& os() { return *out_; }
  // Flushes; IO_ERROR naming `path` when anything failed to be written.
  Status Close(const std::string& path);

 private:
  std::ofstream file_;
  std::ostream* out_ = nullptr;
};

// The columns of `anomalyctl score`, in this order:
//   id,reconstruction,kl,density,score,p_value,flagged
//   then stored,model_version   (daemon only: a bundle has neither)
//   then contrib_<feature>...   (with --contributions, one per feature)
// From the daemon the density cell is empty: its replies do not carry the
// term (score - reconstruction - score_beta * kl is density_weight times it).
struct ScoreColumns {
  bool daemon = false;
  bool contributions = false;
  std::vector<std::string> features;  // the model's, for contrib_ names
};

// The header line, with "\n".
std::string ScoreHeader(const ScoreColumns& columns);

// One scored record. `density` is ignored from the daemon; `stored` and
// `model_version` offline; `contributions` (features.size() values)
// without --contributions.
struct ScoreLine {
  std::string_view id;
  double reconstruction = 0, kl = 0, density = 0, score = 0, p_value = 0;
  bool flagged = false;
  bool stored = false;
  uint32_t model_version = 0;
  const float* contributions = nullptr;
};

// One line for `line`, with "\n"; numbers with six significant digits.
std::string ScoreRow(const ScoreColumns& columns, const ScoreLine& line);

}  // namespace anomalyd::ctl

#endif  // ANOMALYD_CLIENTS_ANOMALYCTL_CSV_OUT_H_
