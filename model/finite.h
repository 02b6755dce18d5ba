// AllFinite: whether every float of an array is finite. One branch-free
// pass the compiler vectorises; callers look for the culprit only when it
// says no (request validation and the scorers check every value).
#ifndef ANOMALYD_MODEL_FINITE_H_
#define ANOMALYD_MODEL_FINITE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace anomalyd {

inline bool AllFinite(const float* values, size_t count) {
  constexpr uint32_t kExponent = 0x7f800000u;  // all ones: Inf or NaN
  uint32_t bad = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & kExponent) == kExponent);
  }
  return bad == 0;
}

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_FINITE_H_
