#include "proto/utf8.h"

#include <google/protobuf/stubs/common.h>

#include <random>
#include <string>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

using namespace std::string_literals;  // "a\0b"s keeps its NUL

// Every kind of well-formed and ill-formed sequence, with what ToValidUtf8
// makes of it (valid input comes back unchanged).
TEST(Utf8Test, Table) {
  struct Case {
    const char* what;
    std::string in;
    bool valid;
    std::string escaped;  // ToValidUtf8(in)
  };
  const Case cases[] = {
      {"empty", "", true, ""},
      {"ascii", "cpu_load", true, "cpu_load"},
      {"embedded NUL", "a\0b"s, true, "a\0b"s},
      {"only NUL", "\0"s, true, "\0"s},
      {"2-byte U+0080", "\xC2\x80", true, "\xC2\x80"},
      {"2-byte e acute", "caf\xC3\xA9", true, "caf\xC3\xA9"},
      {"2-byte U+07FF", "\xDF\xBF", true, "\xDF\xBF"},
      {"3-byte U+0800", "\xE0\xA0\x80", true, "\xE0\xA0\x80"},
      {"3-byte euro", "\xE2\x82\xAC", true, "\xE2\x82\xAC"},
      {"3-byte U+D7FF", "\xED\x9F\xBF", true, "\xED\x9F\xBF"},
      {"3-byte U+E000", "\xEE\x80\x80", true, "\xEE\x80\x80"},
      {"3-byte U+FFFF", "\xEF\xBF\xBF", true, "\xEF\xBF\xBF"},
      {"4-byte U+10000", "\xF0\x90\x80\x80", true, "\xF0\x90\x80\x80"},
      {"4-byte emoji", "\xF0\x9F\x98\x80", true, "\xF0\x9F\x98\x80"},
      {"4-byte U+10FFFF", "\xF4\x8F\xBF\xBF", true, "\xF4\x8F\xBF\xBF"},
      {"Latin-1 byte", "caf\xE9", false, "caf\\xE9"},
      {"lone continuation", "\x80", false, "\\x80"},
      {"overlong NUL", "\xC0\x80", false, "\\xC0\\x80"},
      {"overlong 2-byte C1", "\xC1\xBF", false, "\\xC1\\xBF"},
      {"overlong 3-byte", "\xE0\x9F\xBF", false, "\\xE0\\x9F\\xBF"},
      {"overlong 4-byte", "\xF0\x8F\xBF\xBF", false, "\\xF0\\x8F\\xBF\\xBF"},
      {"surrogate U+D800", "\xED\xA0\x80", false, "\\xED\\xA0\\x80"},
      {"surrogate U+DFFF", "\xED\xBF\xBF", false, "\\xED\\xBF\\xBF"},
      {"above U+10FFFF", "\xF4\x90\x80\x80", false, "\\xF4\\x90\\x80\\x80"},
      {"F5 lead", "\xF5\x80\x80\x80", false, "\\xF5\\x80\\x80\\x80"},
      {"FF", "\xFF", false, "\\xFF"},
      {"truncated 2-byte at end", "ab\xC3", false, "ab\\xC3"},
      {"truncated 3-byte at end", "\xE2\x82", false, "\\xE2\\x82"},
      {"truncated 4-byte at end", "\xF0\x9F\x98", false, "\\xF0\\x9F\\x98"},
      {"truncated 3-byte mid-string",
       "\xE2\x82"
       "A",
       false,
       "\\xE2\\x82"
       "A"},
      {"valid after invalid", "\xFF\xC3\xA9", false, "\\xFF\xC3\xA9"},
      {"bad byte past the 8-byte ASCII words",
       "0123456789abcde\x9F"
       "f",
       false,
       "0123456789abcde\\x9F"
       "f"},
      {"bad byte at a word boundary", "01234567\x9F", false, "01234567\\x9F"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(c.valid, IsValidUtf8(c.in));
    EXPECT_EQ(c.escaped, ToValidUtf8(c.in));
    EXPECT_TRUE(IsValidUtf8(ToValidUtf8(c.in)));
    // The check protobuf applies to string fields agrees.
    EXPECT_EQ(c.valid, google::protobuf::internal::IsStructurallyValidUTF8(
                           c.in.data(), static_cast<int>(c.in.size())));
  }
}

TEST(Utf8Test, CharLength) {
  EXPECT_EQ(0u, Utf8CharLength(""));
  EXPECT_EQ(1u, Utf8CharLength("a\xFF"));
  EXPECT_EQ(2u, Utf8CharLength("\xC3\xA9z"));
  EXPECT_EQ(3u, Utf8CharLength("\xE2\x82\xAC"));
  EXPECT_EQ(4u, Utf8CharLength("\xF0\x9F\x98\x80"));
  EXPECT_EQ(0u, Utf8CharLength("\xED\xA0\x80"));
}

// Random byte strings, biased towards lead and continuation bytes: the
// verdict always matches protobuf's, and the escaped form is always valid
// and leaves valid strings alone.
TEST(Utf8Test, AgreesWithProtobufOnRandomBytes) {
  std::mt19937 rng(1);
  const unsigned char interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                       0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF,
                                       0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5};
  for (int i = 0; i < 200000; ++i) {
    std::string s(rng() % 12, '\0');
    for (char& c : s) {
      c = static_cast<char>(rng() % 2 ? interesting[rng() % sizeof interesting]
                                      : rng() % 256);
    }
    const bool valid = IsValidUtf8(s);
    ASSERT_EQ(google::protobuf::internal::IsStructurallyValidUTF8(
                  s.data(), static_cast<int>(s.size())),
              valid);
    const std::string escaped = ToValidUtf8(s);
    ASSERT_TRUE(IsValidUtf8(escaped));
    if (valid) {
      ASSERT_EQ(s, escaped);
    }
  }
}

}  // namespace
}  // namespace anomalyd
