#include "daemon/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace anomalyd {
namespace {

namespace fs = std::filesystem;

// NAME_MAX of the usual Linux file systems.
constexpr size_t kMaxFileName = 255;
// Bytes of the escaped name kept before the hash of a long name.
constexpr size_t kLongNamePrefix = 200;

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string EscapeStream(const std::string& stream) {
  std::string safe;
  for (unsigned char c : stream) {
    if (std::isalnum(c) || c == '-' || c == '_') {
      safe.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      safe += buf;
    }
  }
  if (safe.size() <= kMaxFileName) return safe;
  // Never cut an escape in half: the prefix ends before a partial %XX.
  size_t cut = kLongNamePrefix;
  if (safe[cut - 1] == '%') cut -= 1;
  else if (safe[cut - 2] == '%') cut -= 2;
  char hash[20];
  std::snprintf(hash, sizeof hash, "~%016llx",
                static_cast<unsigned long long>(Fnv1a64(stream)));
  return safe.substr(0, cut) + hash;
}

// The PID written in a lock file, for the error message; "unknown" when
// it cannot be read.
std::string HolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!pid.empty() && !std::isdigit(static_cast<unsigned char>(pid.back()))) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

Status StateDir::Open(const std::string& path, std::unique_ptr<StateDir>* out) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::IoError("cannot create state_dir " + path + ": " + ec.message());
  const std::string lock_path = path + "/anomalyd.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    return Status::IoError("cannot open " + lock_path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = HolderPid(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status(pb::FAILED_PRECONDITION,
                    "state_dir " + path + " is in use by another anomalyd (PID " +
                        holder + ", lock file " + lock_path +
                        "); one daemon per state directory");
    }
    return Status::IoError("cannot lock " + lock_path + ": " + std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return Status::IoError("cannot write " + lock_path + ": " + std::strerror(err));
  }
  out->reset(new StateDir(path, fd));
  return Status::OK();
}

StateDir::~StateDir() {
  // Closing the descriptor releases the lock; the file stays (removing it
  // would race with a daemon that opened it and waits for the lock).
  ::close(lock_fd_);
}

std::string StateDir::BundleRelPath(const std::string& stream, uint32_t version) {
  return "bundles/" + EscapeStream(stream) + "/v" + std::to_string(version);
}

std::string StateDir::Resolve(const std::string& bundle_path) const {
  if (!bundle_path.empty() && bundle_path[0] == '/') return bundle_path;
  return path_ + "/" + bundle_path;
}

std::string StateDir::Relativize(const std::string& bundle_path) const {
  if (bundle_path.empty() || bundle_path[0] != '/') return "";
  const size_t at = bundle_path.rfind("/bundles/");
  if (at == std::string::npos) return "";
  const std::string rel = bundle_path.substr(at + 1);
  std::error_code ec;
  if (!fs::is_directory(Resolve(rel), ec)) return "";
  return rel;
}

bool StateDir::HasBundles() const {
  std::error_code ec;
  for (const auto& stream : fs::directory_iterator(BundlesDir(), ec)) {
    std::error_code ec2;
    if (!stream.is_directory(ec2)) continue;
    for (const auto& v : fs::directory_iterator(stream.path(), ec2)) {
      const std::string name = v.path().filename().string();
      if (name.size() > 1 && name[0] == 'v') return true;
    }
  }
  return false;
}

}  // namespace anomalyd
