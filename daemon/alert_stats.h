// AlertStats: the alert sender's figures, as the metrics render them.
#ifndef ANOMALYD_DAEMON_ALERT_STATS_H_
#define ANOMALYD_DAEMON_ALERT_STATS_H_

#include <cstdint>
#include <map>
#include <string>

namespace anomalyd {

// What the sender has done since start, for the metrics.
struct AlertStats {
  std::map<std::string, uint64_t> delivered;    // by sink
  std::map<std::string, uint64_t> failed;       // failed attempts, by sink
  uint64_t firing_sent = 0, resolved_sent = 0;  // notifications made
  uint64_t skipped_stale = 0, skipped_suppressed = 0;
  int64_t outbox_pending = 0, dead_letters = 0;  // in the store, last seen
  uint64_t incidents_pending = 0, incidents_firing = 0;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_ALERT_STATS_H_
