// SqliteStore: health checks of the database file (CheckFile, QuickCheck).
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

// Bytes of the WAL's file header and of each frame's header (SQLite's WAL
// format: https://www.sqlite.org/walformat.html).
constexpr int64_t kWalHeaderBytes = 32;
constexpr int64_t kWalFrameHeaderBytes = 24;

// quick_check stops after this many problems; the message quotes them all.
constexpr int kQuickCheckMaxLines = 5;

// stat() of `path`. *exists is false (and OK) when it is missing.
Status Stat(const std::string& path, bool* exists, struct stat* st) {
  if (::stat(path.c_str(), st) == 0) {
    *exists = true;
    return Status::OK();
  }
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR) {
    *exists = false;
    return Status::OK();
  }
  return Status::IoError("stat " + path + ": " + std::strerror(err));
}

void Remember(const struct stat& st, FileId* id) {
  id->known = true;
  id->dev = static_cast<uint64_t>(st.st_dev);
  id->ino = static_cast<uint64_t>(st.st_ino);
}

bool SameFile(const struct stat& st, const FileId& id) {
  return static_cast<uint64_t>(st.st_dev) == id.dev &&
         static_cast<uint64_t>(st.st_ino) == id.ino;
}

std::string Identity(uint64_t dev, uint64_t ino) {
  return "device " + std::to_string(dev) + ", inode " + std::to_string(ino);
}

Status Replaced(const std::string& path, const struct stat& st,
                const FileId& id) {
  return Status::Corrupt(
      path + " now names another file (" +
      Identity(static_cast<uint64_t>(st.st_dev),
               static_cast<uint64_t>(st.st_ino)) +
      ") than the one opened (" + Identity(id.dev, id.ino) +
      "): it was replaced while open, and this connection still reads and "
      "writes the old one");
}

// Without a checkpointer, this hook records each commit's frames and does
// what SQLite's automatic checkpoint (itself a WAL hook, which this one
// replaces) does: a PASSIVE checkpoint inside the commit that leaves 1,000
// frames or more.
int RecordCommit(void* arg, sqlite3* db, const char* name, int frames) {
  static_cast<FileWatch*>(arg)->wal_frames = frames;
  if (frames >= sqlite::Checkpointer::kStartFrames) {
    sqlite3_wal_checkpoint(db, name);
  }
  return SQLITE_OK;
}

}  // namespace

Status SqliteStore::Rep::WatchFiles() {
  const char* name = sqlite3_db_filename(db.get(), "main");
  if (name == nullptr || name[0] == '\0') return Status::OK();  // in memory
  watch.db_path = name;
  std::string text;
  ANOMALYD_RETURN_IF_ERROR(db.QueryText("PRAGMA page_size", &text));
  watch.page_size = std::strtoll(text.c_str(), nullptr, 10);
  // With auto_vacuum (never set by anomalyd, but a file may come with it)
  // commits give freed pages back and the file shrinks.
  ANOMALYD_RETURN_IF_ERROR(db.QueryText("PRAGMA auto_vacuum", &text));
  watch.db_may_shrink = text != "0";
  struct stat st;
  bool exists = false;
  ANOMALYD_RETURN_IF_ERROR(Stat(watch.db_path, &exists, &st));
  if (!exists) {
    return Status::IoError(watch.db_path + " is missing right after opening");
  }
  Remember(st, &watch.db);
  watch.db_bytes_seen = static_cast<int64_t>(st.st_size);
  if (options.read_only) return Status::OK();
  // A writer is in WAL mode (ConfigureWriter). Both files exist from the
  // connection's first read until the last connection to the file closes.
  watch.wal_path = sqlite3_filename_wal(name);
  watch.shm_path = watch.db_path + "-shm";
  ANOMALYD_RETURN_IF_ERROR(Stat(watch.wal_path, &exists, &st));
  if (exists) Remember(st, &watch.wal);
  ANOMALYD_RETURN_IF_ERROR(Stat(watch.shm_path, &exists, &st));
  if (exists) Remember(st, &watch.shm);
  if (checkpointer == nullptr)
    sqlite3_wal_hook(db.get(), &RecordCommit, &watch);
  return Status::OK();
}

Status SqliteStore::CheckFile() {
  FileWatch& w = rep_->watch;
  if (w.db_path.empty()) return Status::OK();
  struct stat st;
  bool exists = false;
  ANOMALYD_RETURN_IF_ERROR(Stat(w.db_path, &exists, &st));
  if (!exists) {
    return Status::Corrupt(
        w.db_path +
        " was removed while open: this connection still writes the deleted "
        "file, which is lost when it closes");
  }
  if (!SameFile(st, w.db)) return Replaced(w.db_path, st, w.db);
  const int64_t size = static_cast<int64_t>(st.st_size);
  if (size < w.db_bytes_seen && !w.db_may_shrink) {
    return Status::Corrupt(
        w.db_path + " was truncated while open: " + std::to_string(size) +
        " bytes, down from " + std::to_string(w.db_bytes_seen));
  }
  if (size > w.db_bytes_seen) w.db_bytes_seen = size;
  if (w.wal_path.empty()) return Status::OK();

  const int frames = rep_->checkpointer != nullptr
                         ? rep_->checkpointer->last_commit_frames()
                         : w.wal_frames;
  ANOMALYD_RETURN_IF_ERROR(Stat(w.wal_path, &exists, &st));
  if (!exists) {
    if (!w.wal.known && frames == 0) return Status::OK();  // none yet
    return Status::Corrupt(
        w.wal_path + " (the write-ahead log of " + w.db_path +
        ") was removed while open: commits not yet copied into the database "
        "file are lost when this connection closes");
  }
  if (!w.wal.known) Remember(st, &w.wal);
  if (!SameFile(st, w.wal)) return Replaced(w.wal_path, st, w.wal);
  // The WAL never shrinks under the store: its checkpoints are PASSIVE, it
  // sets no journal_size_limit (which would, at a commit, still keep what
  // that commit wrote), and only the last connection's close removes it.
  const int64_t wrote =
      frames == 0
          ? 0
          : kWalHeaderBytes + frames * (kWalFrameHeaderBytes + w.page_size);
  if (static_cast<int64_t>(st.st_size) < wrote) {
    return Status::Corrupt(w.wal_path + " was truncated while open: " +
                           std::to_string(st.st_size) +
                           " bytes, but the last commit wrote up to byte " +
                           std::to_string(wrote));
  }

  ANOMALYD_RETURN_IF_ERROR(Stat(w.shm_path, &exists, &st));
  if (!exists) {
    if (!w.shm.known) return Status::OK();
    return Status::Corrupt(
        w.shm_path + " (the WAL index of " + w.db_path +
        ") was removed while open: a connection opened now would not see "
        "this one's locks");
  }
  if (!w.shm.known) Remember(st, &w.shm);
  if (!SameFile(st, w.shm)) return Replaced(w.shm_path, st, w.shm);
  return Status::OK();
}

Status SqliteStore::QuickCheck() {
  Rep& r = *rep_;
  const std::string what =
      "quick_check of " +
      (r.watch.db_path.empty() ? std::string("the database") : r.watch.db_path);
  // Drops the connection's cached pages, so that the check reads what is
  // on disk now rather than what this connection read before.
  sqlite3_db_release_memory(r.db.get());
  sqlite::Statement s;
  ANOMALYD_RETURN_IF_ERROR(s.Prepare(
      r.db, "PRAGMA quick_check(" + std::to_string(kQuickCheckMaxLines) + ")"));
  sqlite::ResetOnExit reset(&s);
  std::string lines;
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (!row) break;
    const std::string line = s.ColumnText(0);
    if (line == "ok") continue;
    lines += (lines.empty() ? "" : "; ") + line;
  }
  if (lines.empty()) return Status::OK();
  return Status::Corrupt(what + " found damage: " + lines);
}

}  // namespace anomalyd
