// Tests of the blob, labels and cursor formats (storage/codec.h).
#include "storage/codec.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "tests/test_util.h"

namespace anomalyd::codec {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

TEST(StoreCodec, FloatsRoundTripBitExact) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v = {0.0f,
                                -0.0f,
                                1.5f,
                                -3.25e-38f,
                                inf,
                                -inf,
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::quiet_NaN()};
  std::string scratch;
  std::string_view bytes = FloatBytes(v, &scratch);
  ASSERT_EQ(bytes.size(), v.size() * 4);
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x00);  // 1.5f, LE
  EXPECT_EQ(static_cast<unsigned char>(bytes[11]), 0x3f);
  std::vector<float> back;
  ASSERT_OK(DecodeFloats(std::string(bytes), &back));
  ASSERT_EQ(back.size(), v.size());
  EXPECT_EQ(std::memcmp(back.data(), v.data(), v.size() * 4), 0);

  ASSERT_OK(DecodeFloats("", &back));
  EXPECT_TRUE(back.empty());
  EXPECT_EQ(DecodeFloats("12345", &back).code(), pb::CORRUPT);
}

TEST(StoreCodec, LabelsRoundTripExactly) {
  const Labels cases[] = {
      {},
      {{"", ""}},
      {{"host", "a"}, {"host", "b"}},  // duplicates kept, in order
      {{std::string("k\0ey", 4), std::string("v\0", 2)}},
      {{"ключ", "值"}, {"=", ","}, {"\"", "\\"}},
      {{"big", std::string(100000, 'x')}},
  };
  for (const Labels& l : cases) {
    std::string bytes;
    EncodeLabels(l, &bytes);
    Labels back = {{"stale", "entry"}};
    ASSERT_OK(DecodeLabels(bytes, &back));
    EXPECT_EQ(back, l);
  }
  std::string bytes;
  EncodeLabels({}, &bytes);
  EXPECT_TRUE(bytes.empty());
}

TEST(StoreCodec, TruncatedLabelsAreCorrupt) {
  std::string bytes;
  EncodeLabels({{"key", "value"}}, &bytes);
  for (size_t n = 1; n < bytes.size(); ++n) {
    Labels back;
    EXPECT_EQ(DecodeLabels(bytes.substr(0, n), &back).code(), pb::CORRUPT) << n;
    EXPECT_TRUE(back.empty());
  }
  std::string huge_length =
      "\xff\xff\xff\x7f"
      "abc";
  Labels back;
  EXPECT_EQ(DecodeLabels(huge_length, &back).code(), pb::CORRUPT);
}

TEST(StoreCodec, CursorsRoundTrip) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Cursor> cases;
  for (double score : {0.0, -0.0, 1e-300, 123.456, -7.0, inf, -inf}) {
    Cursor c;
    c.order = AnomalyOrder::kScoreDesc;
    c.score = score;
    c.id = 99;
    cases.push_back(c);
  }
  for (int64_t t : {int64_t{0}, int64_t{-5}, int64_t{1700000000000000},
                    std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    for (TimeField f : {TimeField::kEvent, TimeField::kScored}) {
      Cursor c;
      c.time_field = f;
      c.time_us = t;
      c.id = std::numeric_limits<int64_t>::max();
      cases.push_back(c);
      c.order = AnomalyOrder::kTimeAsc;  // oldest first
      cases.push_back(c);
    }
  }
  for (const Cursor& c : cases) {
    const std::string text = EncodeCursor(c);
    Cursor back;
    ASSERT_OK(DecodeCursor(text, &back));
    EXPECT_EQ(back.order, c.order) << text;
    EXPECT_EQ(back.id, c.id) << text;
    if (c.order == AnomalyOrder::kScoreDesc) {
      EXPECT_EQ(std::memcmp(&back.score, &c.score, 8), 0) << text;
    } else {
      EXPECT_EQ(back.time_field, c.time_field) << text;
      EXPECT_EQ(back.time_us, c.time_us) << text;
    }
  }
}

TEST(StoreCodec, MalformedCursorsAreInvalidArgument) {
  const char* cases[] = {
      "",
      "x",
      "e1",
      "e1.",
      "e1.5",
      "e1.5.",
      "e1.5.0",
      "e1.5.-1",
      "e1.a.1",
      "e2.5.1",
      "q1.5.1",
      "X1.5.1",
      "E1.a.1",
      "e1.+5.1",
      "e1.5.1 ",
      " e1.5.1",
      "e1.5.1.2",
      "e1.99999999999999999999.1",
      "x1.123.1",
      "x1.7ff8000000000000.1",  // NaN
      "x1.-000000000000001.1",
      "s1..1",
  };
  for (const char* text : cases) {
    Cursor c;
    EXPECT_EQ(DecodeCursor(text, &c).code(), pb::INVALID_ARGUMENT) << text;
  }
}

}  // namespace
}  // namespace anomalyd::codec
