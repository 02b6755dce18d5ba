#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

namespace anomalyd {

void Notify(const std::string& state) {
  // unset_environment = 0: children (none) could inherit; keeps the
  // watchdog query below working.
  (void)sd_notify(0, state.c_str());
}

uint64_t WatchdogIntervalMicros() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) return usec;
  return 0;
}

}  // namespace anomalyd
