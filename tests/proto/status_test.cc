#include "proto/status.h"

#include <string>

#include "proto/utf8.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

// A CSV header byte (Latin-1 "é") quoted into a training error made the
// daemon's status reply fail to parse in every client: protobuf string
// fields must be UTF-8. Status now escapes such bytes itself.
TEST(StatusTest, RegressionBadBytesInAMessageStillParseOnTheWire) {
  const std::string raw = "column 'caf\xE9' (3): not a number";
  // What clients saw before: the raw bytes serialise but do not parse.
  {
    pb::Error e;
    e.set_message(raw);
    std::string wire;
    e.SerializeToString(&wire);  // protobuf logs an error here, as intended
    pb::Error back;
    EXPECT_FALSE(back.ParseFromString(wire));
  }
  const Status s = Status::InvalidArgument(raw);
  EXPECT_EQ("column 'caf\\xE9' (3): not a number", s.message());
  pb::Error e;
  e.set_code(s.code());
  e.set_message(s.message());
  std::string wire;
  ASSERT_TRUE(e.SerializeToString(&wire));
  pb::Error back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(s.message(), back.message());
  EXPECT_EQ(pb::INVALID_ARGUMENT, back.code());
}

TEST(StatusTest, ValidMessagesAreKeptAsTheyAre) {
  const std::string utf8 = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \\xE9";
  EXPECT_EQ(utf8, Status(pb::INTERNAL, utf8).message());
  EXPECT_EQ("plain", Status::IoError("plain").message());
  EXPECT_EQ("", Status(pb::INTERNAL, "").message());
}

TEST(StatusTest, WithContextEscapesTheContextToo) {
  const Status s = Status::NotFound("no such stream").WithContext("\xFFpath");
  EXPECT_EQ(pb::NOT_FOUND, s.code());
  EXPECT_EQ("\\xFFpath: no such stream", s.message());
  EXPECT_EQ("NOT_FOUND: \\xFFpath: no such stream", s.ToString());
  EXPECT_TRUE(Status::OK().WithContext("\xFF").ok());
  EXPECT_EQ("", Status::OK().WithContext("\xFF").message());
}

TEST(StatusTest, EveryFactoryEscapes) {
  for (const Status& s :
       {Status::InvalidArgument("\xC0"), Status::NotFound("\xC0"),
        Status::IoError("\xC0"), Status::Corrupt("\xC0"),
        Status::Internal("\xC0"), Status(pb::TOO_LARGE, "\xC0")}) {
    EXPECT_EQ("\\xC0", s.message());
    EXPECT_TRUE(IsValidUtf8(s.ToString()));
  }
}

}  // namespace
}  // namespace anomalyd
