// The process's own resource use, read from /proc/self for the standard
// Prometheus process_* metrics (the names client libraries export, so that
// stock dashboards and alerts work on anomalyd too). Linux only.
#ifndef ANOMALYD_DAEMON_PROCESS_METRICS_H_
#define ANOMALYD_DAEMON_PROCESS_METRICS_H_

#include <cstdint>
#include <string>

namespace anomalyd {

struct ProcessStats {
  double cpu_seconds = 0;     // user + system time of every thread
  int64_t resident_bytes = 0;
  int64_t virtual_bytes = 0;
  int64_t open_fds = 0;
  int64_t max_fds = 0;        // the soft RLIMIT_NOFILE
};

// Reads the calling process's stats. False (and *stats partly filled) when
// /proc cannot be read; the metrics then leave the missing ones out.
bool ReadProcessStats(ProcessStats* stats);

// Parses the contents of /proc/PID/stat (as proc(5) lays it out: the
// command in parentheses may hold spaces and parentheses) into cpu_seconds,
// virtual_bytes and resident_bytes, given the clock ticks per second and
// the page size. False when the text does not have the fields.
bool ParseProcStat(const std::string& text, long ticks_per_second,
                   long page_bytes, ProcessStats* stats);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_PROCESS_METRICS_H_
