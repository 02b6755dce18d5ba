// Times on anomalyctl's command line and in its output.
#ifndef ANOMALYD_CLIENTS_ANOMALYCTL_TIMES_H_
#define ANOMALYD_CLIENTS_ANOMALYCTL_TIMES_H_

#include <cstdint>
#include <string>

#include "common/iso_time.h"
#include "proto/status.h"

namespace anomalyd::ctl {

// Parses a time given to `query --since/--until` into microseconds since
// the Unix epoch. Accepted forms:
//   "-1h", "30m", "2d", "90s", "1.5h": that long before now_us (the minus
//     sign is optional);
//   RFC 3339 / ISO 8601: "2026-11-25", "2026-11-25T10:00",
//     "2026-11-25T10:00:00", with fractional seconds ("10:00:00.250",
//     digits beyond microseconds are dropped) and an offset ("Z", "+02:00",
//     "-0530", "+02"); without an offset the time is UTC; 't', 'z' and a
//     space for 'T' are accepted; years 0000-9999;
//   Unix seconds, with an optional fraction: "1764064800", "1764064800.25";
//   microseconds with a "us" suffix: "1764064800250000us" (how Iso prints
//     times outside years 0000-9999).
// Whatever Iso prints parses back to the time it printed. INVALID_ARGUMENT
// naming the text and what is wrong with it otherwise (a field out of
// range, a value beyond the int64 range); *out_us is then untouched.
Status ParseTime(const std::string& s, int64_t now_us, int64_t* out_us);

// Iso (common/iso_time.h) prints every time anomalyctl shows.
using ::anomalyd::Iso;

}  // namespace anomalyd::ctl

#endif  // ANOMALYD_CLIENTS_ANOMALYCTL_TIMES_H_
