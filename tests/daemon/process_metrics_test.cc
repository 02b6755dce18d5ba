// The process_* metrics' reader (daemon/process_metrics.h).
#include "daemon/process_metrics.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

namespace anomalyd {
namespace {

TEST(ProcessMetricsTest, ParsesProcStatWithSpacesAndParenthesesInTheCommand) {
  // Fields 1..24 of proc(5): utime 14 = 250 ticks, stime 15 = 150,
  // vsize 23 = 123456789 bytes, rss 24 = 1000 pages.
  const std::string stat =
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 "
      "7 0 12345 123456789 1000 18446744073709551615";
  ProcessStats p;
  ASSERT_TRUE(ParseProcStat(stat, /*ticks_per_second=*/100, /*page_bytes=*/4096, &p));
  EXPECT_DOUBLE_EQ(p.cpu_seconds, 4.0);
  EXPECT_EQ(p.virtual_bytes, 123456789);
  EXPECT_EQ(p.resident_bytes, 1000 * 4096);
}

TEST(ProcessMetricsTest, RefusesTruncatedText) {
  ProcessStats p;
  EXPECT_FALSE(ParseProcStat("4242 (x) S 1 2 3", 100, 4096, &p));
  EXPECT_FALSE(ParseProcStat("no parenthesis at all", 100, 4096, &p));
}

TEST(ProcessMetricsTest, ReadsThisProcess) {
  ProcessStats before;
  ASSERT_TRUE(ReadProcessStats(&before));
  EXPECT_GT(before.resident_bytes, 0);
  EXPECT_GE(before.virtual_bytes, before.resident_bytes);
  EXPECT_GE(before.open_fds, 3);  // stdin, stdout, stderr at least
  const int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  ProcessStats after;
  ASSERT_TRUE(ReadProcessStats(&after));
  ::close(fd);
  EXPECT_EQ(after.open_fds, before.open_fds + 1);
}

}  // namespace
}  // namespace anomalyd
