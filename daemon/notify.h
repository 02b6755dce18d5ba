// The sd_notify protocol (systemd Type=notify). Every call is a no-op when
// NOTIFY_SOCKET is not set, so the daemon runs the same by hand.
#ifndef ANOMALYD_DAEMON_NOTIFY_H_
#define ANOMALYD_DAEMON_NOTIFY_H_

#include <cstdint>
#include <string>

namespace anomalyd {

// Sends `state` ("READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1").
void Notify(const std::string& state);

// Sends "RELOADING=1" with "MONOTONIC_USEC=" the time now on
// CLOCK_MONOTONIC, in one message, as sd_notify(3) asks of a service that
// starts to reload its configuration (Type=notify-reload relies on it); the
// reload ends with Notify("READY=1").
void NotifyReloading();

// The watchdog interval systemd expects pings within (WATCHDOG_USEC), or 0
// when the watchdog is off.
uint64_t WatchdogIntervalMicros();

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_NOTIFY_H_
