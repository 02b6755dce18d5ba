// UTF-8 checks for every string that crosses into protobuf or a log.
// Protobuf `string` fields must hold valid UTF-8: one stray byte in a
// feature name or an error message and the whole reply (or the bundle's
// metadata) no longer parses on the other side. Strings from outside (CSV
// headers, file names, cells quoted in errors) are checked here first.
//
//   if (!IsValidUtf8(name)) return Status::InvalidArgument("column 3: ...");
//   log_line = ToValidUtf8(bytes);   // never fails, always valid
//
// Pure functions; thread-safe.
#ifndef ANOMALYD_PROTO_UTF8_H_
#define ANOMALYD_PROTO_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace anomalyd {

// True when `s` is well-formed UTF-8 in the strict sense protobuf applies:
// no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
// U+10FFFF, no truncated sequence. The empty string and embedded NULs are
// valid. All-ASCII input is checked eight bytes at a time.
bool IsValidUtf8(std::string_view s);

// `s` with every valid sequence kept and every byte that does not start a
// valid sequence written as the four ASCII characters \xNN (upper-case
// hex), so the result is always valid UTF-8 and shows what was there.
// Valid input comes back unchanged (a literal "\xE9" in it stays as it is,
// so the escaping is not reversible; it is for people, not for parsers).
std::string ToValidUtf8(std::string_view s);

// Length in bytes (1 to 4) of the well-formed UTF-8 character at the start
// of `s`, or 0 when `s` is empty or does not start with one.
size_t Utf8CharLength(std::string_view s);

}  // namespace anomalyd

#endif  // ANOMALYD_PROTO_UTF8_H_
