// StateDir: the daemon's state directory — the one place that knows its
// layout (anomalyd.db, bundles/<stream>/v<N>, anomalyd.lock) — and the lock
// that keeps a second daemon out of it.
//
//   std::unique_ptr<StateDir> dir;
//   Status s = StateDir::Open("/var/lib/anomalyd", &dir);   // takes the lock
//   std::string rel = StateDir::BundleRelPath("cpu", 3);    // "bundles/cpu/v3"
//   std::string abs = dir->Resolve(rel);                    // "/var/lib/anomalyd/bundles/cpu/v3"
//
// Bundle paths are stored relative to the state directory, so a state
// directory that is moved or restored from a backup elsewhere keeps its
// models. Thread-safe: const after Open.
#ifndef ANOMALYD_DAEMON_STATE_DIR_H_
#define ANOMALYD_DAEMON_STATE_DIR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "proto/status.h"

namespace anomalyd {

class StateDir {
 public:
  // Creates `path` if needed and takes an exclusive lock on
  // <path>/anomalyd.lock (flock), held until the StateDir is destroyed and
  // released by the kernel if the process dies. The lock file holds the
  // holder's PID. Errors: FAILED_PRECONDITION naming the holder's PID when
  // another process holds the lock; IO_ERROR when the directory or the
  // lock file cannot be made. On error *out is untouched.
  static Status Open(const std::string& path, std::unique_ptr<StateDir>* out);
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  const std::string& path() const { return path_; }
  std::string DatabasePath() const { return path_ + "/anomalyd.db"; }
  std::string BundlesDir() const { return path_ + "/bundles"; }

  // "bundles/<escaped stream>/v<version>": what the model registry stores.
  // The stream name is escaped to one safe path component (letters, digits,
  // '-' and '_' kept, every other byte as %XX); an escaped name longer than
  // a file name may be (255 bytes) keeps its first 200 bytes and appends
  // '~' and a 64-bit hash of the whole name, so any 1..128-byte name works.
  static std::string BundleRelPath(const std::string& stream, uint32_t version);

  // An absolute registry path as it is; a relative one under this
  // directory.
  std::string Resolve(const std::string& bundle_path) const;

  // The registry path to store for an old absolute bundle path (rows
  // written before paths were relative): the part from the last
  // "/bundles/" on, when that names a directory under this state directory;
  // "" when the path should stay as it is.
  std::string Relativize(const std::string& bundle_path) const;

  // Whether bundles/ holds any bundle directory (bundles/*/v*): a state
  // directory whose database lost its registry still has them.
  bool HasBundles() const;

 private:
  StateDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  const std::string path_;
  const int lock_fd_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_STATE_DIR_H_
