// LD_PRELOAD shim for storage-fault tests of the real daemon. While the file
// named by ANOMALYD_FAULT_FILE starts with "ENOSPC" or "EROFS", every
// pwrite64 to a file whose path contains ANOMALYD_FAULT_PATH fails with that
// errno, as on a full disk or a file system remounted read-only; emptying
// the file ends the fault. SQLite writes the database, its WAL and its
// shared memory through pwrite64 (nothing else in the daemon does), so the
// daemon's storage fails exactly as it would on a real disk. Needs no mount
// and no privilege, unlike a small tmpfs or a read-only remount.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using PwriteFn = ssize_t (*)(int, const void*, size_t, off64_t);

// The errno writes fail with now; 0 when there is no fault.
int ActiveFault() {
  const char* control = std::getenv("ANOMALYD_FAULT_FILE");
  if (control == nullptr) return 0;
  const int fd = ::open(control, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8] = {0};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n >= 6 && std::strncmp(buf, "ENOSPC", 6) == 0) return ENOSPC;
  if (n >= 5 && std::strncmp(buf, "EROFS", 5) == 0) return EROFS;
  return 0;
}

// Whether `fd` is one of the files under test.
bool Targeted(int fd) {
  const char* match = std::getenv("ANOMALYD_FAULT_PATH");
  if (match == nullptr) return true;
  char link[64], path[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, path, sizeof path - 1);
  if (n < 0) return false;
  path[n] = '\0';
  return std::strstr(path, match) != nullptr;
}

}  // namespace

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  static const PwriteFn real = reinterpret_cast<PwriteFn>(dlsym(RTLD_NEXT, "pwrite64"));
  const int fault = ActiveFault();
  if (fault != 0 && Targeted(fd)) {
    errno = fault;
    return -1;
  }
  return real(fd, buf, count, offset);
}
