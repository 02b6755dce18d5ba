// Fuzzes the CSV reader (ParseCsv), which reads files handed to anomalyctl
// and to the daemon's retrain endpoint. Beyond "no crash" it checks the
// contract of model/csv.h: errors name the source and stay printable on the
// wire, tables are consistent, FormatCsv output reads back bit for bit,
// max_rows and SelectFeatures behave as documented.
#include <google/protobuf/stubs/common.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/csv.h"
#include "tests/fuzz/fuzz_check.h"

namespace anomalyd {
namespace {

constexpr char kSource[] = "fuzz.csv";

// The check protobuf applies to string fields: an error message that fails
// it cannot reach a client (the daemon reports CSV errors in its status).
bool IsUtf8(std::string_view s) {
  return google::protobuf::internal::IsStructurallyValidUTF8(s.data(),
                                                             static_cast<int>(s.size()));
}

void CheckError(const Status& s, std::string_view text) {
  FUZZ_CHECK(s.code() == pb::INVALID_ARGUMENT);
  FUZZ_CHECK(s.message().rfind(std::string(kSource) + ":", 0) == 0);
  FUZZ_CHECK(s.message().size() > sizeof(kSource) + 1);
  if (IsUtf8(text)) FUZZ_CHECK(IsUtf8(s.message()));
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void CheckTable(const CsvTable& t) {
  const size_t rows = t.features.rows;
  FUZZ_CHECK(rows > 0);
  FUZZ_CHECK(t.features.cols == t.feature_names.size() && t.features.cols > 0);
  FUZZ_CHECK(t.features.data.size() == rows * t.features.cols);
  for (float v : t.features.data) FUZZ_CHECK(std::isfinite(v));
  FUZZ_CHECK(t.ids.empty() || t.ids.size() == rows);
  FUZZ_CHECK(t.timestamps.empty() || t.timestamps.size() == rows);
  FUZZ_CHECK(t.labels.empty() || t.labels.size() == rows);
  for (int l : t.labels) FUZZ_CHECK(l == 0 || l == 1);
  std::set<std::string> names;
  for (const std::string& n : t.feature_names) {
    FUZZ_CHECK(!n.empty());
    FUZZ_CHECK(names.insert(n).second);
    const std::string lower = Lower(n);
    FUZZ_CHECK(lower != "id" && lower != "timestamp" && lower != "label");
  }
}

bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// FormatCsv's output reads back as the same features, bit for bit. The one
// documented exception: a header of numbers only reads as a missing header.
void CheckRoundTrip(const CsvTable& t) {
  const std::string text = FormatCsv(t.feature_names, t.features);
  CsvTable back;
  const Status s = ParseCsv(text, kSource, CsvOptions{}, &back);
  if (!s.ok()) {
    FUZZ_CHECK(s.message().find("the header row is missing") != std::string::npos);
    return;
  }
  FUZZ_CHECK(back.feature_names == t.feature_names);
  FUZZ_CHECK(back.features.rows == t.features.rows);
  FUZZ_CHECK(SameFloats(back.features.data, t.features.data));
}

// One row fewer than the file has is TOO_LARGE, naming the source.
void CheckMaxRows(std::string_view text, const CsvTable& t) {
  if (t.features.rows < 2) return;
  CsvOptions opts;
  opts.max_rows = t.features.rows - 1;
  CsvTable cut;
  const Status s = ParseCsv(text, kSource, opts, &cut);
  FUZZ_CHECK(s.code() == pb::TOO_LARGE);
  FUZZ_CHECK(s.message().rfind(std::string(kSource) + ":", 0) == 0);
}

// Reversing the columns by name moves every value; a missing name fails
// and leaves the table untouched.
void CheckSelect(const CsvTable& t) {
  std::vector<std::string> reversed(t.feature_names.rbegin(), t.feature_names.rend());
  CsvTable r = t;
  FUZZ_CHECK(SelectFeatures(reversed, kSource, &r).ok());
  FUZZ_CHECK(r.feature_names == reversed);
  const size_t cols = t.features.cols;
  for (size_t i = 0; i < t.features.rows; ++i) {
    for (size_t j = 0; j < cols; ++j) {
      FUZZ_CHECK(std::memcmp(r.features.row(i) + j, t.features.row(i) + cols - 1 - j,
                             sizeof(float)) == 0);
    }
  }
  std::vector<std::string> missing = t.feature_names;
  missing.push_back("");  // feature names are never empty
  const Status s = SelectFeatures(missing, kSource, &r);
  FUZZ_CHECK(s.code() == pb::INVALID_ARGUMENT);
  FUZZ_CHECK(r.feature_names == reversed);
}

}  // namespace
}  // namespace anomalyd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace anomalyd;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CsvTable table;
  const Status s = ParseCsv(text, kSource, CsvOptions{}, &table);
  if (!s.ok()) {
    CheckError(s, text);
    return 0;
  }
  CheckTable(table);
  CheckRoundTrip(table);
  CheckMaxRows(text, table);
  CheckSelect(table);
  return 0;
}
