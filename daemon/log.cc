#include "daemon/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>

namespace anomalyd {
namespace {

// A whole decimal number; false on anything else (or overflow).
bool ParseUnsigned(const std::string& s, unsigned long long* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  *out = std::strtoull(s.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

}  // namespace

LogSink ChooseLogSink(const char* journal_stream, int fd) {
  if (journal_stream == nullptr) return LogSink::kStderr;
  const std::string v(journal_stream);
  const size_t colon = v.find(':');
  unsigned long long dev = 0, ino = 0;
  if (colon == std::string::npos || !ParseUnsigned(v.substr(0, colon), &dev) ||
      !ParseUnsigned(v.substr(colon + 1), &ino)) {
    return LogSink::kStderr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return LogSink::kStderr;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
                 static_cast<unsigned long long>(st.st_ino) == ino
             ? LogSink::kJournal
             : LogSink::kStderr;
}

LogSink LogSinkFromEnvironment() {
  return ChooseLogSink(std::getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

void SetUpLogging(LogSink sink, const std::string& level) {
  spdlog::drop("anomalyd");  // set up again: replace it
  std::shared_ptr<spdlog::logger> logger;
  if (sink == LogSink::kJournal) {
    // The message alone: journald adds the time, the PID and the unit, and
    // keeps the priority as a field. SYSLOG_IDENTIFIER is the logger name.
    logger = spdlog::systemd_logger_mt("anomalyd");
  } else {
    logger = spdlog::stderr_color_mt("anomalyd");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

const char* ErrorPrefix(LogSink sink) { return sink == LogSink::kJournal ? SD_ERR : ""; }

}  // namespace anomalyd
