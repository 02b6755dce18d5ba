#include "model/csv.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <unordered_map>

#include "proto/utf8.h"

namespace anomalyd {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";  // UTF-8 byte order mark

// Rows parsed between two looks at CsvOptions::cancel: a few milliseconds
// of work even on wide rows, and one relaxed load per 4096 rows costs
// nothing measurable.
constexpr size_t kCancelCheckRows = 4096;

// What a column holds.
enum class ColumnKind { kFeature, kId, kTimestamp, kLabel };

// One cell of a record after unquoting.
struct Cell {
  std::string_view text;
  bool quoted = false;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// A cell's text as quoted in an error message: control characters and bytes
// that are not UTF-8 escaped, long cells cut at a character boundary, so that
// one bad cell cannot flood a log line and the message stays valid UTF-8 (the
// daemon sends it to clients in protobuf strings, which must be UTF-8).
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 40;  // enough to recognise a value
  std::string out = "'";
  size_t i = 0;
  while (i < s.size() && i < kMaxShown) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = Utf8CharLength(s.substr(i));
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
  if (i < s.size()) out += "...";
  out += "'";
  return out;
}

// "column 'name' (n)", or "column n" when the name is unknown or quote_cells
// is off: a header name is the file's content too, and the first line of a
// file that is no CSV ("root:x:0:0:...") must not reach a client that named
// it. `index` is 0-based, n 1-based.
std::string ColumnLabel(const std::vector<std::string>* names, size_t index,
                        bool quote_cells) {
  const std::string number = std::to_string(index + 1);
  if (names != nullptr && index < names->size() && quote_cells) {
    return "column '" + (*names)[index] + "' (" + number + ")";
  }
  return "column " + number;
}

// Removes one leading '+' before a digit or '.', which from_chars rejects.
std::string_view StripPlus(std::string_view s) {
  if (s.size() >= 2 && s[0] == '+' &&
      ((s[1] >= '0' && s[1] <= '9') || s[1] == '.')) {
    s.remove_prefix(1);
  }
  return s;
}

enum class NumberError { kNone, kEmpty, kNotNumber, kNonFinite, kOverflow };

// Parses a whole cell as a float, correctly rounded. Values too small for a
// float become 0 or a subnormal; values too large are kOverflow.
NumberError ParseFloat(std::string_view cell, float* out) {
  const std::string_view s = StripPlus(Trim(cell));
  if (s.empty()) return NumberError::kEmpty;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  float f = 0.0f;
  auto [ptr, ec] = std::from_chars(begin, end, f);
  if (ptr != end || ec == std::errc::invalid_argument) {
    return NumberError::kNotNumber;
  }
  if (ec == std::errc::result_out_of_range) {
    // Underflow or overflow: tell them apart through a wider type.
    double d = 0.0;
    auto [dptr, dec] = std::from_chars(begin, end, d);
    if (dec == std::errc::result_out_of_range) {
      d = std::strtod(std::string(s).c_str(), nullptr);  // +-HUGE_VAL if big
    }
    (void)dptr;
    if (!(std::fabs(d) <= std::numeric_limits<float>::max())) {
      return NumberError::kOverflow;
    }
    f = static_cast<float>(d);
  }
  if (!std::isfinite(f)) return NumberError::kNonFinite;
  *out = f;
  return NumberError::kNone;
}

// Splits CSV text into records of cells. Not thread-safe; the cells it
// returns stay valid until the next call to Next().
class CsvReader {
 public:
  CsvReader(std::string_view text, const std::string& source, bool quote_cells)
      : text_(text), source_(source), quote_cells_(quote_cells) {}
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next non-blank record into *cells. Returns false at the end
  // of the input (*status OK) or on malformed quoting (*status set).
  bool Next(std::vector<Cell>* cells, Status* status);

  // 1-based line on which the last record returned starts.
  size_t line() const { return record_line_; }

  // Names used in error messages once the header is known.
  void set_names(const std::vector<std::string>* names) { names_ = names; }

  // Whether messages may quote cells (CsvOptions::quote_cells).
  bool quote_cells() const { return quote_cells_; }

  // "source:line: " for the current record.
  std::string Where() const {
    return source_ + ":" + std::to_string(record_line_) + ": ";
  }
  // The column as ColumnLabel names it.
  std::string Column(size_t index) const {
    return ColumnLabel(names_, index, quote_cells_);
  }

 private:
  bool ReadQuoted(size_t index, Cell* cell, Status* status);

  std::string_view text_;
  const std::string& source_;
  const bool quote_cells_;
  const std::vector<std::string>* names_ = nullptr;
  size_t pos_ = 0;
  size_t line_ = 1;  // line of pos_
  size_t record_line_ = 0;
  // Per cell index, for "" escapes. A deque: growing it must not move the
  // strings that earlier cells of the same record point into.
  std::deque<std::string> unescaped_;
};

bool CsvReader::Next(std::vector<Cell>* cells, Status* status) {
  *status = Status::OK();
  cells->clear();
  const size_t size = text_.size();
  // Skip blank lines (nothing but spaces, tabs and a CR).
  for (;;) {
    size_t p = pos_;
    while (p < size &&
           (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\r')) {
      ++p;
    }
    if (p >= size) {
      pos_ = size;
      return false;
    }
    if (text_[p] != '\n') break;
    pos_ = p + 1;
    ++line_;
  }
  record_line_ = line_;
  for (size_t index = 0;; ++index) {
    Cell cell;
    if (pos_ < size && text_[pos_] == '"') {
      if (!ReadQuoted(index, &cell, status)) return false;
    } else {
      const size_t start = pos_;
      while (pos_ < size) {
        const char c = text_[pos_];
        if (c == ',' || c == '\n') break;
        if (c == '"') {
          *status = Status::InvalidArgument(
              Where() + Column(index) +
              ": a quote inside an unquoted cell (quote the whole cell)");
          return false;
        }
        ++pos_;
      }
      size_t end = pos_;
      // CRLF: the CR belongs to the line ending, not to the last cell.
      if ((pos_ == size || text_[pos_] == '\n') && end > start &&
          text_[end - 1] == '\r') {
        --end;
      }
      cell.text = text_.substr(start, end - start);
    }
    cells->push_back(cell);
    if (pos_ >= size) return true;
    if (text_[pos_] == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    ++pos_;  // the ','
  }
}

bool CsvReader::ReadQuoted(size_t index, Cell* cell, Status* status) {
  const size_t size = text_.size();
  const size_t open_line = line_;
  ++pos_;  // the opening quote
  const size_t start = pos_;
  bool escaped = false;
  for (;;) {
    if (pos_ >= size) {
      *status = Status::InvalidArgument(
          source_ + ":" + std::to_string(open_line) + ": " + Column(index) +
          ": quoted cell is never closed");
      return false;
    }
    const char c = text_[pos_];
    if (c == '"') {
      if (pos_ + 1 < size && text_[pos_ + 1] == '"') {
        escaped = true;
        pos_ += 2;
        continue;
      }
      break;
    }
    if (c == '\n') ++line_;
    ++pos_;
  }
  std::string_view raw = text_.substr(start, pos_ - start);
  ++pos_;  // the closing quote
  if (pos_ < size && text_[pos_] == '\r' && pos_ + 1 < size &&
      text_[pos_ + 1] == '\n') {
    ++pos_;
  } else if (pos_ + 1 == size && text_[pos_] == '\r') {
    ++pos_;
  }
  if (pos_ < size && text_[pos_] != ',' && text_[pos_] != '\n') {
    const std::string what =
        quote_cells_ ? Quote(text_.substr(pos_, 1)) : std::string("character");
    *status =
        Status::InvalidArgument(Where() + Column(index) + ": unexpected " +
                                what + " after a closing quote");
    return false;
  }
  cell->quoted = true;
  if (!escaped) {
    cell->text = raw;
    return true;
  }
  if (unescaped_.size() <= index) unescaped_.resize(index + 1);
  std::string& out = unescaped_[index];
  out.clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    out += raw[i];
    if (raw[i] == '"') ++i;  // skip the second quote of ""
  }
  cell->text = out;
  return true;
}

// What is wrong with a feature cell: "'abc' is not a number", or with
// quote_cells off "not a number".
std::string NumberMessage(NumberError e, std::string_view text, bool quote) {
  const std::string cell = quote ? Quote(text) + " is " : std::string();
  switch (e) {
    case NumberError::kEmpty:
      return "empty cell, expected a number";
    case NumberError::kNonFinite:
      return cell + "not a finite number";
    case NumberError::kOverflow:
      return cell + "out of range for a float";
    default:
      return cell + "not a number";
  }
}

// Checks the header and fills the column kinds and feature names.
Status ParseHeader(const std::vector<Cell>& cells, const CsvReader& reader,
                   std::vector<std::string>* names,
                   std::vector<ColumnKind>* kinds, CsvTable* table) {
  names->clear();
  kinds->clear();
  size_t numeric = 0;
  for (const Cell& c : cells) {
    const std::string_view name = c.quoted ? c.text : Trim(c.text);
    names->emplace_back(name);
    float unused;
    if (ParseFloat(name, &unused) == NumberError::kNone) ++numeric;
  }
  if (numeric == cells.size()) {
    return Status::InvalidArgument(
        reader.Where() +
        "the header row is missing (the first row is all numbers)");
  }
  std::unordered_map<std::string, size_t> seen;
  for (size_t j = 0; j < names->size(); ++j) {
    const std::string& name = (*names)[j];
    if (name.empty()) {
      return Status::InvalidArgument(reader.Where() + "column " +
                                     std::to_string(j + 1) +
                                     " has an empty name");
    }
    // Feature names become protobuf strings (bundle metadata, status
    // replies), which must be UTF-8; the bytes are not echoed, since
    // quoting them would only put the same problem into the message.
    if (!IsValidUtf8(name)) {
      return Status::InvalidArgument(
          reader.Where() + "column " + std::to_string(j + 1) +
          ": the name is not valid UTF-8 (save the file as UTF-8)");
    }
    const std::string lower = Lower(name);
    ColumnKind kind = ColumnKind::kFeature;
    if (lower == "id") {
      kind = ColumnKind::kId;
    } else if (lower == "timestamp") {
      kind = ColumnKind::kTimestamp;
    } else if (lower == "label") {
      kind = ColumnKind::kLabel;
    }
    // Special columns match case-insensitively, so "ID" and "id" clash.
    const std::string key = kind == ColumnKind::kFeature ? name : lower;
    auto [it, inserted] = seen.emplace(key, j);
    if (!inserted) {
      return Status::InvalidArgument(
          reader.Where() + ColumnLabel(names, j, reader.quote_cells()) +
          " has the same name as column " + std::to_string(it->second + 1));
    }
    kinds->push_back(kind);
    if (kind == ColumnKind::kFeature) table->feature_names.push_back(name);
  }
  if (table->feature_names.empty()) {
    return Status::InvalidArgument(
        reader.Where() + "no feature columns (only id, timestamp or label)");
  }
  return Status::OK();
}

}  // namespace

Status ParseCsv(std::string_view text, const std::string& source,
                const CsvOptions& options, CsvTable* table) {
  *table = CsvTable();
  if (options.max_bytes > 0 && text.size() > options.max_bytes) {
    return Status(pb::TOO_LARGE, source + ": more than " +
                                     std::to_string(options.max_bytes) +
                                     " bytes (max_bytes)");
  }
  const auto cancelled = [&options] {
    return options.cancel != nullptr &&
           options.cancel->load(std::memory_order_relaxed);
  };
  if (cancelled()) return Status(pb::CANCELLED, source + ": cancelled");
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());

  const bool quote = options.quote_cells;
  CsvReader reader(text, source, quote);
  std::vector<Cell> cells;
  Status status;
  if (!reader.Next(&cells, &status)) {
    if (!status.ok()) return status;
    return Status::InvalidArgument(source + ": empty file (no header row)");
  }
  std::vector<std::string> names;
  std::vector<ColumnKind> kinds;
  ANOMALYD_RETURN_IF_ERROR(ParseHeader(cells, reader, &names, &kinds, table));
  reader.set_names(&names);
  const size_t header_line = reader.line();
  const size_t num_columns = names.size();
  const size_t num_features = table->feature_names.size();
  const bool has_id =
      std::find(kinds.begin(), kinds.end(), ColumnKind::kId) != kinds.end();
  const bool has_time = std::find(kinds.begin(), kinds.end(),
                                  ColumnKind::kTimestamp) != kinds.end();
  const bool has_label =
      std::find(kinds.begin(), kinds.end(), ColumnKind::kLabel) != kinds.end();

  // One allocation for the common case: a row per line.
  size_t expected_rows =
      static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  if (options.max_rows > 0) {
    expected_rows = std::min(expected_rows, options.max_rows + 1);
  }
  std::vector<float>& data = table->features.data;
  data.reserve(expected_rows * num_features);
  if (has_id) table->ids.reserve(expected_rows);
  if (has_time) table->timestamps.reserve(expected_rows);
  if (has_label) table->labels.reserve(expected_rows);

  size_t rows = 0;
  while (reader.Next(&cells, &status)) {
    if (rows % kCancelCheckRows == 0 && cancelled()) {
      return Status(pb::CANCELLED, reader.Where() + "cancelled");
    }
    if (options.max_rows > 0 && rows == options.max_rows) {
      return Status(pb::TOO_LARGE, reader.Where() + "more than " +
                                       std::to_string(options.max_rows) +
                                       " data rows (max_rows)");
    }
    if (cells.size() != num_columns) {
      std::string what =
          cells.size() < num_columns
              ? reader.Column(cells.size()) + " is missing"
              : "extra cell in column " + std::to_string(num_columns + 1);
      return Status::InvalidArgument(reader.Where() + "row has " +
                                     std::to_string(cells.size()) +
                                     " cells, the header has " +
                                     std::to_string(num_columns) + ": " + what);
    }
    for (size_t j = 0; j < num_columns; ++j) {
      const std::string_view cell = cells[j].text;
      switch (kinds[j]) {
        case ColumnKind::kFeature: {
          float v = 0.0f;
          const NumberError e = ParseFloat(cell, &v);
          if (e != NumberError::kNone) {
            return Status::InvalidArgument(reader.Where() + reader.Column(j) +
                                           ": " +
                                           NumberMessage(e, cell, quote));
          }
          data.push_back(v);
          break;
        }
        case ColumnKind::kId:
          table->ids.emplace_back(cell);
          break;
        case ColumnKind::kTimestamp: {
          const std::string_view s = StripPlus(Trim(cell));
          int64_t t = 0;
          auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), t);
          if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
            const char* why = ec == std::errc::result_out_of_range
                                  ? "out of range for a timestamp"
                                  : "not an integer timestamp";
            const std::string shown = quote ? Quote(cell) + " is " : "";
            return Status::InvalidArgument(reader.Where() + reader.Column(j) +
                                           ": " + shown + why);
          }
          table->timestamps.push_back(t);
          break;
        }
        case ColumnKind::kLabel: {
          // "1.0" is accepted: tools that write labels as floats are common.
          float v = 0.0f;
          if (ParseFloat(cell, &v) != NumberError::kNone ||
              (v != 0.0f && v != 1.0f)) {
            const std::string shown = quote ? Quote(cell) + " " : "";
            return Status::InvalidArgument(reader.Where() + reader.Column(j) +
                                           ": label " + shown +
                                           "is not 0 or 1");
          }
          table->labels.push_back(v == 1.0f ? 1 : 0);
          break;
        }
      }
    }
    ++rows;
  }
  if (!status.ok()) return status;
  if (rows == 0) {
    return Status::InvalidArgument(source + ":" + std::to_string(header_line) +
                                   ": no data rows after the header");
  }
  table->features.rows = rows;
  table->features.cols = num_features;
  return Status::OK();
}

Status SelectFeatures(const std::vector<std::string>& wanted,
                      const std::string& source, CsvTable* table) {
  std::unordered_map<std::string, size_t> index;
  for (size_t j = 0; j < table->feature_names.size(); ++j) {
    index.emplace(table->feature_names[j], j);
  }
  std::vector<size_t> from;
  from.reserve(wanted.size());
  for (const std::string& name : wanted) {
    auto it = index.find(name);
    if (it == index.end()) {
      return Status::InvalidArgument(source + ": feature column '" + name +
                                     "' is missing");
    }
    from.push_back(it->second);
  }
  const Matrix& in = table->features;
  Matrix out(in.rows, wanted.size());
  for (size_t i = 0; i < in.rows; ++i) {
    const float* src = in.row(i);
    float* dst = out.row(i);
    for (size_t j = 0; j < from.size(); ++j) dst[j] = src[from[j]];
  }
  table->features = std::move(out);
  table->feature_names = wanted;
  return Status::OK();
}

std::string CsvField(std::string_view v) {
  // A leading BOM would be taken for the file's own and dropped on reading.
  const bool needs_quotes = v.empty() || v.find_first_of(",\"\r\n") != std::string_view::npos ||
                            Trim(v).size() != v.size() || v.substr(0, kBom.size()) == kBom;
  if (!needs_quotes) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string FormatCsv(const std::vector<std::string>& header,
                      const Matrix& rows) {
  std::string out;
  out.reserve(header.size() * 8 + rows.data.size() * 12);
  for (size_t j = 0; j < header.size(); ++j) {
    if (j > 0) out += ',';
    out += CsvField(header[j]);
  }
  out += '\n';
  char buf[32];  // the shortest round-trip form of a float is <= 15 chars
  for (size_t i = 0; i < rows.rows; ++i) {
    const float* r = rows.row(i);
    for (size_t j = 0; j < rows.cols; ++j) {
      if (j > 0) out += ',';
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), r[j]);
      (void)ec;  // cannot fail: buf is large enough
      out.append(buf, ptr);
    }
    out += '\n';
  }
  return out;
}

}  // namespace anomalyd
