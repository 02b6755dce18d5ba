// Integration tests: the real anomalyd binary, real ZeroMQ sockets, the real
// SQLite file. Each test starts its own daemon in a temp dir.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <set>

#include "clients/client.h"
#include "storage/store.h"
#include "tests/daemon/daemon_process.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::NormalRecord;

pb::Request ScoreRequest(const std::vector<std::vector<float>>& rows,
                         const std::string& stream, const std::string& id_prefix,
                         bool dense) {
  pb::Request req;
  pb::ScoreRequest* s = req.mutable_score();
  if (dense) {
    pb::DenseBatch* b = s->mutable_dense();
    b->set_stream(stream);
    b->set_dim(static_cast<uint32_t>(rows[0].size()));
    for (size_t i = 0; i < rows.size(); ++i) {
      b->mutable_values()->Add(rows[i].begin(), rows[i].end());
      b->add_ids(id_prefix + std::to_string(i));
    }
  } else {
    for (size_t i = 0; i < rows.size(); ++i) {
      pb::Record* r = s->add_records();
      r->set_id(id_prefix + std::to_string(i));
      r->set_stream(stream);
      r->mutable_features()->Add(rows[i].begin(), rows[i].end());
      (*r->mutable_labels())["host"] = "web-" + std::to_string(i);
    }
  }
  return req;
}

// Every record id stored in the daemon's SQLite file.
std::set<std::string> StoredIds(const std::string& db) {
  StoreOptions o;
  o.read_only = true;
  std::unique_ptr<Store> store;
  std::set<std::string> ids;
  if (!Store::Open(o, db, &store).ok()) return ids;
  AnomalyQuery q;
  q.limit = kMaxQueryLimit;
  for (;;) {
    AnomalyPage page;
    if (!store->QueryAnomalies(q, &page).ok()) break;
    for (const auto& r : page.rows) ids.insert(r.record_id);
    if (page.next_cursor.empty()) break;
    q.cursor = page.next_cursor;
  }
  return ids;
}

pb::StatusResponse GetStatus(Client& control) {
  pb::Request req;
  req.mutable_status();
  pb::Response resp;
  EXPECT_OK(control.Call(req, &resp));
  return resp.status();
}

const pb::StreamStatus* FindStream(const pb::StatusResponse& s, const std::string& name) {
  for (const auto& st : s.streams()) {
    if (st.stream() == name) return &st;
  }
  return nullptr;
}

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

TEST_F(DaemonTest, BadRequestsGetTypedErrorsAndServiceGoesOn) {
  StartDaemon("[limits]\nmax_message_bytes = 65536\nmax_records_per_request = 100\n");
  const std::vector<float> ok = NormalRecord(rng_);
  auto valid = [&] { return ScoreRequest({ok}, "default", "v", false); };
  auto with = [&](std::function<void(pb::Request*)> f) {
    pb::Request r = valid();
    f(&r);
    return r;
  };
  struct Case {
    const char* what;
    pb::Request request;
    ErrorCode code;
  } cases[] = {
      {"unknown request", pb::Request(), pb::UNKNOWN_REQUEST},
      {"empty batch", with([](pb::Request* r) { r->mutable_score()->clear_records(); }), pb::EMPTY_BATCH},
      {"wrong dimension", with([](pb::Request* r) { r->mutable_score()->mutable_records(0)->add_features(1); }), pb::WRONG_DIMENSION},
      {"NaN", with([](pb::Request* r) { r->mutable_score()->mutable_records(0)->set_features(2, NAN); }), pb::NON_FINITE},
      {"+Inf", with([](pb::Request* r) { r->mutable_score()->mutable_records(0)->set_features(0, INFINITY); }), pb::NON_FINITE},
      {"-Inf", with([](pb::Request* r) { r->mutable_score()->mutable_records(0)->set_features(0, -INFINITY); }), pb::NON_FINITE},
      {"unknown stream", with([](pb::Request* r) { r->mutable_score()->mutable_records(0)->set_stream("nope"); }), pb::UNKNOWN_STREAM},
      {"duplicate ids", with([&](pb::Request* r) { *r->mutable_score()->add_records() = r->score().records(0); }), pb::DUPLICATE_ID},
      {"both forms", with([](pb::Request* r) { r->mutable_score()->mutable_dense()->set_dim(4); }), pb::INVALID_ARGUMENT},
      {"dense not N x d", with([&](pb::Request* r) {
         r->mutable_score()->clear_records();
         auto* d = r->mutable_score()->mutable_dense();
         d->set_dim(4);
         for (int i = 0; i < 7; ++i) d->add_values(1);
       }), pb::INVALID_ARGUMENT},
      {"dense dim 0", with([](pb::Request* r) {
         r->mutable_score()->clear_records();
         r->mutable_score()->mutable_dense()->add_values(1);
       }), pb::INVALID_ARGUMENT},
      {"too many records", with([&](pb::Request* r) {
         for (int i = 0; i < 100; ++i) {
           pb::Record* x = r->mutable_score()->add_records();
           *x = r->score().records(0);
           x->set_id("x" + std::to_string(i));
         }
       }), pb::TOO_LARGE},
      {"query limit absurd", with([](pb::Request* r) { r->mutable_query()->set_limit(1u << 30); }), pb::INVALID_ARGUMENT},
      {"query cursor garbage", with([](pb::Request* r) { r->mutable_query()->set_cursor("%%%"); }), pb::INVALID_ARGUMENT},
      {"query since after until", with([](pb::Request* r) {
         r->mutable_query()->set_since_us(100);
         r->mutable_query()->set_until_us(50);
       }), pb::INVALID_ARGUMENT},
  };
  pb::Response resp;
  for (Case& c : cases) {
    Status s = score_->Call(c.request, &resp);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.ToString();
    ASSERT_OK(score_->Call(valid(), &resp));  // and the daemon still serves
    EXPECT_EQ(resp.score().results_size(), 1) << c.what;
  }
  // Raw frames: garbage bytes, a truncated message, extra frames, too big.
  zmq::socket_t raw(ctx_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  raw.connect(daemon_->score());
  const std::string good = valid().SerializeAsString();
  struct Raw {
    const char* what;
    std::vector<std::string> frames;
    ErrorCode code;
  } raws[] = {
      {"garbage", {"\xff\xfe\x01 not protobuf"}, pb::MALFORMED},
      {"truncated", {good.substr(0, good.size() - 3)}, pb::MALFORMED},
      {"empty frame", {""}, pb::UNKNOWN_REQUEST},
      {"extra frames", {good, "extra"}, pb::MALFORMED},
      {"oversized", {std::string(70000, 'x')}, pb::TOO_LARGE},
  };
  for (const Raw& r : raws) {
    for (size_t i = 0; i < r.frames.size(); ++i) {
      raw.send(zmq::buffer(r.frames[i]),
               i + 1 < r.frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t reply;
    ASSERT_TRUE(raw.recv(reply)) << r.what;
    pb::Response e;
    ASSERT_TRUE(e.ParseFromArray(reply.data(), static_cast<int>(reply.size())));
    EXPECT_EQ(e.error().code(), r.code) << r.what << ": " << e.error().message();
    ASSERT_OK(score_->Call(valid(), &resp));
  }
  // Control: bad retrain sources, rollback to nothing, wrong endpoint.
  pb::Request rt;
  rt.mutable_retrain()->set_csv_path(tmp_.file("missing.csv"));
  EXPECT_EQ(control_->Call(rt, &resp).code(), pb::NOT_FOUND);
  std::ofstream(tmp_.file("bad.csv")) << "f0,f1\n1,abc\n";
  rt.mutable_retrain()->set_csv_path(tmp_.file("bad.csv"));
  rt.mutable_retrain()->set_stream("bad");
  ASSERT_OK(control_->Call(rt, &resp));  // accepted; fails while training
  pb::Request rb;
  rb.mutable_rollback()->set_to_version(42);
  EXPECT_EQ(control_->Call(rb, &resp).code(), pb::NOT_FOUND);
  EXPECT_EQ(control_->Call(valid(), &resp).code(), pb::UNKNOWN_REQUEST);
  for (int i = 0; i < 200; ++i) {
    const pb::StatusResponse status = GetStatus(*control_);
    const pb::StreamStatus* b = FindStream(status, "bad");
    if (b && b->training().state() == pb::FAILED) {
      EXPECT_NE(b->training().error().find("bad.csv:2"), std::string::npos) << b->training().error();
      break;
    }
    ASSERT_LT(i, 199) << "training of a malformed CSV did not fail";
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_OK(score_->Call(valid(), &resp));
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
        for (int i = 0; i < 8; ++i) rows.push_back(i % 4 == 0 ? AnomalousRecord(rng) : NormalRecord(rng));
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

TEST_F(DaemonTest, RecalibrationMovesTheThresholdWithinItsBound) {
  StartDaemon(
      "[recalibration]\nevery_scores = 200\nevery_seconds = 0\nwindow = 400\n"
      "min_samples = 200\nmax_step = 0.1\nmax_drift = 0.3\n");
  const double base = FindStream(GetStatus(*control_), "default")->threshold();
  // A flood of anomalies: the threshold may rise, but by at most 30%.
  for (int k = 0; k < 20; ++k) {
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < 50; ++i) rows.push_back(AnomalousRecord(rng_));
    pb::Response resp;
    ASSERT_OK(score_->Call(ScoreRequest(rows, "default", "f" + std::to_string(k) + "-", true), &resp));
    for (const auto& r : resp.score().results()) EXPECT_TRUE(r.flagged());
  }
  const double now = FindStream(GetStatus(*control_), "default")->threshold();
  EXPECT_GT(now, base);
  EXPECT_LE(now, base * 1.3 + 1e-6);
  // Every new threshold is a row in SQLite.
  StoreOptions o;
  o.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(Store::Open(o, daemon_->db(), &store));
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
    if (resp.error().code() == pb::BUSY) ++busy;
    else if (resp.error().code() == pb::OK && resp.score().results_size() == 32) ++ok;
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

// A TCP port that was free a moment ago (the kernel's next ephemeral one).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// GET path over plain TCP; the whole response.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};  // never hang the suite on a daemon that does not close
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST_F(DaemonTest, PrometheusMetricsOverHttp) {
  const int port = FreePort();
  daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
  daemon_->set_metrics("tcp://127.0.0.1:" + std::to_string(port));
  std::string why;
  ASSERT_TRUE(daemon_->Start(&why)) << why;
  score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
  pb::Response resp;
  ASSERT_OK(score_->Call(ScoreRequest({NormalRecord(rng_), AnomalousRecord(rng_)}, "", "p", true), &resp));
  EXPECT_EQ(score_->Call(ScoreRequest({{1, 2}}, "", "q", true), &resp).code(), pb::WRONG_DIMENSION);
  const std::string m = HttpGet(port, "/metrics");
  EXPECT_EQ(m.rfind("HTTP/1.1 200 OK", 0), 0u) << m;
  for (const char* line : {"anomalyd_records_scored_total{stream=\"default\"} 2",
                           "anomalyd_records_flagged_total{stream=\"default\"} 1",
                           "anomalyd_errors_total{code=\"WRONG_DIMENSION\"} 1",
                           "anomalyd_model_version{stream=\"default\"} 1",
                           "anomalyd_request_latency_seconds_count 1",
                           "anomalyd_batch_size_count 1", "anomalyd_storage_healthy 1",
                           "anomalyd_queue_records 0"}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
  }
  EXPECT_EQ(HttpGet(port, "/").rfind("HTTP/1.1 404", 0), 0u);
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
