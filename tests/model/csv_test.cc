#include "model/csv.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <regex>
#include <sstream>

#include "proto/utf8.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using ::anomalyd::testing::SharedData;
using ::anomalyd::testing::TempDir;

Status Parse(std::string_view text, CsvTable* table, size_t max_rows = 0) {
  CsvOptions options;
  options.max_rows = max_rows;
  return ParseCsv(text, "data.csv", options, table);
}

bool BitEqual(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Every malformed input, with the code and the message (or the start of it)
// it must produce: source, 1-based line, and the column by name and number.
TEST(CsvTest, Errors) {
  struct Case {
    const char* name;
    std::string text;
    ErrorCode code;
    std::string message;
    size_t max_rows = 0;
    uint64_t max_bytes = 0;
  };
  const std::string k17Lines = [] {
    std::string s = "f0,f1,f2,f3\n";
    for (int i = 2; i < 17; ++i) s += "1,2,3,4\n";
    return s + "1,2,3,abc\n";
  }();
  const std::vector<Case> cases = {
      {"empty file", "", pb::INVALID_ARGUMENT,
       "data.csv: empty file (no header row)"},
      {"only blank lines", "\n  \r\n\t\n", pb::INVALID_ARGUMENT,
       "data.csv: empty file (no header row)"},
      {"only a BOM", "\xEF\xBB\xBF", pb::INVALID_ARGUMENT,
       "data.csv: empty file (no header row)"},
      {"header missing", "1,2,3\n4,5,6\n", pb::INVALID_ARGUMENT,
       "data.csv:1: the header row is missing (the first row is all numbers)"},
      {"no data rows", "a,b\n", pb::INVALID_ARGUMENT,
       "data.csv:1: no data rows after the header"},
      {"no data rows, blank lines", "\na,b\n\n\r\n", pb::INVALID_ARGUMENT,
       "data.csv:2: no data rows after the header"},
      {"too few cells", "a,b,c\n1,2,3\n4,5\n", pb::INVALID_ARGUMENT,
       "data.csv:3: row has 2 cells, the header has 3: column 'c' (3) is "
       "missing"},
      {"too many cells", "a,b\n1,2,3\n", pb::INVALID_ARGUMENT,
       "data.csv:2: row has 3 cells, the header has 2: extra cell in column "
       "3"},
      {"trailing comma", "a,b\n1,2,\n", pb::INVALID_ARGUMENT,
       "data.csv:2: row has 3 cells, the header has 2: extra cell in column "
       "3"},
      {"not a number", k17Lines, pb::INVALID_ARGUMENT,
       "data.csv:17: column 'f3' (4): 'abc' is not a number"},
      {"number then junk", "a,b\n1,2x\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): '2x' is not a number"},
      {"incomplete exponent", "a\n1e\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'a' (1): '1e' is not a number"},
      {"hex", "a\n0x10\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'a' (1): '0x10' is not a number"},
      {"empty cell", "a,b\n1,\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): empty cell, expected a number"},
      {"nan", "a,b\n1,nan\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): 'nan' is not a finite number"},
      {"NaN", "a,b\n1,2\nNaN,1\n", pb::INVALID_ARGUMENT,
       "data.csv:3: column 'a' (1): 'NaN' is not a finite number"},
      {"inf", "a,b\n1,inf\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): 'inf' is not a finite number"},
      {"-Infinity", "a,b\n1,-Infinity\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): '-Infinity' is not a finite number"},
      {"double overflow", "a,b\n1,1e999\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): '1e999' is out of range for a float"},
      {"float overflow", "a,b\n1,-1e39\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): '-1e39' is out of range for a float"},
      {"duplicate column", "a,b,a\n1,2,3\n", pb::INVALID_ARGUMENT,
       "data.csv:1: column 'a' (3) has the same name as column 1"},
      {"duplicate special column", "id,x,ID\n1,2,3\n", pb::INVALID_ARGUMENT,
       "data.csv:1: column 'ID' (3) has the same name as column 1"},
      {"empty column name", "a,,b\n1,2,3\n", pb::INVALID_ARGUMENT,
       "data.csv:1: column 2 has an empty name"},
      {"header name not UTF-8", "a,caf\xE9\n1,2\n", pb::INVALID_ARGUMENT,
       "data.csv:1: column 2: the name is not valid UTF-8"},
      {"quoted header name not UTF-8", "\"\xC0\x80\",b\n1,2\n",
       pb::INVALID_ARGUMENT,
       "data.csv:1: column 1: the name is not valid UTF-8"},
      {"max_bytes exceeded", "a\n1\n", pb::TOO_LARGE,
       "data.csv: more than 3 bytes (max_bytes)", /*max_rows=*/0,
       /*max_bytes=*/3},
      {"label 2", "x,label\n1,0\n1,2\n", pb::INVALID_ARGUMENT,
       "data.csv:3: column 'label' (2): label '2' is not 0 or 1"},
      {"label 0.5", "x,Label\n1,0.5\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'Label' (2): label '0.5' is not 0 or 1"},
      {"label word", "label,x\nyes,1\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'label' (1): label 'yes' is not 0 or 1"},
      {"fractional timestamp", "timestamp,x\n1.5,2\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'timestamp' (1): '1.5' is not an integer "
       "timestamp"},
      {"empty timestamp", "x,timestamp\n1,\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'timestamp' (2): '' is not an integer timestamp"},
      {"timestamp overflow", "timestamp,x\n99999999999999999999,2\n",
       pb::INVALID_ARGUMENT,
       "data.csv:2: column 'timestamp' (1): '99999999999999999999' is out of "
       "range for a timestamp"},
      {"no feature columns", "id,label,timestamp\na,1,5\n",
       pb::INVALID_ARGUMENT,
       "data.csv:1: no feature columns (only id, timestamp or label)"},
      {"unterminated quote", "a,b\n1,\"2\n3,4\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): quoted cell is never closed"},
      {"quote in unquoted cell", "a,b\n1,2\"3\"\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): a quote inside an unquoted cell"},
      {"junk after closing quote", "a,b\n\"1\"x,2\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'a' (1): unexpected 'x' after a closing quote"},
      {"quote error in header", "a,\"b\n", pb::INVALID_ARGUMENT,
       "data.csv:1: column 2: quoted cell is never closed"},
      {"CRLF and blank lines counted", "a,b\r\n\r\n1,2\r\n\r\n3,x\r\n",
       pb::INVALID_ARGUMENT, "data.csv:5: column 'b' (2): 'x' is not a number"},
      {"CR shown escaped", "a,b\n1,2\r3\n", pb::INVALID_ARGUMENT,
       "data.csv:2: column 'b' (2): '2\\r3' is not a number"},
      {"lines inside quotes counted", "id,x\n\"a\nb\",1\nc,zz\n",
       pb::INVALID_ARGUMENT,
       "data.csv:4: column 'x' (2): 'zz' is not a number"},
      {"line after BOM",
       "\xEF\xBB\xBF"
       "a,b\n1,q\n",
       pb::INVALID_ARGUMENT, "data.csv:2: column 'b' (2): 'q' is not a number"},
      {"long cell shortened", "a\n" + std::string(100, 'z') + "\n",
       pb::INVALID_ARGUMENT,
       "data.csv:2: column 'a' (1): '" + std::string(40, 'z') +
           "...' is not a number"},
      {"max_rows exceeded", "a\n1\n\n2\n3\n", pb::TOO_LARGE,
       "data.csv:5: more than 2 data rows (max_rows)", /*max_rows=*/2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    CsvTable table;
    CsvOptions options;
    options.max_rows = c.max_rows;
    options.max_bytes = c.max_bytes;
    const Status s = ParseCsv(c.text, "data.csv", options, &table);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(c.code, s.code()) << s.ToString();
    EXPECT_EQ(0u, s.message().rfind(c.message, 0))
        << "got:  " << s.message() << "\nwant: " << c.message;
  }
}

TEST(CsvTest, SpecialColumnsInAnyPositionAndCase) {
  CsvTable t;
  ASSERT_OK(
      Parse("Label,f1,ID,f2,TimeStamp\n"
            "1,0.5,r1,-2.4e-06,1700000000000000\n"
            "0,1e3,\"r,2\",+3,-5\n",
            &t));
  EXPECT_EQ((std::vector<std::string>{"f1", "f2"}), t.feature_names);
  ASSERT_EQ(2u, t.features.rows);
  ASSERT_EQ(2u, t.features.cols);
  EXPECT_EQ(0.5f, t.features.at(0, 0));
  EXPECT_EQ(-2.4e-06f, t.features.at(0, 1));
  EXPECT_EQ(1000.0f, t.features.at(1, 0));
  EXPECT_EQ(3.0f, t.features.at(1, 1));
  EXPECT_EQ((std::vector<std::string>{"r1", "r,2"}), t.ids);
  EXPECT_EQ((std::vector<int64_t>{1700000000000000, -5}), t.timestamps);
  EXPECT_EQ((std::vector<int>{1, 0}), t.labels);
}

TEST(CsvTest, NoSpecialColumnsLeavesTheirVectorsEmpty) {
  CsvTable t;
  ASSERT_OK(Parse("a,b\n1,2\n", &t));
  EXPECT_TRUE(t.ids.empty());
  EXPECT_TRUE(t.timestamps.empty());
  EXPECT_TRUE(t.labels.empty());
}

TEST(CsvTest, QuotingAndEscapes) {
  CsvTable t;
  ASSERT_OK(
      Parse("\"id\",\"a,b\",\"say \"\"hi\"\"\"\n"
            "\"x\"\"y\",\"1.5\",2\n"
            "\"multi\nline\",3,\"-4\"\n",
            &t));
  EXPECT_EQ((std::vector<std::string>{"a,b", "say \"hi\""}), t.feature_names);
  EXPECT_EQ((std::vector<std::string>{"x\"y", "multi\nline"}), t.ids);
  EXPECT_EQ(1.5f, t.features.at(0, 0));
  EXPECT_EQ(-4.0f, t.features.at(1, 1));
}

TEST(CsvTest, EscapedQuoteIsNotANumber) {
  CsvTable t;
  const Status s = Parse("a\n\"\"\"4\"\"\"\n", &t);
  EXPECT_EQ("data.csv:2: column 'a' (1): '\"4\"' is not a number", s.message());
}

// Found by tests/fuzz/csv_fuzz: unescaping a later cell of a record grew the
// buffer store and moved the strings earlier cells pointed into
// (heap-use-after-free, visible under ASan).
TEST(CsvTest, RegressionEscapedCellsOfOneRecordStayValid) {
  CsvTable t;
  ASSERT_OK(Parse("\"a\"\"\",\"b\"\"\",\"c\"\"\"\n1,2,3\n", &t));
  EXPECT_EQ((std::vector<std::string>{"a\"", "b\"", "c\""}), t.feature_names);
}

// Found by tests/fuzz/csv_fuzz: quoting a cell cut a multi-byte character in
// two or copied a stray non-UTF-8 byte, and the daemon's status reply that
// carries such a message (a protobuf string) no longer parsed.
TEST(CsvTest, RegressionErrorMessagesStayUtf8) {
  CsvTable t;
  const std::string x39(39, 'x');  // "é" straddles the 40-byte cut
  EXPECT_EQ("data.csv:2: column 'a' (1): '" + x39 + "\xc3\xa9' is not a number",
            Parse("a\n" + x39 + "\xc3\xa9\n", &t).message());
  EXPECT_EQ("data.csv:2: column 'a' (1): unexpected '\\xd8' after a closing quote",
            Parse("a,b\n\"1\"\xd8\x81,2\n", &t).message());
}

// A Latin-1 header (café as one byte E9) became a feature name, a protobuf
// string: every status reply naming the stream's features then failed to
// parse in clients, and the bundle's metadata failed after a restart.
TEST(CsvTest, RegressionLatin1HeaderIsRejectedByColumnNumber) {
  for (bool quote : {true, false}) {
    SCOPED_TRACE(quote);
    CsvOptions options;
    options.quote_cells = quote;
    CsvTable t;
    const Status s =
        ParseCsv("id,temp,caf\xE9_load\nr1,1,2\n", "data.csv", options, &t);
    EXPECT_EQ(pb::INVALID_ARGUMENT, s.code());
    EXPECT_EQ(
        "data.csv:1: column 3: the name is not valid UTF-8 (save the "
        "file as UTF-8)",
        s.message());
    EXPECT_TRUE(IsValidUtf8(s.message()));
  }
}

TEST(CsvTest, Utf8HeaderNamesAreKept) {
  CsvTable t;
  ASSERT_OK(Parse("caf\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\n1,2,3\n", &t));
  EXPECT_EQ((std::vector<std::string>{"caf\xC3\xA9", "\xE2\x82\xAC",
                                      "\xF0\x9F\x98\x80"}),
            t.feature_names);
}

// quote_cells = false: each kind of message, with the content it would
// quote left out. Columns are named by number only: a header name is the
// file's content too.
TEST(CsvTest, QuoteCellsOffMessages) {
  const std::string long_name(65, 'n');
  const std::string max_name(64, 'm');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a,b\n1,xyz\n", "data.csv:2: column 2: not a number"},
      {"a,b\n1,nan\n", "data.csv:2: column 2: not a finite number"},
      {"a,b\n1,1e99\n", "data.csv:2: column 2: out of range for a float"},
      {"a,b\n1,\n",
       "data.csv:2: column 2: empty cell, expected a number"},
      {"timestamp,x\nnoon,2\n",
       "data.csv:2: column 1: not an integer timestamp"},
      {"timestamp,x\n99999999999999999999,2\n",
       "data.csv:2: column 1: out of range for a timestamp"},
      {"x,label\n1,yes\n",
       "data.csv:2: column 2: label is not 0 or 1"},
      {"a,b\n\"1\"secret,2\n",
       "data.csv:2: column 1: unexpected character after a closing "
       "quote"},
      {"a,b\n1,2\"3\"\n",
       "data.csv:2: column 2: a quote inside an unquoted cell (quote the "
       "whole cell)"},
      {"a,b\n1,\"2\n",
       "data.csv:2: column 2: quoted cell is never closed"},
      {"a,b,c\n1,2\n",
       "data.csv:2: row has 2 cells, the header has 3: column 3 is "
       "missing"},
      {"a,b,a\n1,2,3\n",
       "data.csv:1: column 3 has the same name as column 1"},
      {"1,2\n3,4\n",
       "data.csv:1: the header row is missing (the first row is all numbers)"},
      {long_name + "\nsecret\n", "data.csv:2: column 1: not a number"},
      {max_name + "\nsecret\n",
       "data.csv:2: column 1: not a number"},
      {"\"two\nlines\"\nsecret\n", "data.csv:3: column 1: not a number"},
      {long_name + "," + long_name + "\n1,2\n",
       "data.csv:1: column 2 has the same name as column 1"},
  };
  CsvOptions options;
  options.quote_cells = false;
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    CsvTable t;
    const Status s = ParseCsv(text, "data.csv", options, &t);
    EXPECT_EQ(want, s.message());
  }
}

// The daemon reads files named by clients. A retrain error used to echo a
// whole header line plus part of the next: the first lines of any file the
// daemon could read. With quote_cells = false nothing of the file shows.
TEST(CsvTest, RegressionQuoteCellsOffEchoesNoFileContents) {
  const std::string secret_header =
      "root:$6$SECRETSALT$SECRETHASHSECRETHASHSECRETHASHSECRETHASH:19000:0:"
      "99999:7:::";  // one long "column": a line of a file that is no CSV
  const std::vector<std::string> second_rows = {
      "SECRETROW",   "SECRETROW,SECRETROW", "\"SECRETROW\"SECRETROW",
      "\"SECRETROW", "SECRETROW\"",         "nan",
      "1e99"};
  for (const std::string& row : second_rows) {
    SCOPED_TRACE(row);
    const std::string text = secret_header + "\n" + row + "\n";
    CsvTable t;
    CsvOptions options;
    options.quote_cells = false;
    const Status s = ParseCsv(text, "/etc/shadow", options, &t);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(0u, s.message().rfind("/etc/shadow:2: ", 0)) << s.message();
    EXPECT_EQ(std::string::npos, s.message().find("SECRET")) << s.message();
    EXPECT_EQ(std::string::npos, s.message().find("root")) << s.message();
    EXPECT_EQ(std::string::npos, s.message().find("'")) << s.message();
  }
  // The default still quotes, for anomalyctl's users reading their own files.
  CsvTable t;
  EXPECT_NE(
      std::string::npos,
      Parse(secret_header + "\nSECRETROW\n", &t).message().find("SECRETROW"));
}

TEST(CsvTest, MaxBytesIsInclusive) {
  const std::string text = "a\n1\n";
  CsvOptions options;
  options.max_bytes = text.size();
  CsvTable t;
  ASSERT_OK(ParseCsv(text, "data.csv", options, &t));
  options.max_bytes = text.size() - 1;
  EXPECT_EQ(pb::TOO_LARGE, ParseCsv(text, "data.csv", options, &t).code());
}

TEST(CsvTest, CancelledParseIsCancelled) {
  const std::string text = FormatCsv({"a"}, Matrix(10000, 1));
  std::atomic<bool> cancel{true};
  CsvOptions options;
  options.cancel = &cancel;
  CsvTable t;
  const Status s = ParseCsv(text, "data.csv", options, &t);
  EXPECT_EQ(pb::CANCELLED, s.code()) << s.ToString();
  cancel = false;
  ASSERT_OK(ParseCsv(text, "data.csv", options, &t));
  EXPECT_EQ(10000u, t.features.rows);
}

TEST(CsvTest, LayoutVariants) {
  // The same table written with a BOM, CRLF, blank lines, spaces around
  // numbers and header names, and no trailing newline.
  const std::vector<std::string> texts = {
      "a,b\n1,2\n3,4\n",
      "a,b\n1,2\n3,4",
      "\xEF\xBB\xBF"
      "a,b\r\n1,2\r\n3,4\r\n",
      "a,b\r\n1,2\r\n3,4",
      "\n\na,b\n\n1,2\n   \n3,4\n\n\n",
      " a , b\n 1 ,\t2\n+3,4.0\n",
      "a,\"b\"\r\n\"1\",2\r\n3,\"4\"",
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    CsvTable t;
    ASSERT_OK(Parse(text, &t));
    EXPECT_EQ((std::vector<std::string>{"a", "b"}), t.feature_names);
    EXPECT_EQ((std::vector<float>{1, 2, 3, 4}), t.features.data);
    EXPECT_EQ(2u, t.features.rows);
  }
}

TEST(CsvTest, NumberForms) {
  CsvTable t;
  ASSERT_OK(Parse("a\n-2.4e-06\n.5\n1.\n1E3\n-0\n1e-50\n3.4028234e38\n", &t));
  const std::vector<float> want = {-2.4e-06f, 0.5f, 1.0f,         1000.0f,
                                   -0.0f,     0.0f, 3.4028234e38f};
  ASSERT_EQ(want.size(), t.features.data.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(BitEqual(want[i], t.features.data[i])) << i;
  }
}

TEST(CsvTest, LabelAcceptsFloatForms) {
  CsvTable t;
  ASSERT_OK(Parse("x,label\n1,1.0\n2,0.0\n3,1\n", &t));
  EXPECT_EQ((std::vector<int>{1, 0, 1}), t.labels);
}

TEST(CsvTest, MaxRowsIsInclusive) {
  CsvTable t;
  ASSERT_OK(Parse("a\n1\n2\n", &t, /*max_rows=*/2));
  EXPECT_EQ(2u, t.features.rows);
}

TEST(CsvTest, FormatRoundTrip) {
  Matrix m(4, 3);
  m.data = {0.1f,
            -2.4e-06f,
            std::numeric_limits<float>::max(),
            std::numeric_limits<float>::denorm_min(),
            -0.0f,
            123456789.0f,
            1.0f / 3.0f,
            -std::numeric_limits<float>::min(),
            42.0f,
            0.0f,
            1e-30f,
            -7.25f};
  const std::vector<std::string> header = {"plain", "with,comma", "say \"hi\""};
  const std::string text = FormatCsv(header, m);
  EXPECT_EQ(0u, text.rfind("plain,\"with,comma\",\"say \"\"hi\"\"\"\n0.1,", 0))
      << text;
  CsvTable t;
  ASSERT_OK(Parse(text, &t));
  EXPECT_EQ(header, t.feature_names);
  ASSERT_EQ(m.rows, t.features.rows);
  ASSERT_EQ(m.cols, t.features.cols);
  for (size_t i = 0; i < m.data.size(); ++i) {
    EXPECT_TRUE(BitEqual(m.data[i], t.features.data[i]))
        << i << ": " << m.data[i] << " vs " << t.features.data[i];
  }
}

// Found by tests/fuzz/csv_fuzz: a first name starting with a byte order mark
// was written bare, and reading the file back dropped it as the file's BOM.
TEST(CsvTest, RegressionFormatQuotesNameStartingWithBom) {
  const std::string name = "\xEF\xBB\xBF" "a";  // BOM, then "a"
  Matrix m(1, 1);
  CsvTable t;
  ASSERT_OK(Parse(FormatCsv({name}, m), &t));
  EXPECT_EQ(std::vector<std::string>{name}, t.feature_names);
}

// RFC 4180 quoting, and what ParseCsv would otherwise change (trimmed
// edges, a first cell's BOM, an empty cell); every field reads back as is.
TEST(CsvTest, CsvFieldQuotesOnlyWhatNeedsIt) {
  const struct {
    std::string in, want;
  } kCases[] = {
      {"r1", "r1"},
      {"a b", "a b"},
      {"caf\xC3\xA9", "caf\xC3\xA9"},
      {"a,b", "\"a,b\""},
      {"say \"hi\"", "\"say \"\"hi\"\"\""},
      {"\"", "\"\"\"\""},
      {"two\nlines", "\"two\nlines\""},
      {"cr\rhere", "\"cr\rhere\""},
      {"crlf\r\n", "\"crlf\r\n\""},
      {"", "\"\""},
      {" edge", "\" edge\""},
      {"edge\t", "\"edge\t\""},
      {"\xEF\xBB\xBF" "bom", "\"\xEF\xBB\xBF" "bom\""},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(CsvField(c.in), c.want);
    // As an id (kept verbatim) and as a header name (trimmed unless
    // quoted).
    CsvTable t;
    const std::string name = c.in.empty() ? "f" : CsvField(c.in);
    ASSERT_OK(Parse(name + ",id\n1," + CsvField(c.in) + "\n", &t));
    ASSERT_EQ(t.ids.size(), 1u);
    EXPECT_EQ(t.ids[0], c.in);
    ASSERT_EQ(t.feature_names.size(), 1u);
    // An empty column name is an error however it is written.
    if (!c.in.empty()) {
      EXPECT_EQ(t.feature_names[0], c.in);
    }
  }
}

TEST(CsvTest, FormatRandomRoundTrip) {
  Matrix m(200, 5);
  uint32_t bits = 12345;
  for (float& v : m.data) {
    do {
      bits = bits * 1664525u + 1013904223u;  // LCG: any finite float pattern
      std::memcpy(&v, &bits, sizeof v);
    } while (!std::isfinite(v));
  }
  const std::vector<std::string> header = {"a", "b", "c", "d", "e"};
  CsvTable t;
  ASSERT_OK(Parse(FormatCsv(header, m), &t));
  ASSERT_EQ(m.data.size(), t.features.data.size());
  for (size_t i = 0; i < m.data.size(); ++i) {
    ASSERT_TRUE(BitEqual(m.data[i], t.features.data[i])) << m.data[i];
  }
}

TEST(CsvTest, SelectFeaturesReordersAndDrops) {
  CsvTable t;
  ASSERT_OK(Parse("id,a,b,c\nr1,1,2,3\nr2,4,5,6\n", &t));
  ASSERT_OK(SelectFeatures({"c", "a"}, "data.csv", &t));
  EXPECT_EQ((std::vector<std::string>{"c", "a"}), t.feature_names);
  EXPECT_EQ(2u, t.features.rows);
  EXPECT_EQ(2u, t.features.cols);
  EXPECT_EQ((std::vector<float>{3, 1, 6, 4}), t.features.data);
  EXPECT_EQ((std::vector<std::string>{"r1", "r2"}), t.ids);
}

TEST(CsvTest, SelectFeaturesMissingColumnLeavesTableUntouched) {
  CsvTable t;
  ASSERT_OK(Parse("a,b\n1,2\n", &t));
  const Status s = SelectFeatures({"b", "z", "y"}, "data.csv", &t);
  EXPECT_EQ(pb::INVALID_ARGUMENT, s.code());
  EXPECT_EQ("data.csv: feature column 'z' is missing", s.message());
  EXPECT_EQ((std::vector<std::string>{"a", "b"}), t.feature_names);
  EXPECT_EQ((std::vector<float>{1, 2}), t.features.data);
}

TEST(CsvTest, ReadCsvFromFile) {
  TempDir dir;
  const std::string path = dir.file("in.csv");
  std::ofstream(path) << "x,y\n1,2\n3,oops\n";
  CsvTable t;
  const Status s = ReadCsv(path, CsvOptions(), &t);
  EXPECT_EQ(pb::INVALID_ARGUMENT, s.code());
  EXPECT_EQ(path + ":3: column 'y' (2): 'oops' is not a number", s.message());

  std::ofstream(path) << "x,y\n1,2\n";
  ASSERT_OK(ReadCsv(path, CsvOptions(), &t));
  EXPECT_EQ((std::vector<float>{1, 2}), t.features.data);
}

TEST(CsvTest, ReadCsvMissingFileIsIoError) {
  TempDir dir;
  CsvTable t;
  const Status s = ReadCsv(dir.file("absent.csv"), CsvOptions(), &t);
  EXPECT_EQ(pb::IO_ERROR, s.code());
  EXPECT_NE(std::string::npos, s.message().find("absent.csv")) << s.message();
}

TEST(CsvTest, ReadCsvDirectoryIsIoError) {
  TempDir dir;
  CsvTable t;
  EXPECT_EQ(pb::IO_ERROR,
            ReadCsv(dir.path().string(), CsvOptions(), &t).code());
}

// Value of a top-level integer field in the shared data's meta.json.
long MetaField(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m,
                         std::regex("\"" + key + "\"\\s*:\\s*(\\d+)"))) {
    return -1;
  }
  return std::stol(m[1]);
}

TEST(CsvTest, ParsesEverySharedDataFile) {
  const std::filesystem::path root = SharedData("adbench");
  if (!std::filesystem::is_directory(root)) GTEST_SKIP() << root << " absent";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    std::ifstream meta_in(entry.path() / "meta.json");
    std::stringstream meta;
    meta << meta_in.rdbuf();
    for (const std::string split : {"train", "test"}) {
      const std::string path = (entry.path() / (split + ".csv")).string();
      SCOPED_TRACE(path);
      CsvTable t;
      const auto start = std::chrono::steady_clock::now();
      ASSERT_OK(ReadCsv(path, CsvOptions(), &t));
      const double ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now() - start)
                            .count();
      ++files;
      std::printf("%-45s %6zu x %3zu  %7.2f ms\n", path.c_str(),
                  t.features.rows, t.features.cols, ms);
      EXPECT_EQ("f0", t.feature_names.front());
      EXPECT_EQ(t.features.rows * t.features.cols, t.features.data.size());
      const long dim = MetaField(meta.str(), "n_features");
      if (dim >= 0) {
        EXPECT_EQ(static_cast<size_t>(dim), t.features.cols);
      }
      const long rows = MetaField(meta.str(), "n_" + split);
      if (rows >= 0) {
        EXPECT_EQ(static_cast<size_t>(rows), t.features.rows);
      }
      if (split == "test") {
        ASSERT_EQ(t.features.rows, t.labels.size());
        const long anomalies = MetaField(meta.str(), "n_test_anomalies");
        if (anomalies >= 0) {
          EXPECT_EQ(anomalies,
                    std::accumulate(t.labels.begin(), t.labels.end(), 0L));
        }
      } else {
        EXPECT_TRUE(t.labels.empty());
      }
    }
  }
  EXPECT_GT(files, 0);
}

// Parsing speed on a synthetic 50,000 x 9 table: not a timed test, but a
// report to notice regressions by eye (the spec asks for well under 1 s).
TEST(CsvTest, LargeTableParses) {
  Matrix m(50000, 9);
  for (size_t i = 0; i < m.data.size(); ++i) {
    m.data[i] = static_cast<float>(std::sin(static_cast<double>(i)) * 1e3);
  }
  const std::string text =
      FormatCsv({"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8"}, m);
  CsvTable t;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK(Parse(text, &t));
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  std::printf("50000 x 9, %zu bytes: %.2f ms\n", text.size(), ms);
  EXPECT_EQ(m.data, t.features.data);
}

}  // namespace
}  // namespace anomalyd
