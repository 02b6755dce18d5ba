// The choice of log sink from the environment (daemon/log.h): the journal
// only when JOURNAL_STREAM names the very file stderr is open on.
#include "daemon/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

std::string DevIno(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
         std::to_string(static_cast<unsigned long long>(st.st_ino));
}

TEST(LogSinkTest, JournalOnlyWhenJournalStreamNamesTheFd) {
  testing::TempDir tmp;
  const int fd = ::open(tmp.file("stream").c_str(), O_CREAT | O_WRONLY, 0600);
  const int other = ::open(tmp.file("other").c_str(), O_CREAT | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_GE(other, 0);
  const std::string mine = DevIno(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  const std::string dev = std::to_string(static_cast<unsigned long long>(st.st_dev));
  const std::string ino = std::to_string(static_cast<unsigned long long>(st.st_ino));
  const std::string device_only = dev + ":", inode_only = ":" + ino, negative = "-" + mine,
                    junk = mine + "x";
  const struct {
    const char* what;
    const char* journal_stream;  // nullptr: unset
    int fd;
    LogSink want;
  } kCases[] = {
      {"systemd connected this fd", mine.c_str(), fd, LogSink::kJournal},
      {"unset: started by hand", nullptr, fd, LogSink::kStderr},
      {"another file: stderr redirected inside the service", mine.c_str(), other,
       LogSink::kStderr},
      {"empty", "", fd, LogSink::kStderr},
      {"no colon", "12345", fd, LogSink::kStderr},
      {"device only", device_only.c_str(), fd, LogSink::kStderr},
      {"inode only", inode_only.c_str(), fd, LogSink::kStderr},
      {"signed", negative.c_str(), fd, LogSink::kStderr},
      {"trailing junk", junk.c_str(), fd, LogSink::kStderr},
      {"overflow", "99999999999999999999999:1", fd, LogSink::kStderr},
      {"closed fd", mine.c_str(), 1000, LogSink::kStderr},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(ChooseLogSink(c.journal_stream, c.fd), c.want) << c.what;
  }
  ::close(fd);
  ::close(other);
}

TEST(LogSinkTest, ErrorPrefixIsTheSyslogErrLevelForTheJournalOnly) {
  EXPECT_STREQ(ErrorPrefix(LogSink::kJournal), "<3>");
  EXPECT_STREQ(ErrorPrefix(LogSink::kStderr), "");
}

// Both sinks can be set up, twice over (the logger is replaced, not
// registered twice). Without journald, the systemd sink's records are lost,
// never thrown: spdlog reports a failed sink on stderr.
TEST(LogSinkTest, SetUpEitherSink) {
  SetUpLogging(LogSink::kJournal, "info");
  spdlog::info("log_test: to the journal when there is one");
  SetUpLogging(LogSink::kStderr, "warn");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  SetUpLogging(LogSink::kStderr, "info");
  EXPECT_EQ(spdlog::default_logger()->name(), "anomalyd");
}

}  // namespace
}  // namespace anomalyd
