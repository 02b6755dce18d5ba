#include "clients/anomalyctl/times.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace anomalyd::ctl {
namespace {

// Regression: negative times printed as "-290308-12-21T19:59:06.-775Z"
// (truncating division gave a negative millisecond part, and years far out
// of range went through strftime).
TEST(IsoTest, FormatsAnyInt64) {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const struct {
    int64_t us;
    const char* want;
  } kCases[] = {
      {0, "1970-01-01T00:00:00.000Z"},
      {999, "1970-01-01T00:00:00.000Z"},  // rounds down, never up
      {-1, "1969-12-31T23:59:59.999Z"},
      {-1000, "1969-12-31T23:59:59.999Z"},
      {-1001, "1969-12-31T23:59:59.998Z"},
      {-1500000, "1969-12-31T23:59:58.500Z"},
      {1500000, "1970-01-01T00:00:01.500Z"},
      {1772366400250999, "2026-03-01T12:00:00.250Z"},
      {-62167219200000000, "0000-01-01T00:00:00.000Z"},  // first of year 0
      {-62167219200000001, "-62167219200000001us"},
      {253402300799999999, "9999-12-31T23:59:59.999Z"},  // last of 9999
      {253402300800000000, "253402300800000000us"},
      {kMin, "-9223372036854775808us"},
      {kMin + 1, "-9223372036854775807us"},
      {kMax, "9223372036854775807us"},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(Iso(c.us), c.want) << "us = " << c.us;
  }
}

constexpr int64_t kNow = 1764064800000000;  // 2025-11-25T10:00:00Z

TEST(ParseTimeTest, AcceptedForms) {
  const struct {
    const char* text;
    int64_t want;
  } kCases[] = {
      // A time ago.
      {"-1h", kNow - 3600000000LL},
      {"30m", kNow - 1800000000LL},
      {"-2d", kNow - 2 * 86400000000LL},
      {"90s", kNow - 90000000LL},
      {"-1.5h", kNow - 5400000000LL},
      // RFC 3339, what anomalyctl prints first of all.
      {"2026-12-03T17:38:19.595Z", 1796319499595000},
      {"2025-11-25T10:00:00Z", kNow},
      {"2025-11-25T10:00:00", kNow},  // no offset: UTC
      {"2025-11-25t10:00:00z", kNow},
      {"2025-11-25 10:00:00Z", kNow},
      {"2025-11-25T10:00Z", kNow},
      {"2025-11-25T12:00:00+02:00", kNow},
      {"2025-11-25T04:30:00-0530", kNow},
      {"2025-11-25T12:00:00+02", kNow},
      {"2025-11-25T12:00:00.25+02:00", kNow + 250000},
      {"2025-11-25T10:00:00.123456789Z", kNow + 123456},  // past us: dropped
      {"2025-11-25T10:00:00.1Z", kNow + 100000},
      {"2025-11-25", kNow - 10 * 3600000000LL},
      {"2024-02-29", 1709164800000000},
      {"1969-12-31T23:59:59.999Z", -1000},
      {"2016-12-31T23:59:60Z", 1483228800000000},  // leap second
      // Unix seconds and microseconds.
      {"1764064800", kNow},
      {"1764064800.25", kNow + 250000},
      {"0", 0},
      {"1764064800250000us", kNow + 250000},
      {"-62167219200000001us", -62167219200000001},
      {"9223372036854775807us", std::numeric_limits<int64_t>::max()},
  };
  for (const auto& c : kCases) {
    int64_t got = 0;
    const Status s = ParseTime(c.text, kNow, &got);
    EXPECT_TRUE(s.ok()) << c.text << ": " << s.ToString();
    EXPECT_EQ(got, c.want) << c.text;
  }
}

TEST(ParseTimeTest, RefusedFormsNameTheText) {
  const char* kCases[] = {
      "",
      "yesterday",
      "-1",
      "1h30m",
      "2025-13-01",
      "2025-02-29",
      "2025-11-31",
      "2025-11-25T24:00:00Z",
      "2025-11-25T10:60Z",
      "2025-11-25T10",
      "2025-11-25T10:00:00.Z",
      "2025-11-25T10:00:00+2:00",
      "2025-11-25T10:00:00+02:",
      "2025-11-25T10:00:00+24:00",
      "2025-11-25T10:00:00Zjunk",
      "25-11-2025",
      "1764064800.",
      "99999999999999999999",
      "9223372036854775807",  // seconds: beyond int64 microseconds
      "99999999999999999999us",
      "1.5us",
      "9999999999999d",
  };
  for (const char* text : kCases) {
    int64_t got = 42;
    const Status s = ParseTime(text, kNow, &got);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << text;
    if (*text != '\0') {
      EXPECT_NE(s.message().find(std::string("'") + text + "'"), std::string::npos)
          << s.message();
    }
    EXPECT_EQ(got, 42) << text;
  }
}

// Whatever anomalyctl prints, it takes back: a query's times can be pasted
// into the next query.
TEST(ParseTimeTest, ParsesWhatIsoPrints) {
  const int64_t kCases[] = {0,          -1,         1500000,           1796319499595000,
                            -62167219200000000,     253402300799999999, -62167219200000001,
                            253402300800000000,     std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max()};
  for (int64_t us : kCases) {
    int64_t got = 0;
    ASSERT_TRUE(ParseTime(Iso(us), kNow, &got).ok()) << Iso(us);
    const bool plain = Iso(us).back() == 's';
    // Iso rounds down to the millisecond.
    const int64_t floor_ms = us - ((us % 1000) + 1000) % 1000;
    EXPECT_EQ(got, plain ? us : floor_ms) << Iso(us);
  }
}

}  // namespace
}  // namespace anomalyd::ctl
