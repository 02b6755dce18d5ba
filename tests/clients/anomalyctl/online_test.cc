#include "clients/anomalyctl/online.h"

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

}  // namespace
}  // namespace anomalyd::ctl
