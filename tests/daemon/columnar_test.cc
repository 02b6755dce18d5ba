// Columnar replies (ScoreRequest.columnar) and replies under many requests
// in flight, against the real daemon over real sockets.
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <random>

#include "clients/client.h"
#include "tests/daemon/daemon_process.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::NormalRecord;

// A dense request of `rows`, ids "c0", "c1", ...
pb::Request DenseRequest(const std::vector<std::vector<float>>& rows,
                         bool columnar, bool contributions) {
  pb::Request req;
  pb::ScoreRequest* s = req.mutable_score();
  s->set_columnar(columnar);
  s->set_contributions(contributions);
  pb::DenseBatch* d = s->mutable_dense();
  d->set_dim(static_cast<uint32_t>(rows.front().size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    d->mutable_values()->Add(rows[i].begin(), rows[i].end());
    d->add_ids("c" + std::to_string(i));
  }
  return req;
}

class ColumnarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string());
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why)) << why;
    score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
  }
  void TearDown() override {
    score_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->Log();
    }
  }

  testing::TempDir tmp_;
  zmq::context_t ctx_{1};
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> score_;
  std::mt19937_64 rng_{11};
};

// The same records scored both ways give the same verdicts, column by
// column; flagged anomalies are stored (durability "commit").
TEST_F(ColumnarTest, ColumnsMatchPerRecordResults) {
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 60; ++i) rows.push_back(NormalRecord(rng_));
  for (int i = 0; i < 4; ++i) rows.push_back(AnomalousRecord(rng_));
  pb::Response per_record, columnar;
  ASSERT_OK(score_->Call(DenseRequest(rows, false, true), &per_record));
  ASSERT_OK(score_->Call(DenseRequest(rows, true, true), &columnar));
  ASSERT_FALSE(columnar.has_error()) << columnar.error().message();
  EXPECT_EQ(columnar.score().results_size(), 0);
  const pb::ScoreColumns& c = columnar.score().columns();
  const int n = static_cast<int>(rows.size());
  ASSERT_EQ(c.score_size(), n);
  ASSERT_EQ(c.reconstruction_size(), n);
  ASSERT_EQ(c.kl_size(), n);
  ASSERT_EQ(c.p_value_size(), n);
  ASSERT_EQ(c.flagged_size(), n);
  ASSERT_EQ(c.stored_size(), n);
  ASSERT_EQ(c.threshold_size(), n);
  ASSERT_EQ(c.model_version_size(), n);
  ASSERT_EQ(c.contributions_size(), n * 4);
  for (int i = 0; i < n; ++i) {
    const pb::ScoreResult& r = per_record.score().results(i);
    EXPECT_EQ(c.score(i), r.score()) << i;
    EXPECT_EQ(c.reconstruction(i), r.reconstruction()) << i;
    EXPECT_EQ(c.kl(i), r.kl()) << i;
    EXPECT_EQ(c.p_value(i), r.p_value()) << i;
    EXPECT_EQ(c.flagged(i), c.score(i) > c.threshold(i)) << i;
    EXPECT_EQ(c.stored(i), c.flagged(i)) << i;
    EXPECT_EQ(c.model_version(i), 1u);
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(c.contributions(i * 4 + j), r.contributions(j)) << i << "," << j;
    }
  }
  for (int i = 60; i < n; ++i) EXPECT_TRUE(c.flagged(i)) << i;
}

// Thousands of requests kept in flight on one connection all get their
// replies: ZeroMQ's default queue bound (1000 messages, router_mandatory
// off) used to drop about (in flight - 500) of them without a word.
TEST_F(ColumnarTest, EveryReplyArrivesWithThousandsInFlight) {
  zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 30000);
  dealer.set(zmq::sockopt::sndhwm, 0);
  dealer.connect(daemon_->score());
  constexpr int kInFlight = 2000, kRequests = 8000;
  int sent = 0;
  auto send_one = [&] {
    pb::Request req = DenseRequest({NormalRecord(rng_)}, sent % 2 == 0, false);
    req.set_request_id(static_cast<uint64_t>(++sent));
    const std::string bytes = req.SerializeAsString();
    dealer.send(zmq::buffer(std::string()), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(bytes), zmq::send_flags::none);
  };
  while (sent < kInFlight) send_one();
  int replies = 0;
  for (; replies < kRequests; ++replies) {
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(dealer, std::back_inserter(frames))) break;
    pb::Response resp;
    ASSERT_TRUE(resp.ParseFromArray(frames.back().data(),
                                    static_cast<int>(frames.back().size())));
    ASSERT_FALSE(resp.has_error()) << resp.error().message();
    if (sent < kRequests) send_one();
  }
  EXPECT_EQ(replies, kRequests);
}

}  // namespace
}  // namespace anomalyd
