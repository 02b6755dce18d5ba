// The sd_notify protocol (systemd Type=notify). Every call is a no-op when
// NOTIFY_SOCKET is not set, so the daemon runs the same by hand.
#ifndef ANOMALYD_DAEMON_NOTIFY_H_
#define ANOMALYD_DAEMON_NOTIFY_H_

#include <cstdint>
#include <string>

namespace anomalyd {

// Sends `state` ("READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1").
void Notify(const std::string& state);

// The watchdog interval systemd expects pings within (WATCHDOG_USEC), or 0
// when the watchdog is off.
uint64_t WatchdogIntervalMicros();

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_NOTIFY_H_
