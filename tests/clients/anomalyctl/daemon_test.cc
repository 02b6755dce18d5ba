// anomalyctl against a real anomalyd: the built binary, the daemon started
// by tests/daemon/daemon_process.h (ipc:// endpoints in a temp dir, a small
// model of the stream "default" over features f0..f3). Each test starts
// its own daemon.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/daemon_process.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::NormalRecord;
using testing::TempDir;

struct CtlRun {
  int rc = -1;
  std::string out, err;
};

// Runs anomalyctl with `args` (a shell command line's words).
CtlRun Ctl(const std::string& args) {
  static int calls = 0;
  const std::string err_file =
      (std::filesystem::temp_directory_path() /
       ("anomalyctl-daemon-test-" + std::to_string(::getpid()) + "-" +
        std::to_string(calls++) + ".err"))
          .string();
  const std::string cmd = std::string(ANOMALYD_BINARY_DIR) + "/clients/anomalyctl " + args +
                          " 2>" + err_file;
  CtlRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int rc = ::pclose(p);
  std::ifstream in(err_file);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  std::remove(err_file.c_str());
  r.rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Records of an RFC 4180 text (quoted fields may hold , " CR LF).
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !row.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

class AnomalyctlDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why)) << why;
    endpoints_ = " --endpoint " + daemon_->score() + " --control " + daemon_->control() +
                 " --alerts " + daemon_->alerts() + " --timeout-ms 20000";
  }
  void TearDown() override {
    if (daemon_ && daemon_->pid() > 0) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->Log();
    }
  }
  // `args` with the daemon's endpoints after them.
  CtlRun At(const std::string& args) { return Ctl(args + endpoints_); }

  // Records of features f0..f3 with awkward ids: 8 normal, then 4 anomalous.
  std::string RecordsCsv() {
    std::mt19937_64 rng(9);
    std::ostringstream os;
    os << "id,f0,f1,f2,f3\n";
    for (int i = 0; i < 12; ++i) {
      const std::vector<float> r = i < 8 ? NormalRecord(rng) : AnomalousRecord(rng);
      os << (i == 9 ? "\"bad,\"\"9\"\"\"" : i == 10 ? "\"two\nlines\"" : "r" + std::to_string(i));
      for (float v : r) os << "," << v;
      os << "\n";
    }
    return os.str();
  }
  std::string WriteRecords() {
    const std::string path = tmp_.file("records.csv");
    std::ofstream(path) << RecordsCsv();
    return path;
  }

  TempDir tmp_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string endpoints_;
};

// Regression: options of the whole command were refused after the
// subcommand ("The following argument was not expected: --endpoint"),
// although the README wrote them there.
TEST_F(AnomalyctlDaemonTest, GlobalOptionsGoBeforeOrAfterTheSubcommand) {
  const std::string before = "--endpoint " + daemon_->score() + " --control " +
                             daemon_->control() + " --timeout-ms 20000";
  for (const std::string& args :
       {before + " status", "status " + before,
        "--control " + daemon_->control() + " status --timeout-ms 20000"}) {
    const CtlRun r = Ctl(args);
    EXPECT_EQ(r.rc, 0) << args << "\n" << r.err;
    EXPECT_NE(r.out.find("default"), std::string::npos) << args << "\n" << r.out;
  }
  // A sub-subcommand passes them up too, and its parent's own options.
  const CtlRun r = Ctl("models rollback --to 1 --stream default --control " + daemon_->control());
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("stream 'default' now serves version 1"), std::string::npos) << r.out;
  // What nobody takes is still an error.
  EXPECT_NE(Ctl("status --no-such-option " + before).rc, 0);
}

// Regression: against the daemon, --contributions printed a header without
// the contrib_ columns, and the columns came in another order than offline.
TEST_F(AnomalyctlDaemonTest, ScoreHasTheOfflineColumnsAndContributions) {
  const std::string data = WriteRecords();
  const std::string bundle = tmp_.file("state/bundles/default/v1");
  const CtlRun offline = Ctl("score --contributions --model " + bundle + " --data " + data);
  ASSERT_EQ(offline.rc, 0) << offline.err;
  const CtlRun online = At("score --contributions --data " + data);
  ASSERT_EQ(online.rc, 0) << online.err;
  const auto off = ParseCsv(offline.out), on = ParseCsv(online.out);
  ASSERT_EQ(off.size(), 13u) << offline.out;
  ASSERT_EQ(on.size(), 13u) << online.out;
  const std::vector<std::string> common = {"id",    "reconstruction", "kl",     "density",
                                           "score", "p_value",        "flagged"};
  const std::vector<std::string> contrib = {"contrib_f0", "contrib_f1", "contrib_f2",
                                            "contrib_f3"};
  std::vector<std::string> want_off = common, want_on = common;
  want_off.insert(want_off.end(), contrib.begin(), contrib.end());
  want_on.insert(want_on.end(), {"stored", "model_version"});
  want_on.insert(want_on.end(), contrib.begin(), contrib.end());
  EXPECT_EQ(off[0], want_off);
  EXPECT_EQ(on[0], want_on);
  for (size_t i = 1; i < on.size(); ++i) {
    ASSERT_EQ(on[i].size(), want_on.size()) << online.out;
    ASSERT_EQ(off[i].size(), want_off.size()) << offline.out;
    EXPECT_EQ(on[i][0], off[i][0]);  // ids, quoted and read back
    EXPECT_EQ(on[i][3], "");         // the daemon's replies carry no density
    EXPECT_EQ(on[i][8], "1");        // model_version
    // The same model: the same scores, terms and contributions.
    for (size_t k : {1, 2, 4, 5, 6, 9, 10, 11, 12}) {
      const double a = std::stod(on[i][k]), b = std::stod(off[i][k < 9 ? k : k - 2]);
      EXPECT_NEAR(a, b, 1e-3 * (1 + std::fabs(b))) << on[0][k] << " of " << on[i][0];
    }
  }
  EXPECT_EQ(on[10][0], "bad,\"9\"");
  EXPECT_EQ(on[11][0], "two\nlines");
  EXPECT_EQ(on[11][6], "1");  // anomalous
  EXPECT_EQ(on[11][7], "1");  // and stored
  // Without --contributions: no contrib_ columns.
  const CtlRun plain = At("score --data " + data);
  ASSERT_EQ(plain.rc, 0) << plain.err;
  EXPECT_EQ(plain.out.substr(0, plain.out.find('\n')),
            "id,reconstruction,kl,density,score,p_value,flagged,stored,model_version");
}

// Regression: --out and --device were ignored against the daemon.
TEST_F(AnomalyctlDaemonTest, ScoreWritesOutAndRefusesDevice) {
  const std::string data = WriteRecords();
  const std::string out = tmp_.file("scores.csv");
  CtlRun r = At("score --data " + data + " --out " + out);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const auto rows = ParseCsv(Slurp(out));
  ASSERT_EQ(rows.size(), 13u);
  EXPECT_EQ(rows[0][0], "id");
  EXPECT_EQ(rows[1][0], "r0");

  r = At("score --data " + data + " --device cpu");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("--device applies to offline scoring (--model)"), std::string::npos)
      << r.err;
  EXPECT_NE(At("score --data " + data + " --out " + tmp_.file("no/such/dir.csv")).rc, 0);
}

// Regression: --since/--until refused the times anomalyctl prints
// ("2026-12-03T17:38:19.595Z") and offsets.
TEST_F(AnomalyctlDaemonTest, QueryTakesTheTimesItPrints) {
  ASSERT_EQ(At("score --data " + WriteRecords()).rc, 0);
  CtlRun r = At("query --format csv");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto rows = ParseCsv(r.out);
  ASSERT_GE(rows.size(), 5u) << r.out;  // the header and the 4 anomalies at least
  ASSERT_EQ(rows[0][4], "scored_time");
  const size_t flagged = rows.size() - 1;
  bool quoted_id = false;
  for (const auto& row : rows) quoted_id |= row[1] == "bad,\"9\"";
  EXPECT_TRUE(quoted_id) << r.out;
  // The earliest and latest scored times, as anomalyctl printed them
  // (ISO 8601 strings sort as times).
  std::string first = rows[1][4], last = rows[1][4];
  for (size_t i = 1; i < rows.size(); ++i) {
    first = std::min(first, rows[i][4]);
    last = std::max(last, rows[i][4]);
  }
  for (const std::string& since :
       {first, std::string("-1h"), std::string("2000-01-01T02:00:00+02:00"),
        std::string("946684800"), std::string("2000-01-01")}) {
    r = At("query --format csv --since " + Quote(since));
    EXPECT_EQ(r.rc, 0) << since << ": " << r.err;
    EXPECT_EQ(ParseCsv(r.out).size() - 1, flagged) << since;
  }
  // Printed times are rounded down to the millisecond: the last of its
  // microseconds takes in every row of that millisecond.
  ASSERT_EQ(last.size(), 24u) << last;  // 2026-12-03T17:38:19.595Z
  r = At("query --format csv --until " + Quote(last.substr(0, 23) + "999Z"));
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(ParseCsv(r.out).size() - 1, flagged) << r.out;
  // An hour ahead, with an offset: nothing yet.
  const int64_t hour_ahead = std::time(nullptr) + 3600;
  r = At("query --format csv --since " + std::to_string(hour_ahead));
  EXPECT_EQ(ParseCsv(r.out).size(), 1u) << r.out;
  r = At("query --format csv --since " + Quote(first.substr(0, 19) + "-23:00"));
  EXPECT_EQ(ParseCsv(r.out).size(), 1u) << r.out;

  r = At("query --since yesterday");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("time 'yesterday'"), std::string::npos) << r.err;
}

// tail --since prints what is stored first (oldest first), then follows
// the live alerts, with no record twice and none missed in between.
TEST_F(AnomalyctlDaemonTest, TailSinceCatchesUpThenFollows) {
  ASSERT_EQ(At("score --data " + WriteRecords()).rc, 0);
  const size_t stored = ParseCsv(At("query --format csv").out).size() - 1;
  ASSERT_GE(stored, 4u);
  CtlRun tail;
  std::thread t([&] { tail = At("tail --since -1h -n " + std::to_string(stored + 2)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::mt19937_64 rng(21);
  {
    std::ofstream os(tmp_.file("live.csv"));
    os << "id,f0,f1,f2,f3\n";
    for (const char* id : {"live-1", "live-2"}) {
      os << id;
      for (float v : AnomalousRecord(rng)) os << "," << v;
      os << "\n";
    }
  }
  ASSERT_EQ(At("score --data " + tmp_.file("live.csv")).rc, 0);
  t.join();
  ASSERT_EQ(tail.rc, 0) << tail.err;
  std::vector<std::string> lines;
  std::istringstream in(tail.out);
  // One line a record (they start with the scored time), after the header;
  // a record id may hold a newline.
  for (std::string line; std::getline(in, line);) {
    if (lines.empty() || std::isdigit(static_cast<unsigned char>(line[0]))) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), stored + 3) << tail.out;
  EXPECT_NE(lines[stored + 1].find("live-1"), std::string::npos) << tail.out;
  EXPECT_NE(lines[stored + 2].find("live-2"), std::string::npos) << tail.out;
  // Oldest first: scored times (the first column) never go down.
  for (size_t i = 2; i < lines.size(); ++i) {
    EXPECT_LE(lines[i - 1].substr(0, 24), lines[i].substr(0, 24)) << tail.out;
  }
}

TEST_F(AnomalyctlDaemonTest, CancelStopsATrainingAndTheModelStays) {
  CtlRun r = At("cancel --stream default");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not training"), std::string::npos) << r.err;

  // A training that would run for ever: no early stopping, endless epochs.
  std::string config = Slurp(tmp_.file("anomalyd.toml"));
  const std::string epochs = "max_epochs = 120\n";
  ASSERT_NE(config.find(epochs), std::string::npos) << config;
  config.replace(config.find(epochs), epochs.size(), "max_epochs = 100000\npatience = 0\n");
  std::ofstream(tmp_.file("anomalyd.toml")) << config;
  ASSERT_EQ(At("reload").rc, 0);
  r = At("retrain --stream default --csv " + tmp_.file("base.csv"));
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("version 2"), std::string::npos) << r.out;
  r = At("cancel --wait --stream default");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("training of version 2 cancelled; serving version 1"),
            std::string::npos)
      << r.out;
  r = At("status");
  EXPECT_NE(r.out.find("cancelled"), std::string::npos) << r.out;
}

// Regression: `reload` printed "reload requested" whether the daemon took
// the new file or kept its running config.
TEST_F(AnomalyctlDaemonTest, ReloadReportsTheOutcome) {
  const std::string config = tmp_.file("anomalyd.toml");
  CtlRun r = At("reload");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "reloaded " + config + "\n");

  std::ofstream(config, std::ios::app) << "[limits\n";
  r = At("reload");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("reload: keeping the running config: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(config), std::string::npos) << r.err;  // names the file
  EXPECT_NE(daemon_->Log().find("reload: keeping the running config"), std::string::npos);

  // Taken, but for a part that cannot be applied: said, and not a success.
  std::string text = Slurp(config);
  text.resize(text.rfind("[limits\n"));
  text += "[auth]\nmetrics_token_file = \"" + tmp_.file("missing-token") + "\"\n";
  std::ofstream(config) << text;
  r = At("reload");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "reloaded " + config + "\n");
  EXPECT_NE(r.err.find("kept: the metrics token: IO_ERROR"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r.err;
}

// --help says what unit the timestamp column is in.
TEST(AnomalyctlHelpTest, ScoreHelpNamesTheTimestampUnit) {
  const CtlRun r = Ctl("score --help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("microseconds since the Unix epoch"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace anomalyd
