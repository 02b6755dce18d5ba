// The reply encoder: both reply shapes from one set of verdicts, failures,
// stored marks, and what SendPending sends.
#include "daemon/reply_encoder.h"

#include "tests/test_util.h"

namespace anomalyd {
namespace {

// Verdicts of 3 records of dimension 2; the middle one flagged.
StreamVerdicts Verdicts() {
  StreamVerdicts v;
  v.stream = "s";
  v.dim = 2;
  v.model_version = 7;
  v.threshold = 1.5f;
  v.rows = 3;
  v.out.reconstruction = {0.1f, 2.0f, 0.3f};
  v.out.kl = {0.01f, 0.02f, 0.03f};
  v.out.score = {0.11f, 2.02f, 0.33f};
  v.out.p_value = {0.9, 0.001, 0.5};
  v.out.contributions = {1, 2, 3, 4, 5, 6};
  v.contributions = true;
  v.flagged = {0, 1, 0};
  v.flagged_count = 1;
  return v;
}

// A part with rows [first, first + rows) of Verdicts() at request positions
// `index`.
ScorePart Part(std::vector<uint32_t> index) {
  ScorePart p;
  p.stream = "s";
  p.dim = 2;
  p.index = std::move(index);
  for (uint32_t i : p.index) p.ids.push_back("id" + std::to_string(i));
  p.event_times_us.assign(p.index.size(), 0);
  p.labels.resize(p.index.size());
  p.values.assign(p.index.size() * 2, 0.f);
  return p;
}

class RecordingReplies : public ReplySink {
 public:
  void Reply(const Origin& origin, const std::string& payload) override {
    sent.emplace_back(origin.endpoint, payload);
  }
  std::vector<std::pair<Endpoint, std::string>> sent;
};

TEST(ReplyEncoderTest, PerRecordAndColumnarCarryTheSameVerdicts) {
  struct Case {
    bool columnar;
    bool contributions;
  };
  for (const Case c : {Case{false, false}, Case{false, true}, Case{true, false},
                       Case{true, true}}) {
    SCOPED_TRACE(std::to_string(c.columnar) + "/" +
                 std::to_string(c.contributions));
    PendingReply reply;
    reply.columnar = c.columnar;
    reply.contributions = c.contributions;
    // Request of 3 records: positions 2, 0 in one part (rows 0-1), 1 in
    // another (row 2).
    std::vector<ScorePart> parts = {Part({2, 0}), Part({1})};
    ASSERT_OK(PresizeReply(parts, &reply));
    const StreamVerdicts v = Verdicts();
    EncodeVerdicts(parts[0], v, 0, &reply);
    EncodeVerdicts(parts[1], v, 2, &reply);
    MarkStored(0, &reply);  // position 0 is row 1, the flagged one
    const pb::ScoreResponse& s = reply.response.score();
    const int row_of[3] = {1, 2, 0};  // request position -> verdict row
    for (int i = 0; i < 3; ++i) {
      const int r = row_of[i];
      if (c.columnar) {
        const pb::ScoreColumns& col = s.columns();
        ASSERT_EQ(col.score_size(), 3);
        EXPECT_EQ(col.score(i), v.out.score[r]);
        EXPECT_EQ(col.reconstruction(i), v.out.reconstruction[r]);
        EXPECT_EQ(col.kl(i), v.out.kl[r]);
        EXPECT_EQ(col.p_value(i), v.out.p_value[r]);
        EXPECT_EQ(col.flagged(i), r == 1);
        EXPECT_EQ(col.stored(i), i == 0);
        EXPECT_EQ(col.threshold(i), 1.5f);
        EXPECT_EQ(col.model_version(i), 7u);
        ASSERT_EQ(col.contributions_size(), c.contributions ? 6 : 0);
        if (c.contributions) {
          EXPECT_EQ(col.contributions(2 * i), v.out.contributions[2 * r]);
          EXPECT_EQ(col.contributions(2 * i + 1),
                    v.out.contributions[2 * r + 1]);
        }
      } else {
        ASSERT_EQ(s.results_size(), 3);
        const pb::ScoreResult& res = s.results(i);
        EXPECT_EQ(res.index(), static_cast<uint32_t>(i));
        EXPECT_EQ(res.id(), "id" + std::to_string(i));
        EXPECT_EQ(res.score(), v.out.score[r]);
        EXPECT_EQ(res.reconstruction(), v.out.reconstruction[r]);
        EXPECT_EQ(res.kl(), v.out.kl[r]);
        EXPECT_EQ(res.p_value(), v.out.p_value[r]);
        EXPECT_EQ(res.flagged(), r == 1);
        EXPECT_EQ(res.stored(), i == 0);
        EXPECT_EQ(res.threshold(), 1.5f);
        EXPECT_EQ(res.model_version(), 7u);
        ASSERT_EQ(res.contributions_size(), c.contributions ? 2 : 0);
        if (c.contributions) {
          EXPECT_EQ(res.contributions(1), v.out.contributions[2 * r + 1]);
        }
      }
    }
  }
}

TEST(ReplyEncoderTest, ColumnarContributionsNeedOneDimension) {
  PendingReply reply;
  reply.columnar = true;
  reply.contributions = true;
  std::vector<ScorePart> parts = {Part({0}), Part({1})};
  parts[1].dim = 3;
  const Status s = PresizeReply(parts, &reply);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
  reply.contributions = false;
  EXPECT_OK(PresizeReply(parts, &reply));
}

TEST(ReplyEncoderTest, FailureReplacesTheVerdicts) {
  PendingReply reply;
  reply.request_id = 9;
  reply.response.set_request_id(9);
  std::vector<ScorePart> parts = {Part({0})};
  ASSERT_OK(PresizeReply(parts, &reply));
  EncodeFailure(Status(pb::WRONG_DIMENSION, "retrained"), &reply);
  RecordingReplies out;
  SendPending(out, reply);
  ASSERT_EQ(out.sent.size(), 1u);
  pb::Response r;
  ASSERT_TRUE(r.ParseFromString(out.sent[0].second));
  EXPECT_EQ(r.request_id(), 9u);
  EXPECT_EQ(r.error().code(), pb::WRONG_DIMENSION);
  EXPECT_EQ(r.error().message(), "retrained");
  EXPECT_EQ(r.error().record_index(), -1);
  EXPECT_FALSE(r.has_score());
}

TEST(ReplyEncoderTest, SendPendingAnswersNobodyForIngest) {
  struct Case {
    Endpoint endpoint;
    size_t sent;
  };
  for (const Case c : {Case{Endpoint::kScore, 1}, Case{Endpoint::kControl, 1},
                       Case{Endpoint::kIngest, 0}}) {
    PendingReply reply;
    reply.origin.endpoint = c.endpoint;
    RecordingReplies out;
    SendPending(out, reply);
    EXPECT_EQ(out.sent.size(), c.sent);
  }
}

}  // namespace
}  // namespace anomalyd
