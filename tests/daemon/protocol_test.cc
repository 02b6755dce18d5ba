#include "daemon/protocol.h"

#include <cmath>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

int64_t Dims(const std::string& s) {
  if (s == "default") return 3;
  if (s == "wide") return 5;
  return -1;
}

pb::ScoreRequest Records(std::vector<std::pair<std::string, std::vector<float>>> rows) {
  pb::ScoreRequest r;
  int i = 0;
  for (auto& [stream, f] : rows) {
    pb::Record* rec = r.add_records();
    rec->set_id("id" + std::to_string(i++));
    rec->set_stream(stream);
    rec->mutable_features()->Add(f.begin(), f.end());
  }
  return r;
}

TEST(ProtocolTest, DecodeRejectsGarbageEmptyAndOversized) {
  pb::Request req;
  RequestLimits lim;
  lim.max_message_bytes = 100;
  EXPECT_EQ(DecodeRequest("\xff\xff\xff", 3, lim, &req).code(), pb::MALFORMED);
  EXPECT_EQ(DecodeRequest("", 0, lim, &req).code(), pb::UNKNOWN_REQUEST);
  std::string big(101, 'a');
  EXPECT_EQ(DecodeRequest(big.data(), big.size(), lim, &req).code(), pb::TOO_LARGE);
  pb::Request ok;
  ok.set_request_id(7);
  ok.mutable_status();
  const std::string b = ok.SerializeAsString();
  ASSERT_OK(DecodeRequest(b.data(), b.size(), lim, &req));
  EXPECT_EQ(req.request_id(), 7u);
}

TEST(ProtocolTest, SplitsRecordsByStreamKeepingIndexes) {
  std::vector<ScorePart> parts;
  int bad = 0;
  ASSERT_OK(ValidateScoreRequest(
      Records({{"", {1, 2, 3}}, {"wide", {1, 2, 3, 4, 5}}, {"default", {4, 5, 6}}}), {}, Dims,
      &parts, &bad));
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].stream, "default");  // "" means default
  EXPECT_EQ(parts[0].index, (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(parts[0].values, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(parts[1].stream, "wide");
  EXPECT_EQ(parts[1].ids, std::vector<std::string>{"id1"});
  EXPECT_EQ(bad, -1);
}

TEST(ProtocolTest, TypedErrorsNameTheRecord) {
  struct Case {
    const char* what;
    pb::ScoreRequest req;
    ErrorCode code;
    int bad;
  };
  auto nan_req = Records({{"", {1, 2, 3}}, {"", {1, NAN, 3}}});
  auto dup = Records({{"", {1, 2, 3}}, {"", {1, 2, 3}}});
  dup.mutable_records(1)->set_id("id0");
  std::vector<Case> cases = {
      {"empty", pb::ScoreRequest(), pb::EMPTY_BATCH, -1},
      {"wrong dim", Records({{"", {1, 2, 3}}, {"", {1, 2}}}), pb::WRONG_DIMENSION, 1},
      {"nan", nan_req, pb::NON_FINITE, 1},
      {"unknown stream", Records({{"x", {1}}}), pb::UNKNOWN_STREAM, 0},
      {"duplicate id", dup, pb::DUPLICATE_ID, 1},
      {"long stream", Records({{std::string(200, 's'), {1}}}), pb::INVALID_ARGUMENT, 0},
  };
  pb::ScoreRequest dense;
  dense.mutable_dense()->set_dim(3);
  for (float v : {1.f, 2.f, 3.f, 4.f}) dense.mutable_dense()->add_values(v);
  cases.push_back({"dense not N x d", dense, pb::INVALID_ARGUMENT, -1});
  pb::ScoreRequest dense_ids;
  dense_ids.mutable_dense()->set_dim(3);
  for (float v : {1.f, 2.f, 3.f}) dense_ids.mutable_dense()->add_values(v);
  dense_ids.mutable_dense()->add_ids("a");
  dense_ids.mutable_dense()->add_ids("b");
  cases.push_back({"dense ids count", dense_ids, pb::INVALID_ARGUMENT, -1});
  pb::ScoreRequest dense_inf = dense_ids;
  dense_inf.mutable_dense()->clear_ids();
  dense_inf.mutable_dense()->set_values(2, -INFINITY);
  cases.push_back({"dense inf", dense_inf, pb::NON_FINITE, 0});
  pb::ScoreRequest both = Records({{"", {1, 2, 3}}});
  *both.mutable_dense() = dense_inf.dense();
  cases.push_back({"both forms", both, pb::INVALID_ARGUMENT, -1});
  for (const Case& c : cases) {
    std::vector<ScorePart> parts;
    int bad = -7;
    Status s = ValidateScoreRequest(c.req, {}, Dims, &parts, &bad);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.ToString();
    EXPECT_EQ(bad, c.bad) << c.what;
    EXPECT_TRUE(parts.empty()) << c.what;
  }
  RequestLimits lim;
  lim.max_records = 1;
  std::vector<ScorePart> parts;
  int bad;
  EXPECT_EQ(
      ValidateScoreRequest(Records({{"", {1, 2, 3}}, {"", {1, 2, 3}}}), lim, Dims, &parts, &bad)
          .code(),
      pb::TOO_LARGE);
}

// Many ids (the duplicate check's table grows with the request), empty ids
// never clash, and a repeat is named at its second occurrence, whether
// records or a dense batch carry the ids.
TEST(ProtocolTest, DuplicateIdsAmongManyAreFoundAtTheirSecondOccurrence) {
  constexpr int kRows = 5000;
  pb::ScoreRequest dense;
  pb::DenseBatch* b = dense.mutable_dense();
  b->set_dim(3);
  for (int i = 0; i < kRows; ++i) {
    b->add_values(1);
    b->add_values(2);
    b->add_values(3);
    b->add_ids(i % 7 == 0 ? "" : "record-" + std::to_string(i));
  }
  std::vector<ScorePart> parts;
  int bad = 0;
  ASSERT_OK(ValidateScoreRequest(dense, {}, Dims, &parts, &bad));
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].ids[4999], "record-4999");

  b->set_ids(4321, "record-17");
  EXPECT_EQ(ValidateScoreRequest(dense, {}, Dims, &parts, &bad).code(), pb::DUPLICATE_ID);
  EXPECT_EQ(bad, 4321);

  std::vector<std::pair<std::string, std::vector<float>>> rows(kRows, {"", {1, 2, 3}});
  pb::ScoreRequest records = Records(rows);
  ASSERT_OK(ValidateScoreRequest(records, {}, Dims, &parts, &bad));
  records.mutable_records(3000)->set_id("id2999");
  EXPECT_EQ(ValidateScoreRequest(records, {}, Dims, &parts, &bad).code(), pb::DUPLICATE_ID);
  EXPECT_EQ(bad, 3000);
}

TEST(ProtocolTest, EncodeErrorRoundTrips) {
  pb::Response r;
  ASSERT_TRUE(r.ParseFromString(EncodeError(9, Status(pb::BUSY, "full"), 3, "x")));
  EXPECT_EQ(r.request_id(), 9u);
  EXPECT_EQ(r.error().code(), pb::BUSY);
  EXPECT_EQ(r.error().message(), "full");
  EXPECT_EQ(r.error().record_index(), 3);
  EXPECT_EQ(r.error().record_id(), "x");
}

}  // namespace
}  // namespace anomalyd
