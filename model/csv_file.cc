// Reading CSV input from descriptors and paths (model/csv.h): the part of
// the CSV reader that touches the OS. Parsing lives in csv.cc.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <new>

#include "model/csv.h"

namespace anomalyd {
namespace {

// Bytes per read(2): large enough that syscalls cost nothing next to
// parsing, small enough to be the slack allowed past max_bytes.
constexpr size_t kReadChunk = size_t{1} << 16;

Status TooLarge(const std::string& source, uint64_t max_bytes) {
  return Status(pb::TOO_LARGE, source + ": more than " +
                                   std::to_string(max_bytes) +
                                   " bytes (max_bytes)");
}

bool Cancelled(const CsvOptions& options) {
  return options.cancel != nullptr &&
         options.cancel->load(std::memory_order_relaxed);
}

// Reads `fd` to its end into *text under the bounds of `options`.
Status ReadAll(int fd, const std::string& source, const CsvOptions& options,
               std::string* text) {
  // A regular file states its size: one allocation of the right size, and
  // an oversized file is refused before a byte of it is read. The size is
  // only a hint (the file may grow, /proc files say 0); the loop below is
  // what enforces max_bytes.
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (options.max_bytes > 0 && size > options.max_bytes) {
      return TooLarge(source, options.max_bytes);
    }
    text->reserve(static_cast<size_t>(size));
  }
  std::unique_ptr<char[]> chunk(new char[kReadChunk]);
  for (;;) {
    if (Cancelled(options))
      return Status(pb::CANCELLED, source + ": cancelled");
    const ssize_t n = ::read(fd, chunk.get(), kReadChunk);
    if (n == 0) return Status::OK();
    if (n < 0) {
      if (errno == EINTR) continue;
      // The caller was to clear O_NONBLOCK; waiting here for data that may
      // never come (a FIFO without a writer) would hang the reader.
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::IoError(
            source + ": read would block (descriptor is non-blocking)");
      }
      return Status::IoError(source + ": read failed: " + std::strerror(errno));
    }
    const size_t got = static_cast<size_t>(n);
    if (options.max_bytes > 0 && text->size() + got > options.max_bytes) {
      return TooLarge(source, options.max_bytes);
    }
    text->append(chunk.get(), got);
  }
}

}  // namespace

Status ReadCsvFd(int fd, const std::string& source, const CsvOptions& options,
                 CsvTable* table) {
  std::string text;
  try {
    ANOMALYD_RETURN_IF_ERROR(ReadAll(fd, source, options, &text));
  } catch (const std::bad_alloc&) {
    // Without max_bytes a file can be larger than memory; that is the
    // input's fault, and no exception leaves this library.
    return Status(pb::TOO_LARGE, source + ": too large to read into memory");
  }
  return ParseCsv(text, source, options, table);
}

Status ReadCsv(const std::string& path, const CsvOptions& options,
               CsvTable* table) {
  if (path == "-") return ReadCsvFd(STDIN_FILENO, "<stdin>", options, table);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(path + ": " + std::strerror(errno));
  const Status s = ReadCsvFd(fd, path, options, table);
  ::close(fd);
  return s;
}

}  // namespace anomalyd
