// Alert delivery end to end: the real daemon, a real Prometheus
// Alertmanager (Debian's prometheus-alertmanager, on loopback) and a
// webhook receiver in this process that checks signatures. Skips when
// Alertmanager is not installed.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "daemon/alert_format.h"
#include "proto/anomalyd.pb.h"
#include "storage/open.h"
#include "tests/daemon/daemon_process.h"
#include "tests/daemon/daemon_wire.h"
#include "tests/test_util.h"

namespace anomalyd::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kSecret[] = "s3cret-key";
constexpr char kAlertmanagerBin[] = "/usr/bin/prometheus-alertmanager";

// Waits until `done()` or `seconds` pass; returns done().
template <typename F>
bool WaitFor(F done, double seconds) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// One POST the receiver got.
struct Received {
  std::string path, body, delivery, signature;
};

// An HTTP server on 127.0.0.1 that records every POST. `respond` decides
// each reply's status (it may block, to hold a sender mid-request).
class Receiver {
 public:
  Receiver() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Received r{req.path, req.body, req.get_header_value("X-Anomalyd-Delivery"),
                 req.get_header_value("X-Anomalyd-Signature")};
      std::function<int(const Received&)> respond;
      {
        std::lock_guard<std::mutex> l(mu_);
        got_.push_back(r);
        respond = respond_;
      }
      res.status = respond ? respond(r) : 200;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void set_respond(std::function<int(const Received&)> f) {
    std::lock_guard<std::mutex> l(mu_);
    respond_ = std::move(f);
  }
  std::vector<Received> got(const std::string& path) const {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<Received> out;
    for (const Received& r : got_) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Received> got_;
  std::function<int(const Received&)> respond_;
};

// prometheus-alertmanager on a free loopback port, its notifications going
// to `webhook` (send_resolved), grouping by stream with short waits.
class Alertmanager {
 public:
  Alertmanager(const std::string& dir, const std::string& webhook) : dir_(dir) {
    port_ = FreePort();
    std::ofstream(dir_ + "/am.yml")
        << "route:\n  receiver: test\n  group_by: ['alertname', 'stream']\n"
        << "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        << "receivers:\n  - name: test\n    webhook_configs:\n      - url: " << webhook
        << "\n        send_resolved: true\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/alertmanager.log";
      if (std::freopen(log.c_str(), "w", stderr) == nullptr) ::_exit(126);
      ::dup2(::fileno(stderr), STDOUT_FILENO);
      const std::string cfg = "--config.file=" + dir_ + "/am.yml";
      const std::string data = "--storage.path=" + dir_ + "/am-data";
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      ::execl(kAlertmanagerBin, kAlertmanagerBin, cfg.c_str(), data.c_str(), listen.c_str(),
              "--cluster.listen-address=", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Alertmanager() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool WaitReady() {
    return WaitFor(
        [&] {
          httplib::Client c("127.0.0.1", port_);
          auto r = c.Get("/-/ready");
          return r && r->status == 200;
        },
        20);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The alerts Alertmanager holds now (GET /api/v2/alerts): the JSON text
  // (alerts_json) and how many there are.
  std::string AlertsJson() const {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get("/api/v2/alerts");
    return r && r->status == 200 ? r->body : "";
  }
  int CountAlerts() const {
    google::protobuf::ListValue list;
    if (!google::protobuf::util::JsonStringToMessage(AlertsJson(), &list).ok()) return -1;
    return list.values_size();
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

pb::AlertNotification Parse(const Received& r) {
  pb::AlertNotification n;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.body, &n).ok()) << r.body;
  return n;
}

class AlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kAlertmanagerBin, X_OK) != 0) {
      GTEST_SKIP() << "prometheus-alertmanager is not installed (scripts/install-deps.sh --test)";
    }
    std::ofstream(dir_.file("secret")) << kSecret << "\n";
    ::chmod(dir_.file("secret").c_str(), 0600);
  }

  // Starts the daemon with [alerts] `alerts` (TOML lines) added.
  void StartDaemon(const std::string& alerts) {
    daemon_ = std::make_unique<DaemonProcess>(
        dir_.path(), "[alerts]\nwebhook_secret_file = \"" + dir_.file("secret") +
                         "\"\nsuppress_after_retrain_s = 0\npoll_interval_s = 0.05\n" + alerts);
    daemon_->set_metrics("tcp://127.0.0.1:" + std::to_string(metrics_port_));
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why)) << why;
    score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
  }

  // Scores n anomalous records in requests of 10; every reply must be OK.
  void Flood(int n, const std::string& prefix) {
    for (int i = 0; i < n; i += 10) {
      std::vector<std::vector<float>> rows;
      for (int k = 0; k < 10; ++k) rows.push_back(AnomalousRecord(rng_));
      pb::Response resp;
      ASSERT_OK(score_->Call(ScoreRequest(rows, "default", prefix + std::to_string(i) + "-", true),
                             &resp));
      ASSERT_EQ(resp.score().columns().flagged_size() + resp.score().results_size(), 10);
    }
  }

  std::string Metrics() {
    return HttpExchange(metrics_port_, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  }

  // Every webhook request must carry a valid signature and a delivery id.
  static void ExpectSigned(const std::vector<Received>& got) {
    for (const Received& r : got) {
      EXPECT_EQ(r.signature, "sha256=" + HmacSha256Hex(kSecret, r.body));
      EXPECT_FALSE(r.delivery.empty());
    }
  }

  TempDir dir_;
  int metrics_port_ = FreePort();
  zmq::context_t ctx_{1};
  std::mt19937_64 rng_{7};
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> score_;
};

// 500 flagged records in a burst are one incident: one alert in
// Alertmanager, one firing and one resolved notification per receiver,
// signed; Alertmanager's own notifications (firing, then resolved) follow.
TEST_F(AlertsTest, FloodIsOneAlertThatResolvesAfterTheHysteresis) {
  Receiver hooks;
  Alertmanager am(dir_.path(), hooks.url("/am"));
  ASSERT_TRUE(am.WaitReady()) << "Alertmanager did not start";
  StartDaemon("alertmanager_url = \"" + am.url() + "\"\nwebhooks = [\"" + hooks.url("/hook") +
              "\"]\nresolve_after_s = 5\n");
  Flood(500, "a");
  ASSERT_TRUE(WaitFor([&] { return am.CountAlerts() == 1; }, 20)) << daemon_->Log();
  const std::string alerts = am.AlertsJson();
  EXPECT_NE(alerts.find(std::string("\"alertname\":\"") + kAlertName + "\""), std::string::npos)
      << alerts;
  EXPECT_NE(alerts.find("\"stream\":\"default\""), std::string::npos) << alerts;

  // Resolved once 3 s pass without a flagged record.
  ASSERT_TRUE(WaitFor([&] { return hooks.got("/hook").size() >= 2; }, 30)) << daemon_->Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Received& r : hooks.got("/am")) {
          if (r.body.find("\"status\":\"resolved\"") != std::string::npos) return true;
        }
        return false;
      },
      30));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // anything extra would show
  const std::vector<Received> got = hooks.got("/hook");
  ASSERT_EQ(got.size(), 2u);
  ExpectSigned(got);
  const pb::AlertNotification fired = Parse(got[0]), resolved = Parse(got[1]);
  EXPECT_EQ(fired.status(), "firing");
  EXPECT_EQ(resolved.status(), "resolved");
  EXPECT_EQ(resolved.incident().id(), fired.incident().id());
  EXPECT_EQ(resolved.incident().count(), 500u);
  EXPECT_NE(got[0].delivery, got[1].delivery);
  // Alertmanager told its receiver: the firing group first, then resolved.
  const std::vector<Received> am_got = hooks.got("/am");
  ASSERT_GE(am_got.size(), 2u);
  EXPECT_NE(am_got.front().body.find("\"status\":\"firing\""), std::string::npos);

  const std::string m = Metrics();
  EXPECT_NE(
      m.find("anomalyd_alert_deliveries_total{receiver=\"webhook:0\",outcome=\"delivered\"} 2"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("anomalyd_alert_notifications_total{status=\"resolved\"} 1"), std::string::npos);
  EXPECT_NE(m.find("anomalyd_alert_outbox_notifications 0"), std::string::npos);
  EXPECT_EQ(daemon_->Stop(), 0);
}

// An Alertmanager that cannot be reached: attempts are retried with
// backoff, then the notification becomes a dead letter; scoring never
// waits on it.
TEST_F(AlertsTest, UnreachableAlertmanagerRetriesThenDeadLetters) {
  const int closed = FreePort();  // nothing listens there
  StartDaemon("alertmanager_url = \"http://127.0.0.1:" + std::to_string(closed) +
              "\"\nmax_attempts = 3\nretry_initial_s = 0.1\nretry_max_s = 0.2\n"
              "timeout_s = 0.5\n");
  const auto t0 = Clock::now();
  Flood(100, "u");
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  ASSERT_TRUE(WaitFor(
      [&] { return Metrics().find("anomalyd_alert_dead_letters 1") != std::string::npos; }, 30))
      << Metrics();
  const std::string m = Metrics();
  EXPECT_NE(
      m.find("anomalyd_alert_deliveries_total{receiver=\"alertmanager\",outcome=\"failed\"} 3"),
      std::string::npos)
      << m;
  // Scoring went on meanwhile.
  Flood(10, "v");
  EXPECT_EQ(daemon_->Stop(), 0);
  // The dead letter stays in the outbox, with why.
  StoreSpec spec;
  spec.url = daemon_->db();
  spec.options.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenStore(spec, &store));
  int64_t pending = 0, dead = 0;
  ASSERT_OK(store->CountOutbox(&pending, &dead));
  EXPECT_EQ(pending, 0);
  EXPECT_EQ(dead, 1);
}

// Records scored in the first seconds after a freshly trained model
// serves (here the start-up training) join no incident.
TEST_F(AlertsTest, NoAlertsJustAfterARetrain) {
  Receiver hooks;
  StartDaemon("webhooks = [\"" + hooks.url("/hook") + "\"]\n[streams.default.alerts]\n" +
              "suppress_after_retrain_s = 600\n");
  Flood(50, "s");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Metrics().find("anomalyd_alert_records_skipped_total{reason=\"retrain\"} 50") !=
               std::string::npos;
      },
      20))
      << Metrics();
  EXPECT_TRUE(hooks.got("/hook").empty());
  EXPECT_NE(Metrics().find("anomalyd_alert_incidents{state=\"firing\"} 0"), std::string::npos);
  EXPECT_EQ(daemon_->Stop(), 0);
}

// SIGKILL while a notification is in flight, a receiver that then fails
// twice: after the restart the same notification (same delivery id) is
// retried until it is taken, and the incident, restored from the store,
// resolves. Nothing is lost; a repeat carries the id it had.
TEST_F(AlertsTest, SigkillMidSendThenRetriesDeliverEverything) {
  Receiver hooks;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int after_restart = 0;
  bool restarted = false;
  hooks.set_respond([&](const Received&) {
    std::unique_lock<std::mutex> l(mu);
    if (!restarted) {
      cv.wait(l, [&] { return release; });  // hold the daemon mid-send
      return 200;                           // too late: its sender is gone
    }
    return ++after_restart <= 2 ? 503 : 200;
  });
  StartDaemon("webhooks = [\"" + hooks.url("/hook") +
              "\"]\nresolve_after_s = 4\nretry_initial_s = 0.2\nretry_max_s = 0.5\n");
  Flood(50, "k");
  ASSERT_TRUE(WaitFor([&] { return hooks.got("/hook").size() == 1; }, 20)) << daemon_->Log();
  const std::string first_id = hooks.got("/hook")[0].delivery;
  EXPECT_EQ(daemon_->Stop(SIGKILL), 128 + SIGKILL);
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
    restarted = true;
  }
  cv.notify_all();

  std::string why;
  ASSERT_TRUE(daemon_->Start(&why)) << why;
  // 503, 503, then 200 for the firing one; then its resolution.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const Received& r : hooks.got("/hook")) {
          if (r.body.find("\"status\":\"resolved\"") != std::string::npos) return true;
        }
        return false;
      },
      40))
      << daemon_->Log();
  const std::vector<Received> got = hooks.got("/hook");
  ExpectSigned(got);
  ASSERT_GE(got.size(), 5u);  // killed attempt, 2 failures, delivered, resolved
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(got[i].delivery, first_id) << i;  // one notification, retried
    EXPECT_EQ(Parse(got[i]).status(), "firing");
  }
  const pb::AlertNotification resolved = Parse(got.back());
  EXPECT_EQ(resolved.incident().id(), Parse(got[0]).incident().id());
  EXPECT_EQ(resolved.incident().count(), 50u);
  EXPECT_EQ(daemon_->Stop(), 0);
}

}  // namespace
}  // namespace anomalyd::testing
