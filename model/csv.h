// Reading record tables from CSV files: the format of baselines, of records
// to score and of labelled evaluation sets.
//
// Format: a header row, then one record per row. Columns named `id`,
// `timestamp` and `label` (case-insensitive, any position) are special; every
// other column is a numeric feature. Cells may be quoted with "..." (with ""
// for a quote; a quoted cell may span lines). Numbers are plain decimals or
// exponent form, optionally signed and surrounded by spaces or tabs; NaN, Inf
// and values beyond the float range are errors, values below it become 0.
// Blank lines, a trailing newline and a leading UTF-8 BOM are ignored; CRLF
// is accepted. Header names are trimmed of spaces unless quoted; ids are
// kept verbatim. Header names must be valid UTF-8 (they become protobuf
// strings in bundles and replies). A first row made only of numbers is
// reported as a missing header. Every error names the file, the 1-based line
// (where the record starts) and the column by name and number, e.g.
//   data.csv:17: column 'f3' (4): 'abc' is not a number
// With CsvOptions::quote_cells = false no message quotes what the file holds:
//   data.csv:17: column 'f3' (4): not a number
// Error messages are always valid UTF-8 (Status escapes stray bytes).
#ifndef ANOMALYD_MODEL_CSV_H_
#define ANOMALYD_MODEL_CSV_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/matrix.h"
#include "proto/status.h"

namespace anomalyd {

struct CsvTable {
  std::vector<std::string> feature_names;  // in file order
  Matrix features;                         // rows x feature_names.size()
  std::vector<std::string> ids;            // empty when there is no id column
  std::vector<int64_t> timestamps;         // empty when no timestamp column
  std::vector<int> labels;                 // empty when no label column; 0/1
};

struct CsvOptions {
  // Stop with TOO_LARGE past this many data rows (0 = no limit).
  size_t max_rows = 0;
  // Stop with TOO_LARGE when the input has more bytes than this (0 = no
  // limit). Readers check while reading, so no more than max_bytes plus one
  // read chunk (64 KiB) of the input is ever held.
  uint64_t max_bytes = 0;
  // When non-null and set, stop with CANCELLED: checked between read chunks
  // and every few thousand rows while parsing. Not owned; must outlive the
  // call. A read that blocks (a pipe with no writer activity) is not
  // interrupted; the flag is seen when it returns.
  const std::atomic<bool>* cancel = nullptr;
  // When false, error messages name the source, the line and the column (by
  // number, and by name only for header names of at most 64 bytes without
  // control characters) but never quote a cell, a row or any other content
  // of the input. For readers of files named by someone else (the daemon):
  // an error must not reveal what a file the reader can open contains.
  bool quote_cells = true;
};

// Parses CSV text. `source` names the input in error messages (a path or
// "<stdin>"). On success fills *table; on failure *table is unspecified and
// the result is INVALID_ARGUMENT naming source, line and column, TOO_LARGE
// past max_rows or max_bytes, or CANCELLED. A label cell must be 0 or 1
// (1.0 and 0.0 are accepted); a timestamp cell a 64-bit integer. Column
// names must be unique (special names compared case-insensitively),
// non-empty and valid UTF-8 (a name that is not is reported by column
// number, its bytes never echoed). At least one feature column and at least
// one data row are required.
Status ParseCsv(std::string_view text, const std::string& source,
                const CsvOptions& options, CsvTable* table);

// Reads the open descriptor `fd` to its end, then parses what it read as
// ParseCsv does; `source` names it in messages. Does not close `fd` (the
// caller owns it) and reads from its current offset. REQUIRES: `fd` is
// blocking: a read that would block (EAGAIN) is IO_ERROR, not retried.
// Reads interrupted by a signal (EINTR) are retried. IO_ERROR when a read
// fails (a directory, say); TOO_LARGE as soon as more than
// options.max_bytes bytes arrive, or at once when fd is a regular file
// already larger than that; CANCELLED when options.cancel is set.
Status ReadCsvFd(int fd, const std::string& source, const CsvOptions& options,
                 CsvTable* table);

// Opens the file at `path` ("-" reads standard input) and reads it as
// ReadCsvFd does. IO_ERROR when it cannot be opened.
Status ReadCsv(const std::string& path, const CsvOptions& options,
               CsvTable* table);

// Reorders the columns of `table` to `wanted` (a model's feature names),
// matching by name. INVALID_ARGUMENT names the first missing column; extra
// columns are dropped. On failure *table is untouched.
Status SelectFeatures(const std::vector<std::string>& wanted,
                      const std::string& source, CsvTable* table);

// One CSV field as written: as is, or in double quotes (a quote doubled)
// when it holds a comma, a quote, CR or LF (RFC 4180), and also when it
// is empty, starts or ends with a space or tab (ParseCsv trims those from
// unquoted cells) or starts with a UTF-8 byte order mark (taken for the
// file's own in a first cell). ParseCsv reads the result back as `v`.
// Every CSV writer of anomalyctl goes through it.
std::string CsvField(std::string_view v);

// Writes a header and rows as CSV (used by `anomalyctl sample`), "\n"
// line endings. Values are printed in the shortest form that round-trips a
// float exactly; names are written with CsvField. Non-finite values come out
// as nan/inf, which ParseCsv rejects. REQUIRES: header.size() == rows.cols.
std::string FormatCsv(const std::vector<std::string>& header,
                      const Matrix& rows);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_CSV_H_
