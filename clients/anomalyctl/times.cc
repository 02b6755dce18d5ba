#include "clients/anomalyctl/times.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <string_view>

namespace anomalyd::ctl {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard
// Hinnant's days_from_civil): no time_t or time zone in the way.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads the text left to right; every method consumes only on success.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return pos_ == s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  bool Char(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // Exactly n digits.
  bool Fixed(int n, int* out) {
    if (s_.size() - pos_ < static_cast<size_t>(n)) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (!IsDigit(s_[pos_ + i])) return false;
      v = v * 10 + (s_[pos_ + i] - '0');
    }
    pos_ += n;
    *out = v;
    return true;
  }
  // One or more digits as an int64; false on none or on overflow.
  bool Integer(int64_t* out) {
    const size_t start = pos_;
    int64_t v = 0;
    while (IsDigit(peek())) {
      const int d = s_[pos_] - '0';
      if (v > (kMax - d) / 10) {
        pos_ = start;
        return false;
      }
      v = v * 10 + d;
      ++pos_;
    }
    if (pos_ == start) return false;
    *out = v;
    return true;
  }
  // One or more digits after a decimal point, as microseconds (digits past
  // the sixth are dropped).
  bool Fraction(int64_t* micros) {
    if (!IsDigit(peek())) return false;
    int64_t v = 0;
    int n = 0;
    for (; IsDigit(peek()); ++pos_, ++n) {
      if (n < 6) v = v * 10 + (s_[pos_] - '0');
    }
    for (; n < 6; ++n) v *= 10;
    *micros = v;
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

Status Bad(const std::string& s, const std::string& why) {
  return Status::InvalidArgument("time '" + s + "': " + why);
}

const char kForms[] =
    "expected a time ago (-1h, 30m, 2d), an RFC 3339 time "
    "(2026-11-25T10:00:00.250Z, 2026-11-25T12:00:00+02:00, 2026-11-25), "
    "Unix seconds (1764064800) or microseconds (1764064800000000us)";

// "2026-11-25[T10:00[:00[.250]]][Z|+02:00|-0530|+02]".
Status ParseRfc3339(const std::string& s, int64_t* out_us) {
  Scanner in(s);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  int64_t frac = 0;
  if (!in.Fixed(4, &y) || !in.Char('-') || !in.Fixed(2, &mo) || !in.Char('-') ||
      !in.Fixed(2, &d)) {
    return Bad(s, kForms);
  }
  if (mo < 1 || mo > 12) return Bad(s, "month out of range");
  if (d < 1 || d > DaysInMonth(y, mo)) return Bad(s, "day out of range");
  if (in.Char('T') || in.Char('t') || in.Char(' ')) {
    if (!in.Fixed(2, &h) || !in.Char(':') || !in.Fixed(2, &mi)) {
      return Bad(s, "expected HH:MM after the date");
    }
    if (in.Char(':')) {
      if (!in.Fixed(2, &sec)) return Bad(s, "expected two digits of seconds");
      if (in.Char('.') && !in.Fraction(&frac)) return Bad(s, "expected digits after '.'");
    }
    // 60 is a leap second (RFC 3339): as POSIX time, the next minute's first.
    if (h > 23 || mi > 59 || sec > 60) return Bad(s, "hour, minute or second out of range");
  }
  int64_t offset_s = 0;
  if (in.Char('Z') || in.Char('z')) {
  } else if (in.peek() == '+' || in.peek() == '-') {
    const int sign = in.peek() == '+' ? 1 : -1;
    in.Char(in.peek());
    int oh = 0, om = 0;
    if (!in.Fixed(2, &oh)) return Bad(s, "expected an offset such as +02:00");
    const bool colon = in.Char(':');
    if (!in.Fixed(2, &om) && colon) return Bad(s, "expected an offset such as +02:00");
    if (oh > 23 || om > 59) return Bad(s, "offset out of range");
    offset_s = sign * (oh * 3600 + om * 60);
  }
  if (!in.done()) return Bad(s, std::string("unexpected '") + in.peek() + "'; " + kForms);
  const int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  *out_us = secs * kMicrosPerSecond + frac;  // years 0000-9999: no overflow
  return Status::OK();
}

}  // namespace


Status ParseTime(const std::string& s, int64_t now_us, int64_t* out_us) {
  if (s.empty()) return Status::InvalidArgument("empty time");
  // A date: RFC 3339.
  if (s.size() >= 5 && IsDigit(s[0]) && IsDigit(s[3]) && s[4] == '-') {
    return ParseRfc3339(s, out_us);
  }
  // Microseconds: "1764064800250000us", negative too (down to INT64_MIN,
  // which Iso prints as such).
  if (s.size() > 2 && s.compare(s.size() - 2, 2, "us") == 0) {
    const char* end = s.data() + s.size() - 2;
    int64_t us = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), end, us);
    if (ptr == end && ec == std::errc() && s[0] != '+') {
      *out_us = us;
      return Status::OK();
    }
    if (ec == std::errc::result_out_of_range) return Bad(s, "number out of range");
    return Bad(s, kForms);
  }
  Scanner in(s);
  const bool minus = in.Char('-');
  int64_t whole = 0, frac = 0;
  if (!in.Integer(&whole)) {
    return Bad(s, IsDigit(minus ? s[1] : s[0]) ? "number out of range" : kForms);
  }
  const bool has_fraction = in.Char('.');
  if (has_fraction && !in.Fraction(&frac)) return Bad(s, "expected digits after '.'");
  // Unix seconds.
  if (in.done() && !minus) {
    if (whole > (kMax - frac) / kMicrosPerSecond) return Bad(s, "number out of range");
    *out_us = whole * kMicrosPerSecond + frac;
    return Status::OK();
  }
  // A time ago: "-1h", "30m", "1.5d".
  static const std::pair<char, int64_t> kUnits[] = {
      {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  for (auto [unit, seconds] : kUnits) {
    Scanner rest = in;
    if (!rest.Char(unit) || !rest.done()) continue;
    const double ago = (static_cast<double>(whole) + static_cast<double>(frac) / kMicrosPerSecond) *
                       static_cast<double>(seconds) * kMicrosPerSecond;
    // Far enough back to cover any stored time, short of overflow.
    if (!(ago < 4e18)) return Bad(s, "too long ago");
    *out_us = now_us - static_cast<int64_t>(ago);
    return Status::OK();
  }
  return Bad(s, kForms);
}

}  // namespace anomalyd::ctl
