#include "daemon/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

namespace anomalyd {

void Notify(const std::string& state) {
  // unset_environment = 0: children (none) could inherit; keeps the
  // watchdog query below working.
  (void)sd_notify(0, state.c_str());
}

void NotifyReloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000 +
                        static_cast<uint64_t>(ts.tv_nsec) / 1000;
  Notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

uint64_t WatchdogIntervalMicros() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) return usec;
  return 0;
}

}  // namespace anomalyd
