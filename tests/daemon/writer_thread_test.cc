// Tests of the writer thread (daemon/writer_thread.cc) over an in-memory
// store with injected faults (tests/storage/memory_store.h).
//
// The Writer sends replies and alerts through an Outbox, an inproc PUSH
// socket of the context it is given; the test binds the PULL end at
// kOutboxAddress on its own context, as the I/O thread does, and reads the
// frames the daemon would forward (so the framing is tested too).
#include "daemon/writer_thread.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "tests/storage/memory_store.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::MemoryStore;
using namespace std::chrono_literals;

// A latch a test opens once: Wait blocks until Open.
class Gate {
 public:
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return open_; });
  }
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, d, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// One scored score-request as the scorer hands it over: `records` records
// answered in one reply, of which the first `flagged` are anomalies.
struct Scored {
  std::shared_ptr<PendingReply> reply;
  ScoredBatch batch;
};

Scored MakeScored(const std::string& name, int records, int flagged) {
  Scored s;
  s.reply = std::make_shared<PendingReply>();
  s.reply->origin.endpoint = Endpoint::kScore;
  s.reply->origin.envelope = {"peer-" + name};
  s.reply->parts_left = 1;
  s.batch.records = static_cast<uint64_t>(records);
  for (int i = 0; i < records; ++i) {
    pb::ScoreResult* r = s.reply->response.mutable_score()->add_results();
    r->set_id(name + "/" + std::to_string(i));
    r->set_flagged(i < flagged);
  }
  for (int i = 0; i < flagged; ++i) {
    AnomalyRow a;
    a.record_id = name + "/" + std::to_string(i);
    a.stream = "s";
    a.score = 10 + i;
    a.threshold = 5;
    a.model_version = 1;
    a.features = {1, 2};
    s.batch.anomalies.push_back(a);
    s.batch.anomaly_results.emplace_back(s.reply, i);
  }
  s.batch.completions = {s.reply};
  return s;
}

// What came out of the writer's Outbox.
struct Sent {
  bool alert = false;
  std::string peer;       // replies: the routing frame
  pb::Response response;  // replies
  pb::Alert alert_msg;    // alerts
};

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    outbox_.set(zmq::sockopt::linger, 0);
    outbox_.bind(kOutboxAddress);
    StartWriter(WriterOptions());
  }
  void TearDown() override {
    if (writer_) writer_->Stop();
  }

  void StartWriter(const WriterOptions& options) {
    auto owned = std::make_unique<MemoryStore>();
    store_ = owned.get();
    ModelRow m;
    m.stream = "s";
    m.version = 1;
    m.bundle_path = "bundles/s/v1";
    ASSERT_OK(store_->RegisterModel(m));
    writer_ = std::make_unique<Writer>(ctx_, std::move(owned), options);
    writer_->Start();
  }

  // The next message of the Outbox; false when none comes within `wait`.
  bool Receive(Sent* out, std::chrono::milliseconds wait = 10s) {
    zmq::pollitem_t item{outbox_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) == 0) return false;
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(outbox_, std::back_inserter(frames))) return false;
    EXPECT_GE(frames.size(), 3u);
    if (frames.size() < 3) return false;
    const std::string tag = frames[0].to_string();
    *out = Sent();
    if (tag == std::string(1, kAlertTag)) {
      out->alert = true;
      EXPECT_TRUE(out->alert_msg.ParseFromString(frames[2].to_string()));
      EXPECT_EQ(frames[1].to_string(), out->alert_msg.stream());
    } else {
      EXPECT_EQ(tag, std::string(1, static_cast<char>(Endpoint::kScore)));
      EXPECT_EQ(frames.size(), 3u);
      out->peer = frames[1].to_string();
      EXPECT_TRUE(out->response.ParseFromString(frames[2].to_string()));
    }
    return true;
  }

  // The next reply, skipping alerts (counted in *alerts when given).
  bool ReceiveReply(Sent* out, int* alerts = nullptr,
                    std::chrono::milliseconds wait = 10s) {
    for (;;) {
      if (!Receive(out, wait)) return false;
      if (!out->alert) return true;
      if (alerts != nullptr) ++*alerts;
    }
  }

  // Returns once everything posted and submitted before has been done.
  void Drain() {
    std::promise<void> done;
    writer_->Post([&done](Store&, Outbox&) { done.set_value(); });
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }

  zmq::context_t ctx_{1};
  zmq::socket_t outbox_{ctx_, zmq::socket_type::pull};
  MemoryStore* store_ = nullptr;  // owned by writer_
  std::unique_ptr<Writer> writer_;
};

TEST_F(WriterTest, BatchesAreCommittedInSubmissionOrder) {
  constexpr int kBatches = 50;
  std::vector<std::string> expected;
  for (int b = 0; b < kBatches; ++b) {
    const std::string name = "b" + std::to_string(b);
    const int flagged = 1 + b % 4;
    for (int i = 0; i < flagged; ++i)
      expected.push_back(name + "/" + std::to_string(i));
    writer_->Submit(MakeScored(name, /*records=*/8, flagged).batch);
  }
  // Every reply comes back, with its flagged records stored.
  std::set<std::string> peers;
  int alerts = 0;
  for (int b = 0; b < kBatches; ++b) {
    Sent reply;
    ASSERT_TRUE(ReceiveReply(&reply, &alerts)) << "reply " << b;
    peers.insert(reply.peer);
    const pb::ScoreResponse& score = reply.response.score();
    ASSERT_EQ(score.results_size(), 8);
    for (const pb::ScoreResult& r : score.results()) {
      EXPECT_EQ(r.stored(), r.flagged()) << r.id();
    }
  }
  EXPECT_EQ(peers.size(), static_cast<size_t>(kBatches));
  Drain();
  Sent rest;
  while (Receive(&rest, 200ms)) alerts += rest.alert ? 1 : 0;
  EXPECT_EQ(alerts, static_cast<int>(expected.size()));

  const std::vector<AnomalyRow> rows = store_->anomalies();
  ASSERT_EQ(rows.size(), expected.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].record_id, expected[i]) << i;
    if (i > 0) {
      EXPECT_GT(rows[i].id, rows[i - 1].id);
    }
  }
  size_t committed = 0;
  for (size_t n : store_->commits()) committed += n;
  EXPECT_EQ(committed, expected.size());
  EXPECT_TRUE(writer_->healthy());
  EXPECT_EQ(writer_->unstored(), 0u);
}

TEST_F(WriterTest, ReplyLeavesOnlyAfterItsCommit) {
  Gate entered, release;
  store_->SetBeforeCommit([&](const std::vector<AnomalyRow>&) {
    entered.Open();
    release.Wait();
  });
  Scored s = MakeScored("held", /*records=*/4, /*flagged=*/2);
  writer_->Submit(std::move(s.batch));
  ASSERT_TRUE(entered.WaitFor(10s));
  // Mid-commit: neither the reply nor the alerts have left.
  Sent early;
  EXPECT_FALSE(Receive(&early, 300ms)) << "a message left before the commit";
  EXPECT_TRUE(store_->anomalies().empty());
  release.Open();
  Sent reply;
  int alerts = 0;
  ASSERT_TRUE(ReceiveReply(&reply, &alerts));
  // Whoever gets the reply finds the records committed.
  EXPECT_EQ(store_->anomalies().size(), 2u);
  EXPECT_EQ(alerts, 2);  // alerts go out after the commit, before the reply
  EXPECT_EQ(reply.peer, "peer-held");
  EXPECT_TRUE(reply.response.score().results(0).stored());
  EXPECT_TRUE(reply.response.score().results(1).stored());
  EXPECT_FALSE(reply.response.score().results(2).stored());
}

TEST_F(WriterTest, FailedCommitIsNotStoredDegradesAndRecovers) {
  store_->FailNext(MemoryStore::Op::kInsertAnomalies,
                   Status(pb::STORAGE_FULL, "injected: disk full"));
  writer_->Submit(MakeScored("fails", 4, 2).batch);
  Sent reply;
  int alerts = 0;
  ASSERT_TRUE(ReceiveReply(&reply, &alerts));
  // Scoring goes on: the reply leaves, saying the anomalies are not stored;
  // subscribers still hear of them.
  EXPECT_TRUE(reply.response.score().results(0).flagged());
  EXPECT_FALSE(reply.response.score().results(0).stored());
  EXPECT_FALSE(reply.response.score().results(1).stored());
  EXPECT_EQ(alerts, 2);
  EXPECT_FALSE(writer_->healthy());
  EXPECT_NE(writer_->last_error().find("injected: disk full"),
            std::string::npos)
      << writer_->last_error();
  EXPECT_EQ(writer_->unstored(), 2u);
  EXPECT_TRUE(store_->anomalies().empty());

  // The next commit succeeds: stored again, and healthy.
  writer_->Submit(MakeScored("works", 4, 1).batch);
  ASSERT_TRUE(ReceiveReply(&reply));
  EXPECT_EQ(reply.peer, "peer-works");
  EXPECT_TRUE(reply.response.score().results(0).stored());
  EXPECT_TRUE(writer_->healthy());
  EXPECT_EQ(writer_->unstored(), 2u);  // counts since start
  ASSERT_EQ(store_->anomalies().size(), 1u);
  EXPECT_EQ(store_->anomalies()[0].record_id, "works/0");
}

TEST_F(WriterTest, DamagedStorageStaysAFaultUntilRestart) {
  store_->SetCheckFile(Status::Corrupt("injected: file removed"));
  writer_->Submit(MakeScored("a", 2, 1).batch);
  Sent reply;
  ASSERT_TRUE(ReceiveReply(&reply));
  // The commit "succeeded" into storage that is no longer the database.
  EXPECT_FALSE(reply.response.score().results(0).stored());
  EXPECT_FALSE(writer_->healthy());
  EXPECT_NE(writer_->last_error().find("file removed"), std::string::npos);
  // Even once the check passes again, nothing is reported stored and
  // nothing more is written.
  store_->SetCheckFile(Status::OK());
  writer_->Submit(MakeScored("b", 2, 1).batch);
  ASSERT_TRUE(ReceiveReply(&reply));
  EXPECT_FALSE(reply.response.score().results(0).stored());
  EXPECT_FALSE(writer_->healthy());
  EXPECT_EQ(writer_->unstored(), 2u);
  EXPECT_EQ(store_->commits().size(), 1u);
}

TEST_F(WriterTest, ThresholdsAreStoredBeforeTheReply) {
  Scored s = MakeScored("t", 2, 0);
  ThresholdRow t;
  t.stream = "s";
  t.model_version = 1;
  t.method = "recalibrated-pot";
  t.value = 7.5;
  s.batch.thresholds = {t};
  writer_->Submit(std::move(s.batch));
  Sent reply;
  ASSERT_TRUE(ReceiveReply(&reply));
  EXPECT_TRUE(writer_->thresholds_settled());
  ThresholdRow latest;
  ASSERT_OK(store_->LatestThreshold("s", &latest));
  EXPECT_EQ(latest.value, 7.5);
  EXPECT_EQ(latest.method, "recalibrated-pot");

  // A failed threshold write degrades the storage like any other.
  store_->FailNext(MemoryStore::Op::kAppendThreshold,
                   Status(pb::STORAGE_LOCKED, "injected: locked"));
  s = MakeScored("t2", 1, 0);
  s.batch.thresholds = {t};
  writer_->Submit(std::move(s.batch));
  ASSERT_TRUE(ReceiveReply(&reply));
  EXPECT_TRUE(writer_->thresholds_settled());
  EXPECT_FALSE(writer_->healthy());
  EXPECT_EQ(store_->thresholds().size(), 1u);
}

TEST_F(WriterTest, ReservoirStartsAfreshWhenTheDimensionChanges) {
  Scored s = MakeScored("r1", 1, 0);
  s.batch.samples.push_back({"s", 2, {1, 2, 3, 4}});
  writer_->Submit(std::move(s.batch));
  s = MakeScored("r2", 1, 0);
  s.batch.samples.push_back({"s", 3, {1, 2, 3}});
  writer_->Submit(std::move(s.batch));
  Drain();
  Baseline b;
  ASSERT_OK(store_->LoadReservoir("s", &b));
  EXPECT_EQ(b.dim, 3u);
  EXPECT_EQ(b.rows(), 1u);
  EXPECT_EQ(store_->calls(MemoryStore::Op::kClearReservoir), 1);
  EXPECT_TRUE(writer_->healthy());  // a new dimension is no fault
}

TEST_F(WriterTest, TasksRunInOrderOnTheWriterThread) {
  constexpr int kTasks = 100;
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::vector<Store*> stores;
  for (int i = 0; i < kTasks; ++i) {
    writer_->Post([&, i](Store& store, Outbox&) {
      std::lock_guard<std::mutex> l(mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      stores.push_back(&store);
    });
    // Batches between tasks do not reorder the tasks.
    if (i % 10 == 0)
      writer_->Submit(MakeScored("x" + std::to_string(i), 1, 1).batch);
  }
  Drain();
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) {
    EXPECT_EQ(order[i], i);
    EXPECT_EQ(threads[i], threads[0]);
    EXPECT_EQ(stores[i], store_);  // the writer's own store
  }
  EXPECT_NE(threads[0], std::this_thread::get_id());
}

TEST_F(WriterTest, TasksAnswerThroughTheWritersOutbox) {
  writer_->Post([](Store&, Outbox& outbox) {
    Origin origin;
    origin.endpoint = Endpoint::kScore;
    origin.envelope = {"peer-task"};
    pb::Response r;
    r.set_request_id(42);
    outbox.Reply(origin, r.SerializeAsString());
  });
  Sent reply;
  ASSERT_TRUE(ReceiveReply(&reply));
  EXPECT_EQ(reply.peer, "peer-task");
  EXPECT_EQ(reply.response.request_id(), 42u);
}

TEST_F(WriterTest, SubmitBlocksBeyondItsBound) {
  writer_->Stop();
  WriterOptions o;
  o.max_pending_records = 10;
  StartWriter(o);
  Gate entered, release;
  std::atomic<int> held{1};  // hold the first commit only
  store_->SetBeforeCommit([&](const std::vector<AnomalyRow>&) {
    if (held.fetch_sub(1) != 1) return;
    entered.Open();
    release.Wait();
  });
  // An empty writer takes any batch, even one above the bound: it holds
  // 12 records until that commit ends.
  writer_->Submit(MakeScored("big", 12, 1).batch);
  ASSERT_TRUE(entered.WaitFor(10s));
  EXPECT_FALSE(writer_->HasRoom(1));
  // Room comes back when the commit ends; a Submit meanwhile waits.
  std::atomic<bool> returned{false};
  std::thread submitter([&] {
    writer_->Submit(MakeScored("waits", 5, 1).batch);
    returned = true;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(returned.load()) << "Submit did not wait for room";
  release.Open();
  submitter.join();
  EXPECT_TRUE(returned.load());
  Sent reply;
  ASSERT_TRUE(ReceiveReply(&reply));
  ASSERT_TRUE(ReceiveReply(&reply));
  Drain();
  EXPECT_TRUE(writer_->HasRoom(11));  // empty again: it takes any batch
  EXPECT_EQ(store_->anomalies().size(), 2u);
}

TEST_F(WriterTest, HasRoomCountsRecordsHeld) {
  writer_->Stop();
  WriterOptions o;
  o.max_pending_records = 10;
  StartWriter(o);
  Gate entered, release;
  store_->SetBeforeCommit([&](const std::vector<AnomalyRow>&) {
    entered.Open();
    release.Wait();
  });
  writer_->Submit(MakeScored("six", 6, 1).batch);
  ASSERT_TRUE(entered.WaitFor(10s));
  EXPECT_TRUE(writer_->HasRoom(4));
  EXPECT_FALSE(writer_->HasRoom(5));
  release.Open();
  writer_->Stop();  // before the gates go out of scope
}

}  // namespace
}  // namespace anomalyd
