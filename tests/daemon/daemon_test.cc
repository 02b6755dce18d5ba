// Integration tests: the real anomalyd binary, real ZeroMQ sockets, the real
// SQLite file. Each test starts its own daemon in a temp dir.
#include <filesystem>
#include <set>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <time.h>

#include "clients/client.h"
#include "storage/store.h"
#include "tests/daemon/daemon_helpers.h"
#include "tests/daemon/daemon_process.h"
#include "tests/daemon/daemon_wire.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::FindStream;
using testing::GetStatus;
using testing::HttpGet;
using testing::NormalRecord;
using testing::OpenDaemonStore;
using testing::ScoreRequest;
using testing::StoredIds;

class DaemonTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& extra = "") {
    daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string(), extra);
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why)) << why;
    score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
    control_ = std::make_unique<Client>(ctx_, daemon_->control(), std::chrono::seconds(20));
  }
  void TearDown() override {
    score_.reset();
    control_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->Log();
    }
  }

  testing::TempDir tmp_;
  zmq::context_t ctx_{1};
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> score_, control_;
  std::mt19937_64 rng_{5};
};

TEST_F(DaemonTest, ScoresFlagsStoresAndPublishes) {
  StartDaemon();
  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "default");
  sub.set(zmq::sockopt::rcvtimeo, 5000);
  sub.connect(daemon_->alerts());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // slow joiner

  for (bool dense : {false, true}) {
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < 40; ++i) rows.push_back(NormalRecord(rng_));
    for (int i = 0; i < 5; ++i) rows.push_back(AnomalousRecord(rng_));
    const std::string prefix = dense ? "d" : "r";
    pb::Response resp;
    ASSERT_OK(score_->Call(ScoreRequest(rows, "", prefix, dense), &resp));
    ASSERT_EQ(resp.score().results_size(), 45);
    int normal_flagged = 0;
    for (int i = 0; i < 45; ++i) {
      const pb::ScoreResult& r = resp.score().results(i);
      EXPECT_EQ(r.id(), prefix + std::to_string(i));
      EXPECT_EQ(r.index(), static_cast<uint32_t>(i));
      EXPECT_EQ(r.model_version(), 1u);
      EXPECT_GE(r.score(), r.reconstruction());
      if (i >= 40) {
        EXPECT_TRUE(r.flagged()) << i << " score " << r.score() << " thr " << r.threshold();
        EXPECT_TRUE(r.stored()) << i;
      } else if (r.flagged()) {
        ++normal_flagged;
        EXPECT_TRUE(r.stored());
      }
    }
    EXPECT_LE(normal_flagged, 4);
  }
  // Every flagged record is in SQLite (the reply came after the commit) ...
  std::set<std::string> stored = StoredIds(daemon_->db());
  for (int i = 40; i < 45; ++i) {
    EXPECT_TRUE(stored.count("r" + std::to_string(i)));
    EXPECT_TRUE(stored.count("d" + std::to_string(i)));
  }
  // ... and was published on alerts, with its features and contributions.
  std::set<std::string> alerted;
  for (size_t k = 0; k < stored.size(); ++k) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(sub, std::back_inserter(frames))) break;
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].to_string(), "default");
    pb::Alert a;
    ASSERT_TRUE(a.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size())));
    EXPECT_EQ(a.anomaly().features_size(), 4);
    EXPECT_EQ(a.anomaly().contributions_size(), 4);
    alerted.insert(a.anomaly().record_id());
  }
  EXPECT_EQ(alerted, stored);
  // Labels travel with the per-record form.
  pb::Request q;
  q.mutable_query()->set_stream("default");
  q.mutable_query()->set_limit(1000);
  pb::Response qr;
  ASSERT_OK(score_->Call(q, &qr));
  EXPECT_EQ(static_cast<size_t>(qr.query().anomalies_size()), stored.size());
  bool labelled = false;
  for (const auto& a : qr.query().anomalies()) {
    if (a.record_id() == "r41") labelled = a.labels().at("host") == "web-41";
  }
  EXPECT_TRUE(labelled);
  EXPECT_TRUE(daemon_->Saw("READY=1"));
}

TEST_F(DaemonTest, IngestScoresAndStoresWithoutReplies) {
  StartDaemon();
  zmq::socket_t push(ctx_, zmq::socket_type::push);
  push.connect(daemon_->ingest());
  std::vector<std::vector<float>> rows = {NormalRecord(rng_), AnomalousRecord(rng_)};
  const std::string bytes = ScoreRequest(rows, "default", "ing", true).SerializeAsString();
  push.send(zmq::buffer(bytes), zmq::send_flags::none);
  for (int i = 0; i < 100 && !StoredIds(daemon_->db()).count("ing1"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(StoredIds(daemon_->db()).count("ing1"));
  EXPECT_EQ(FindStream(GetStatus(*control_), "default")->scored(), 2u);
}

TEST_F(DaemonTest, TwoStreamsWithDifferentDimensions) {
  std::ofstream(tmp_.file("wide.csv")) << testing::BaselineCsv(600, 2, 6);
  StartDaemon("[streams.wide]\nbaseline = \"" + tmp_.file("wide.csv") + "\"\n");
  pb::Response resp;
  std::vector<std::vector<float>> four = {NormalRecord(rng_)};
  std::vector<std::vector<float>> six = {{0.1f, 0.2f, 10, 9.9f, 10.1f, 0.05f}};
  ASSERT_OK(score_->Call(ScoreRequest(four, "default", "a", false), &resp));
  ASSERT_OK(score_->Call(ScoreRequest(six, "wide", "b", false), &resp));
  EXPECT_EQ(score_->Call(ScoreRequest(six, "default", "c", true), &resp).code(),
            pb::WRONG_DIMENSION);
  // One request may mix streams; results come back in request order.
  pb::Request mixed = ScoreRequest(four, "default", "m", false);
  pb::Record* r = mixed.mutable_score()->add_records();
  r->set_id("w");
  r->set_stream("wide");
  r->mutable_features()->Add(six[0].begin(), six[0].end());
  ASSERT_OK(score_->Call(mixed, &resp));
  ASSERT_EQ(resp.score().results_size(), 2);
  EXPECT_EQ(resp.score().results(1).id(), "w");
  const pb::StatusResponse st = GetStatus(*control_);
  EXPECT_EQ(FindStream(st, "wide")->dim(), 6u);
  EXPECT_EQ(FindStream(st, "default")->dim(), 4u);
}

TEST_F(DaemonTest, RetrainWhileStreamingSwapsWithoutFailures) {
  StartDaemon();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, requests{0};
  std::set<uint32_t> versions;
  std::mutex mu;
  std::thread streamer([&] {
    Client c(ctx_, daemon_->score(), std::chrono::seconds(20));
    std::mt19937_64 rng(9);
    while (!stop) {
      std::vector<std::vector<float>> rows;
      for (int i = 0; i < 16; ++i) rows.push_back(NormalRecord(rng));
      pb::Response resp;
      Status s = c.Call(ScoreRequest(rows, "default", "s", true), &resp);
      ++requests;
      if (!s.ok()) {
        ++failures;
        continue;
      }
      std::lock_guard<std::mutex> l(mu);
      for (const auto& r : resp.score().results()) versions.insert(r.model_version());
    }
  });
  pb::Request rt;
  rt.mutable_retrain()->set_csv_path(tmp_.file("base.csv"));
  pb::Response resp;
  ASSERT_OK(control_->Call(rt, &resp));
  EXPECT_EQ(resp.retrain().target_version(), 2u);
  for (int i = 0; i < 600; ++i) {
    if (FindStream(GetStatus(*control_), "default")->model_version() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  streamer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(requests.load(), 10);
  EXPECT_EQ(versions, (std::set<uint32_t>{1, 2}));  // changed mid-stream

  // Rollback makes version 1 serve again; listing shows both.
  pb::Request rb;
  rb.mutable_rollback()->set_to_version(1);
  ASSERT_OK(control_->Call(rb, &resp));
  EXPECT_EQ(FindStream(GetStatus(*control_), "default")->model_version(), 1u);
  pb::Request models;
  models.mutable_models();
  ASSERT_OK(control_->Call(models, &resp));
  ASSERT_EQ(resp.models().models_size(), 2);
  EXPECT_TRUE(resp.models().models(1).active());  // newest first: v2, v1
}

TEST_F(DaemonTest, RestartRestoresModelsAndThresholds) {
  StartDaemon();
  pb::Request cal;
  cal.mutable_calibrate()->set_method(pb::FIXED);
  cal.mutable_calibrate()->set_value(123.5);
  pb::Response resp;
  ASSERT_OK(control_->Call(cal, &resp));
  ASSERT_EQ(daemon_->Stop(), 0);
  std::string why;
  ASSERT_TRUE(daemon_->Start(&why)) << why;
  control_ = std::make_unique<Client>(ctx_, daemon_->control(), std::chrono::seconds(20));
  const pb::StatusResponse status = GetStatus(*control_);
  const pb::StreamStatus* st = FindStream(status, "default");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->model_version(), 1u);  // not retrained at restart
  EXPECT_DOUBLE_EQ(st->threshold(), 123.5);
  EXPECT_EQ(st->threshold_method(), pb::FIXED);
}

TEST_F(DaemonTest, SigtermDuringLoadKeepsEveryFlaggedReply) {
  StartDaemon();
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  std::mutex mu;
  std::set<std::string> flagged;
  std::atomic<int> answered{0};
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      Client c(ctx_, daemon_->score(), std::chrono::seconds(5));
      std::mt19937_64 rng(100 + t);
      for (int k = 0; !stop; ++k) {
        std::vector<std::vector<float>> rows;
        for (int i = 0; i < 8; ++i)
          rows.push_back(i % 4 == 0 ? AnomalousRecord(rng) : NormalRecord(rng));
        pb::Response resp;
        const std::string prefix = std::to_string(t) + "-" + std::to_string(k) + "-";
        if (!c.Call(ScoreRequest(rows, "default", prefix, true), &resp).ok()) break;
        ++answered;
        std::lock_guard<std::mutex> l(mu);
        for (const auto& r : resp.score().results()) {
          if (r.flagged()) flagged.insert(r.id());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  EXPECT_EQ(daemon_->Stop(SIGTERM), 0) << daemon_->Log();
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(answered.load(), 5);
  EXPECT_TRUE(daemon_->Saw("STOPPING=1"));
  const std::set<std::string> stored = StoredIds(daemon_->db());
  for (const std::string& id : flagged) EXPECT_TRUE(stored.count(id)) << id;
}

// storage.url puts the database where it says (percent-decoded); the
// state directory then holds none.
TEST_F(DaemonTest, StorageUrlNamesTheDatabase) {
  const std::string db = tmp_.file("elsewhere 50%.db");
  StartDaemon("[storage]\nurl = \"" + SqliteUrl(db) + "\"\n");
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(AnomalousRecord(rng_));
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest(rows, "default", "u", true), &resp));
  ASSERT_EQ(resp.score().results_size(), 5);
  const std::set<std::string> stored = StoredIds(db);
  for (const pb::ScoreResult& r : resp.score().results()) {
    EXPECT_TRUE(r.flagged()) << r.id();
    EXPECT_TRUE(r.stored()) << r.id();
    EXPECT_TRUE(stored.count(r.id())) << r.id();
  }
  EXPECT_FALSE(std::filesystem::exists(daemon_->db()));
}

// A scheme this build has no backend for stops the start, naming the key
// and the scheme, and never the password in the URL.
TEST_F(DaemonTest, UnknownStorageSchemeStopsTheStart) {
  daemon_ = std::make_unique<DaemonProcess>(
      tmp_.path().string(),
      "[storage]\nurl = \"postgresql://anomalyd:s3cret@db.example/anomalyd\"\n");
  std::string why;
  ASSERT_FALSE(daemon_->Start(&why, std::chrono::seconds(60)));
  EXPECT_NE(why.find("storage.url"), std::string::npos) << why;
  EXPECT_NE(why.find("'postgresql'"), std::string::npos) << why;
  EXPECT_NE(why.find("sqlite"), std::string::npos) << why;
  EXPECT_EQ(why.find("s3cret"), std::string::npos) << why;
}

TEST_F(DaemonTest, RecalibrationMovesTheThresholdWithinItsBound) {
  StartDaemon(
      "[recalibration]\nevery_scores = 200\nevery_seconds = 0\nmin_interval_seconds = 0\n"
      "window = 400\n"
      "min_samples = 200\nmax_step = 0.1\nmax_drift = 0.3\n");
  const double base = FindStream(GetStatus(*control_), "default")->threshold();
  // A flood of anomalies: the threshold may rise, but by at most 30%.
  for (int k = 0; k < 20; ++k) {
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < 50; ++i) rows.push_back(AnomalousRecord(rng_));
    pb::Response resp;
    ASSERT_OK(
        score_->Call(ScoreRequest(rows, "default", "f" + std::to_string(k) + "-", true), &resp));
    for (const auto& r : resp.score().results()) EXPECT_TRUE(r.flagged());
  }
  const double now = FindStream(GetStatus(*control_), "default")->threshold();
  EXPECT_GT(now, base);
  EXPECT_LE(now, base * 1.3 + 1e-6);
  // Every new threshold is a row in SQLite.
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenDaemonStore(daemon_->db(), &store));
  std::vector<ThresholdRow> history;
  ASSERT_OK(store->ThresholdHistory("default", 100, &history));
  ASSERT_GE(history.size(), 2u);
  EXPECT_EQ(history[0].method.rfind("recalibrated-", 0), 0u) << history[0].method;
  EXPECT_GE(history[0].window, 200u);
}

TEST_F(DaemonTest, FloodGetsBusyQuicklyAndControlStillAnswers) {
  StartDaemon("[batcher]\nqueue_records = 64\nmax_batch = 16\n");
  zmq::socket_t flood(ctx_, zmq::socket_type::dealer);
  flood.set(zmq::sockopt::rcvtimeo, 10000);
  flood.connect(daemon_->score());
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 32; ++i) rows.push_back(NormalRecord(rng_));
  const int kRequests = 300;
  for (int i = 0; i < kRequests; ++i) {
    pb::Request r = ScoreRequest(rows, "default", "x", true);
    r.set_request_id(i + 1);
    const std::string b = r.SerializeAsString();
    flood.send(zmq::buffer(b), zmq::send_flags::none);
  }
  // Control answers during the flood.
  const pb::StatusResponse st = GetStatus(*control_);
  EXPECT_EQ(st.streams_size(), 1);
  int busy = 0, ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(flood.recv(m)) << "reply " << i << " missing";
    pb::Response resp;
    ASSERT_TRUE(resp.ParseFromArray(m.data(), static_cast<int>(m.size())));
    if (resp.error().code() == pb::BUSY)
      ++busy;
    else if (resp.error().code() == pb::OK && resp.score().results_size() == 32)
      ++ok;
  }
  EXPECT_GT(busy, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(busy + ok, kRequests);  // every request got an answer
  // After the flood, service is normal again.
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest(rows, "default", "after", true), &resp));
}

TEST_F(DaemonTest, WatchdogPingsWhileHealthy) {
  daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
  std::string why;
  ASSERT_TRUE(daemon_->Start(&why, std::chrono::seconds(120), {"WATCHDOG_USEC=300000"})) << why;
  for (int i = 0; i < 100 && !daemon_->Saw("WATCHDOG=1"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(daemon_->Saw("WATCHDOG=1"));
  EXPECT_TRUE(daemon_->Saw("STATUS="));
}

TEST_F(DaemonTest, AsyncDurabilityRepliesFirstAndStillStores) {
  StartDaemon("[storage]\ndurability = \"async\"\n");
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest({AnomalousRecord(rng_)}, "", "async", true), &resp));
  ASSERT_TRUE(resp.score().results(0).flagged());
  EXPECT_FALSE(resp.score().results(0).stored());  // the reply did not wait
  for (int i = 0; i < 100 && !StoredIds(daemon_->db()).count("async0"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(StoredIds(daemon_->db()).count("async0"));
}

TEST_F(DaemonTest, SighupReloadsLimits) {
  StartDaemon();
  std::vector<std::vector<float>> two = {NormalRecord(rng_), NormalRecord(rng_)};
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest(two, "", "a", true), &resp));
  std::ofstream(tmp_.file("anomalyd.toml"), std::ios::app)
      << "[limits]\nmax_records_per_request = 1\n";
  ::kill(daemon_->pid(), SIGHUP);
  Status s;
  for (int i = 0; i < 100; ++i) {
    s = score_->Call(ScoreRequest(two, "", "b", true), &resp);
    if (s.code() == pb::TOO_LARGE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s.code(), pb::TOO_LARGE);
  // A broken file on reload keeps the running config.
  std::ofstream(tmp_.file("anomalyd.toml"), std::ios::app) << "[limits\n";
  ::kill(daemon_->pid(), SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(score_->Call(ScoreRequest(two, "", "c", true), &resp).code(), pb::TOO_LARGE);
  ASSERT_OK(score_->Call(ScoreRequest({two[0]}, "", "d", true), &resp));
}

// sd_notify(3) for a reload: RELOADING=1 with MONOTONIC_USEC= (the time on
// CLOCK_MONOTONIC) in one message, then READY=1, also when the file is
// rejected (the daemon goes on serving its running config).
TEST_F(DaemonTest, ReloadTellsSystemdReloadingThenReady) {
  StartDaemon();
  // The notifications after notes[from] once `want` of them have come.
  auto wait_notes = [&](size_t from, size_t want) {
    std::vector<std::string> notes;
    for (int i = 0; i < 250; ++i) {
      notes = daemon_->Notes();
      if (notes.size() >= from + want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::vector<std::string>(notes.begin() + std::min(from, notes.size()), notes.end());
  };
  auto monotonic_us = [] {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  };
  for (const bool broken : {false, true}) {
    SCOPED_TRACE(broken ? "rejected file" : "good file");
    if (broken) std::ofstream(tmp_.file("anomalyd.toml"), std::ios::app) << "[limits\n";
    const size_t from = daemon_->Notes().size();
    const int64_t before = monotonic_us();
    ::kill(daemon_->pid(), SIGHUP);
    std::vector<std::string> notes = wait_notes(from, 2);
    const int64_t after = monotonic_us();
    // WATCHDOG=1 is off in tests (no WATCHDOG_USEC): nothing else comes.
    ASSERT_EQ(notes.size(), 2u) << daemon_->Log();
    const std::string& reloading = notes[0];
    ASSERT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << reloading;
    const int64_t stamp = std::stoll(reloading.substr(reloading.find('=', 12) + 1));
    EXPECT_GE(stamp, before);
    EXPECT_LE(stamp, after);
    EXPECT_EQ(notes[1].rfind("READY=1\nSTATUS=serving 1 stream(s)", 0), 0u) << notes[1];
    EXPECT_EQ(notes[1].find("reload failed") != std::string::npos, broken) << notes[1];
  }
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest({NormalRecord(rng_)}, "", "after", true), &resp));
}

TEST_F(DaemonTest, PrometheusMetricsOverHttp) {
  const int port = testing::FreePort();
  daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
  daemon_->set_metrics("tcp://127.0.0.1:" + std::to_string(port));
  std::string why;
  ASSERT_TRUE(daemon_->Start(&why)) << why;
  score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest({NormalRecord(rng_), AnomalousRecord(rng_)}, "", "p", true),
                         &resp));
  EXPECT_EQ(score_->Call(ScoreRequest({{1, 2}}, "", "q", true), &resp).code(), pb::WRONG_DIMENSION);
  // The latency of a request is observed just after its reply leaves: a
  // scrape right after the reply may come first, so wait for it.
  std::string m;
  for (int i = 0; i < 100; ++i) {
    m = HttpGet(port, "/metrics");
    if (m.find("anomalyd_request_latency_seconds_count 1") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(m.rfind("HTTP/1.1 200 OK", 0), 0u) << m;
  for (const char* line :
       {"anomalyd_records_scored_total{stream=\"default\"} 2",
        "anomalyd_records_flagged_total{stream=\"default\"} 1",
        "anomalyd_errors_total{code=\"WRONG_DIMENSION\"} 1",
        "anomalyd_model_version{stream=\"default\"} 1", "anomalyd_request_latency_seconds_count 1",
        "anomalyd_batch_size_records_count 1", "anomalyd_storage_healthy 1",
        "anomalyd_queue_records 0",
        // Every code from the start, not after its first error.
        "anomalyd_errors_total{code=\"STORAGE_FULL\"} 0", "anomalyd_build_info{version=\"",
        "anomalyd_score_p_value_count{stream=\"default\"} 2",
        "anomalyd_score_p_value_bucket{stream=\"default\",le=\"+Inf\"} 2",
        "anomalyd_model_created_timestamp_seconds{stream=\"default\"} ",
        "anomalyd_trainings_total{outcome=\"succeeded\"} 1",
        "anomalyd_trainings_total{outcome=\"failed\"} 0", "process_resident_memory_bytes ",
        "process_open_fds ", "process_cpu_seconds_total "}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  }
  // The anomalous record's p-value is below 0.001 (no holdout score is as
  // high), the normal one's is not.
  EXPECT_NE(m.find("anomalyd_score_p_value_bucket{stream=\"default\",le=\"0.001\"} 1"),
            std::string::npos)
      << m;
  EXPECT_EQ(HttpGet(port, "/").rfind("HTTP/1.1 404", 0), 0u);
}

// One request at a time is scored on the I/O thread (batcher.
// inline_max_records), with the same verdicts, stored rows and durable
// replies as through the scorer thread; inline_max_records = 0 turns it off.
TEST(DaemonInlineTest, LoneSmallRequestsAreScoredOnTheIoThread) {
  for (const int inline_max : {64, 0}) {
    SCOPED_TRACE(inline_max);
    testing::TempDir tmp;
    zmq::context_t ctx(1);
    std::mt19937_64 rng(11);
    const int port = testing::FreePort();
    DaemonProcess daemon(tmp.path().string(),
                         "[batcher]\ninline_max_records = " + std::to_string(inline_max) + "\n");
    daemon.set_metrics("tcp://127.0.0.1:" + std::to_string(port));
    std::string why;
    ASSERT_TRUE(daemon.Start(&why)) << why;
    Client score(ctx, daemon.score(), std::chrono::seconds(20));
    constexpr int kRequests = 20;
    for (int i = 0; i < kRequests; ++i) {
      const bool anomalous = i % 4 == 0;
      pb::Response resp;
      ASSERT_OK(score.Call(ScoreRequest({anomalous ? AnomalousRecord(rng) : NormalRecord(rng)}, "",
                                        "i" + std::to_string(i) + "-", i % 2 == 0),
                           &resp));
      const pb::ScoreResult& r = resp.score().results(0);
      EXPECT_EQ(r.id(), "i" + std::to_string(i) + "-0");
      if (anomalous) {
        EXPECT_TRUE(r.flagged()) << i;
        EXPECT_TRUE(r.stored()) << i;  // durability commit: after the commit
      }
    }
    const std::set<std::string> stored = StoredIds(daemon.db());
    for (int i = 0; i < kRequests; i += 4)
      EXPECT_TRUE(stored.count("i" + std::to_string(i) + "-0"));
    const std::string m = HttpGet(port, "/metrics");
    const std::string key = "anomalyd_requests_scored_inline_total ";
    const size_t at = m.find("\n" + key);
    ASSERT_NE(at, std::string::npos) << m;
    const long inlined = std::stol(m.substr(at + 1 + key.size()));
    if (inline_max == 0) {
      EXPECT_EQ(inlined, 0);
    } else {
      // All but a request that met the scorer thread's brief turn.
      EXPECT_GE(inlined, kRequests - 2);
    }
    EXPECT_EQ(daemon.Stop(), 0) << daemon.Log();
  }
}

TEST(DaemonConfigTest, CheckConfigReportsTheBadKey) {
  testing::TempDir tmp;
  std::ofstream(tmp.file("bad.toml")) << "[batcher]\nmax_bacth = 3\n";
  const std::string bin = std::string(ANOMALYD_BINARY_DIR) + "/daemon/anomalyd";
  const std::string cmd = bin + " --check-config --config " + tmp.file("bad.toml") + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512] = {0};
  size_t n = std::fread(buf, 1, sizeof buf - 1, p);
  const int rc = ::pclose(p);
  EXPECT_NE(WEXITSTATUS(rc), 0);
  EXPECT_NE(std::string(buf, n).find("batcher.max_bacth"), std::string::npos) << buf;
  const std::string ok = bin + " --check-config --config " + std::string(ANOMALYD_SOURCE_DIR) +
                         "/config/anomalyd.toml > /dev/null";
  EXPECT_EQ(std::system(ok.c_str()), 0);
}

}  // namespace
}  // namespace anomalyd
