#include "proto/utf8.h"

#include <cstdint>
#include <cstring>

namespace anomalyd {
namespace {

// Bytes at the start of `s` below 0x80. Messages and names are nearly
// always ASCII, so this is the whole check for them: eight bytes per step.
size_t AsciiPrefix(std::string_view s) {
  constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, sizeof word);
    if ((word & kHighBits) != 0) break;
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

}  // namespace

size_t Utf8CharLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto byte = [s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  // The ranges of Unicode's table of well-formed byte sequences (3.9, D92):
  // the second byte's range is what rules out overlongs (E0, F0),
  // surrogates (ED) and code points past U+10FFFF (F4); C0, C1 and F5..FF
  // never start a sequence.
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  return n;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  for (;;) {
    i += AsciiPrefix(s.substr(i));
    if (i == s.size()) return true;
    const size_t n = Utf8CharLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
}

std::string ToValidUtf8(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t ascii = AsciiPrefix(s.substr(i));
    out.append(s.substr(i, ascii));
    i += ascii;
    if (i == s.size()) break;
    const size_t n = Utf8CharLength(s.substr(i));
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    // One byte at a time: the next byte may start a valid sequence again.
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
    ++i;
  }
  return out;
}

}  // namespace anomalyd
