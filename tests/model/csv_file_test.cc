// ReadCsvFd and ReadCsv (model/csv_file.cc): reading descriptors to their
// end under max_bytes and cancel. Parsing itself is csv_test's.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "model/csv.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using ::anomalyd::testing::TempDir;

// Owns a descriptor; closes it once.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// A pipe: read end r, write end w.
struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    r = std::make_unique<Fd>(fds[0]);
    w = std::make_unique<Fd>(fds[1]);
  }
  std::unique_ptr<Fd> r, w;
};

void WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << std::strerror(errno);
    done += static_cast<size_t>(n);
  }
}

// "a,b\n" and rows of "1,2\n" up to at least `bytes` bytes.
std::string Table(size_t bytes) {
  std::string s = "a,b\n";
  while (s.size() < bytes) s += "1,2\n";
  return s;
}

std::string WriteFile(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("in.csv");
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(CsvFileTest, ReadsARegularFileAndLeavesTheDescriptorOpen) {
  TempDir dir;
  const std::string path = WriteFile(dir, "x,y\n1,2\n3,4\n");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  CsvTable t;
  ASSERT_OK(ReadCsvFd(fd.get(), "in.csv", CsvOptions(), &t));
  EXPECT_EQ((std::vector<std::string>{"x", "y"}), t.feature_names);
  EXPECT_EQ((std::vector<float>{1, 2, 3, 4}), t.features.data);
  EXPECT_NE(-1, ::fcntl(fd.get(), F_GETFD));  // still open: the caller's
}

TEST(CsvFileTest, ErrorsNameTheSource) {
  TempDir dir;
  const std::string path = WriteFile(dir, "x,y\n1,2\n3,oops\n");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  CsvTable t;
  const Status s = ReadCsvFd(fd.get(), "retrain.csv", CsvOptions(), &t);
  EXPECT_EQ("retrain.csv:3: column 'y' (2): 'oops' is not a number",
            s.message());
}

TEST(CsvFileTest, ReadsAPipeAcrossManyChunks) {
  Pipe p;
  const std::string text = Table(1 << 20);  // 16 read chunks
  std::thread writer([&] {
    WriteAll(p.w->get(), text);
    p.w->Close();
  });
  CsvTable t;
  const Status s = ReadCsvFd(p.r->get(), "<pipe>", CsvOptions(), &t);
  writer.join();
  ASSERT_OK(s);
  EXPECT_EQ((text.size() - 4) / 4, t.features.rows);
}

TEST(CsvFileTest, MaxBytesIsInclusiveForFilesAndPipes) {
  const std::string text = Table(100000);
  TempDir dir;
  const std::string path = WriteFile(dir, text);
  for (uint64_t max_bytes : {text.size(), text.size() - 1}) {
    const bool fits = max_bytes == text.size();
    SCOPED_TRACE(max_bytes);
    CsvOptions options;
    options.max_bytes = max_bytes;
    const std::string want =
        "more than " + std::to_string(max_bytes) + " bytes (max_bytes)";
    // A regular file: fstat's size decides before reading.
    {
      Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      CsvTable t;
      const Status s = ReadCsvFd(fd.get(), "in.csv", options, &t);
      if (fits) {
        EXPECT_OK(s);
      } else {
        EXPECT_EQ(pb::TOO_LARGE, s.code());
        EXPECT_EQ("in.csv: " + want, s.message());
        EXPECT_EQ(0, ::lseek(fd.get(), 0, SEEK_CUR));  // nothing read
      }
    }
    // A pipe has no size: the count while reading decides.
    {
      Pipe p;
      std::thread writer([&] {
        WriteAll(p.w->get(), text);
        p.w->Close();
      });
      CsvTable t;
      const Status s = ReadCsvFd(p.r->get(), "<pipe>", options, &t);
      writer.join();  // done: the reader took every byte to pass the bound
      if (fits) {
        EXPECT_OK(s);
      } else {
        EXPECT_EQ(pb::TOO_LARGE, s.code());
        EXPECT_EQ("<pipe>: " + want, s.message());
      }
    }
  }
}

// An endless source (a device a client could name) stops at the bound.
TEST(CsvFileTest, MaxBytesStopsAnEndlessSource) {
  Fd fd(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) GTEST_SKIP() << "no /dev/zero";
  CsvOptions options;
  options.max_bytes = 1 << 20;
  CsvTable t;
  const Status s = ReadCsvFd(fd.get(), "/dev/zero", options, &t);
  EXPECT_EQ(pb::TOO_LARGE, s.code()) << s.ToString();
}

TEST(CsvFileTest, CancelBeforeReadingReadsNothing) {
  TempDir dir;
  const std::string path = WriteFile(dir, "x\n1\n");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::atomic<bool> cancel{true};
  CsvOptions options;
  options.cancel = &cancel;
  CsvTable t;
  EXPECT_EQ(pb::CANCELLED, ReadCsvFd(fd.get(), "in.csv", options, &t).code());
  EXPECT_EQ(0, ::lseek(fd.get(), 0, SEEK_CUR));
  EXPECT_EQ(pb::CANCELLED, ReadCsv(path, options, &t).code());
}

// The flag is set after the reader has taken the first chunk and is waiting
// for more; the next chunk wakes it and it stops instead of reading on.
TEST(CsvFileTest, CancelWhileReadingIsCancelled) {
  Pipe p;
  std::atomic<bool> cancel{false};
  CsvOptions options;
  options.cancel = &cancel;
  Status s;
  CsvTable t;
  WriteAll(p.w->get(), "a\n1\n");
  std::thread reader([&] { s = ReadCsvFd(p.r->get(), "<pipe>", options, &t); });
  int pending = 1;
  while (pending > 0) {  // until the reader has taken the first chunk
    ASSERT_EQ(0, ::ioctl(p.r->get(), FIONREAD, &pending));
    std::this_thread::yield();
  }
  cancel = true;
  WriteAll(p.w->get(), "2\n3\n");
  reader.join();
  EXPECT_EQ(pb::CANCELLED, s.code()) << s.ToString();
}

// The daemon clears O_NONBLOCK before handing a descriptor over; if it ever
// did not, an empty pipe must be an error, not a busy loop.
TEST(CsvFileTest, WouldBlockIsIoError) {
  Pipe p;
  ASSERT_EQ(0, ::fcntl(p.r->get(), F_SETFL, O_NONBLOCK));
  CsvTable t;
  const Status s = ReadCsvFd(p.r->get(), "<pipe>", CsvOptions(), &t);
  EXPECT_EQ(pb::IO_ERROR, s.code());
  EXPECT_EQ("<pipe>: read would block (descriptor is non-blocking)",
            s.message());
}

void OnSignal(int) {}

// Signals that interrupt a blocked read (a handler without SA_RESTART) do
// not end it: the read is retried and the whole input arrives.
TEST(CsvFileTest, InterruptedReadsAreRetried) {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;  // no SA_RESTART: read() fails with EINTR
  struct sigaction old;
  ASSERT_EQ(0, ::sigaction(SIGUSR1, &sa, &old));
  Pipe p;
  Status s;
  CsvTable t;
  std::thread reader(
      [&] { s = ReadCsvFd(p.r->get(), "<pipe>", CsvOptions(), &t); });
  for (int i = 0; i < 20; ++i) {
    ::pthread_kill(reader.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  WriteAll(p.w->get(), "a\n1\n");
  p.w->Close();
  reader.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  ASSERT_OK(s);
  EXPECT_EQ(1u, t.features.rows);
}

TEST(CsvFileTest, ReadingADirectoryIsIoError) {
  TempDir dir;
  Fd fd(::open(dir.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  CsvTable t;
  EXPECT_EQ(pb::IO_ERROR, ReadCsvFd(fd.get(), "dir", CsvOptions(), &t).code());
}

// What the daemon does: quote_cells off, a client-named file that is no CSV.
TEST(CsvFileTest, QuoteCellsOffThroughADescriptor) {
  TempDir dir;
  const std::string path = WriteFile(
      dir,
      "SECRET-TOKEN-0123456789abcdef0123456789abcdef0123456789abcdef01234\n"
      "SECRET-SECOND-LINE\n");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  CsvOptions options;
  options.quote_cells = false;
  CsvTable t;
  const Status s = ReadCsvFd(fd.get(), path, options, &t);
  EXPECT_EQ(path + ":2: column 1: not a number", s.message());
}

}  // namespace
}  // namespace anomalyd
