#include "common/iso_time.h"

#include <cstdio>
#include <ctime>

namespace anomalyd {
namespace {

constexpr int64_t kMicros = 1000000;  // per second

}  // namespace

std::string Iso(int64_t us) {
  // Floor division, so that times before 1970 keep a non-negative
  // sub-second part: -1 us is 1969-12-31T23:59:59.999Z, not .-000.
  int64_t secs = us / kMicros;
  int64_t rem = us % kMicros;
  if (rem < 0) {
    rem += kMicros;
    secs -= 1;
  }
  // ISO 8601 without an agreed expansion has four-digit years; gmtime_r
  // also fails when the year overflows an int, and time_t may be 32 bits.
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (static_cast<int64_t>(t) != secs || gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 < 0 ||
      tm.tm_year + 1900 > 9999) {
    return std::to_string(us) + "us";
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(rem / 1000));
  return buf;
}

}  // namespace anomalyd
