// Storage faults under the real daemon: the disk fills up, or the file
// system turns read-only, while it runs. Scoring goes on, replies say that a
// flagged record was not stored, status and metrics show the storage as
// degraded, and all of it clears with the first commit once the disk is
// writable again.
//
// The faults come from fault_fs.cc, preloaded into the daemon: SQLite's
// writes fail with ENOSPC or EROFS while a control file says so. A small
// tmpfs or a read-only remount would need root and a mount namespace; the
// shim runs in any unprivileged container, switches in both directions at
// once, and fails nothing but the database's own files.
#include <fstream>

#include "clients/client.h"
#include "tests/daemon/daemon_helpers.h"
#include "tests/daemon/daemon_process.h"
#include "tests/daemon/daemon_wire.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::FindStream;
using testing::FreePort;
using testing::GetStatus;
using testing::HttpGet;
using testing::NormalRecord;
using testing::ScoreRequest;
using testing::StoredIds;

struct Fault {
  const char* what;
  const char* errno_name;  // what fault_fs.cc makes writes fail with
  ErrorCode code;          // what the daemon reports
};

// Names the case in ctest's list instead of its bytes.
void PrintTo(const Fault& f, std::ostream* os) { *os << f.what; }

class DaemonStorageFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
    port_ = FreePort();
    daemon_->set_metrics("tcp://127.0.0.1:" + std::to_string(port_));
    const char* asan = std::getenv("ASAN_OPTIONS");
    env_ = {"LD_PRELOAD=" ANOMALYD_FAULT_FS, "ANOMALYD_FAULT_FILE=" + tmp_.file("fault"),
            "ANOMALYD_FAULT_PATH=" + daemon_->db(),
            // The shim comes before the ASan runtime in a sanitizer build.
            std::string("ASAN_OPTIONS=") + (asan ? asan : "") + ":verify_asan_link_order=0"};
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why, std::chrono::seconds(120), env_)) << why;
    score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
    control_ = std::make_unique<Client>(ctx_, daemon_->control(), std::chrono::seconds(20));
  }

  void SetFault(const std::string& errno_name) {
    std::ofstream(tmp_.file("fault"), std::ios::trunc) << errno_name;
  }

  // Scores one normal and one anomalous record; the anomaly's result.
  pb::ScoreResult ScoreAnomaly(const std::string& prefix) {
    pb::Response resp;
    EXPECT_OK(score_->Call(ScoreRequest({NormalRecord(rng_), AnomalousRecord(rng_)}, "",
                                        prefix, true), &resp));
    EXPECT_EQ(resp.score().results_size(), 2);
    EXPECT_FALSE(resp.score().results(0).flagged());
    EXPECT_TRUE(resp.score().results(1).flagged());
    return resp.score().results(1);
  }

  std::string Metrics() { return HttpGet(port_, "/metrics"); }

  testing::TempDir tmp_;
  zmq::context_t ctx_{1};
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> score_, control_;
  std::vector<std::string> env_;
  int port_ = 0;
  std::mt19937_64 rng_{21};
};

TEST_P(DaemonStorageFaultTest, ScoringGoesOnAndStorageRecovers) {
  const Fault& f = GetParam();
  EXPECT_TRUE(ScoreAnomaly("before").stored());

  SetFault(f.errno_name);
  for (int i = 0; i < 5; ++i) {
    const pb::ScoreResult r = ScoreAnomaly("during" + std::to_string(i) + "-");
    EXPECT_FALSE(r.stored()) << f.what << " " << i;
  }
  const pb::StatusResponse down = GetStatus(*control_);
  EXPECT_FALSE(down.storage_ok());
  EXPECT_NE(down.storage_error().find(pb::ErrorCode_Name(f.code)), std::string::npos)
      << down.storage_error();
  EXPECT_EQ(FindStream(down, "default")->scored(), 12u);  // scoring went on
  std::string m = Metrics();
  EXPECT_NE(m.find("anomalyd_storage_healthy 0"), std::string::npos) << m;
  EXPECT_NE(m.find("anomalyd_anomalies_unstored_total 5"), std::string::npos) << m;

  SetFault("");
  EXPECT_TRUE(ScoreAnomaly("after").stored());
  const pb::StatusResponse up = GetStatus(*control_);
  EXPECT_TRUE(up.storage_ok()) << up.storage_error();
  EXPECT_TRUE(up.storage_error().empty());
  m = Metrics();
  EXPECT_NE(m.find("anomalyd_storage_healthy 1"), std::string::npos) << m;

  EXPECT_EQ(daemon_->Stop(), 0) << daemon_->Log();
  const std::set<std::string> stored = StoredIds(daemon_->db());
  EXPECT_EQ(stored, (std::set<std::string>{"before1", "after1"}));
  const std::string log = daemon_->Log();
  EXPECT_NE(log.find("storage degraded: " + pb::ErrorCode_Name(f.code)), std::string::npos) << log;
  EXPECT_NE(log.find("storage recovered"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, DaemonStorageFaultTest,
    ::testing::Values(Fault{"disk full", "ENOSPC", pb::STORAGE_FULL},
                      Fault{"read-only file system", "EROFS", pb::IO_ERROR}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.errno_name); });

}  // namespace
}  // namespace anomalyd
