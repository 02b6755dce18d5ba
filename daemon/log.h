// Where anomalyd's log goes. Under systemd, with stderr connected to the
// journal, log records go to journald natively (spdlog's systemd sink):
// each with its syslog priority (so `journalctl -p err` finds errors) and
// no timestamp of ours (journald stamps every record). Otherwise lines go
// to stderr as "2026-03-01T12:00:00.250 info message".
//
// The test is the one systemd.exec(5) and sd_journal_print(3) describe:
// systemd sets JOURNAL_STREAM=DEVICE:INODE for a service whose stdout or
// stderr it connects to the journal, and stderr is the journal when fstat
// on it gives that device and inode. INVOCATION_ID or NOTIFY_SOCKET alone
// would be wrong: a unit with StandardError=file:..., or a daemon started
// by hand from a shell inside a service, has them with stderr elsewhere.
#ifndef ANOMALYD_DAEMON_LOG_H_
#define ANOMALYD_DAEMON_LOG_H_

#include <string>

namespace anomalyd {

enum class LogSink {
  kStderr,   // text lines with our own timestamp
  kJournal,  // native journal records (sd_journal_send)
};

// kJournal when `journal_stream` (JOURNAL_STREAM's value; nullptr when
// unset) is "DEVICE:INODE" in decimal and names the file open on `fd`;
// kStderr otherwise, including when the value does not parse or fstat
// fails.
LogSink ChooseLogSink(const char* journal_stream, int fd);

// The sink for this process's stderr and environment.
LogSink LogSinkFromEnvironment();

// Makes the default spdlog logger ("anomalyd") write to `sink` at `level`
// (spdlog's names: trace, debug, info, warn, error, critical, off).
void SetUpLogging(LogSink sink, const std::string& level);

// What to put before a line written straight to stderr (before logging is
// set up) so that the journal records it with priority err: "<3>" for
// kJournal (journald reads the prefix, SyslogLevelPrefix= defaults on),
// "" for kStderr.
const char* ErrorPrefix(LogSink sink);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_LOG_H_
