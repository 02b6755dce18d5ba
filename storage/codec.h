// Byte formats of the values the store keeps in BLOB and TEXT columns, and
// of its paging cursor. Private to storage/; specified in docs/storage.md.
#ifndef ANOMALYD_STORAGE_CODEC_H_
#define ANOMALYD_STORAGE_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/status.h"
#include "storage/types.h"

namespace anomalyd::codec {

// Float vectors: float32 little-endian, packed, no header (size / 4 values).
// The bytes of `v` in that format. On little-endian hosts this is a view of
// v's own storage (valid while v is unchanged); elsewhere *scratch holds a
// byte-swapped copy.
std::string_view FloatBytes(const std::vector<float>& v, std::string* scratch);
// CORRUPT when the size is not a multiple of 4.
Status DecodeFloats(std::string_view bytes, std::vector<float>* v);

// Labels: for each pair in order, u32le key length, key bytes, u32le value
// length, value bytes. No labels: zero bytes.
void EncodeLabels(const std::vector<std::pair<std::string, std::string>>& l,
                  std::string* out);
// CORRUPT when a length runs past the end.
Status DecodeLabels(std::string_view bytes,
                    std::vector<std::pair<std::string, std::string>>* l);

// A paging cursor: the sort key and id of the last row of a page.
struct Cursor {
  AnomalyOrder order = AnomalyOrder::kTimeDesc;
  TimeField time_field = TimeField::kEvent;  // for kTimeDesc only
  int64_t time_us = 0;                       // for kTimeDesc
  double score = 0;                          // for kScoreDesc
  int64_t id = 0;
};

// "e1.<event_time_us>.<id>", "s1.<scored_time_us>.<id>" or
// "x1.<16 hex digits: the score's IEEE-754 bits>.<id>"; decimal integers.
std::string EncodeCursor(const Cursor& c);
// INVALID_ARGUMENT for anything EncodeCursor cannot have produced.
Status DecodeCursor(std::string_view text, Cursor* c);

}  // namespace anomalyd::codec

#endif  // ANOMALYD_STORAGE_CODEC_H_
