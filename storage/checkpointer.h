// Checkpointer: copies a writer's WAL back into the database file on a
// thread of its own, so that a commit does not wait for the copy and its
// fsyncs (SQLite's automatic checkpoint runs inside the commit that crosses
// its threshold). Private to storage/.
#ifndef ANOMALYD_STORAGE_CHECKPOINTER_H_
#define ANOMALYD_STORAGE_CHECKPOINTER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proto/status.h"
#include "storage/sqlite.h"

namespace anomalyd::sqlite {

// Watches the commits of one writer connection (through its WAL hook, which
// it takes over from SQLite's automatic checkpoints) and checkpoints with a
// connection of its own. Thread-safe as far as its own thread goes; the
// writer connection is used only from the writer's thread.
class Checkpointer {
 public:
  // A PASSIVE checkpoint starts in the background once the WAL holds this
  // many frames (pages): SQLite's own automatic checkpoint threshold.
  static constexpr int kStartFrames = 1000;
  // Past this many frames the writer checkpoints itself after its commit,
  // once the background checkpoint has finished: the bound on the WAL
  // (64 MiB of 16 KiB pages) when commits come faster than checkpoints.
  static constexpr int kMaxFrames = 4000;

  // Opens a second connection to the database at `path`, whose writer
  // connection is `writer`, with `synchronous_pragma` (the writer's
  // "PRAGMA synchronous = ..."), takes over the writer's WAL hook and starts
  // the thread. REQUIRES: writer is in WAL mode and outlives *out.
  static Status Start(const Db& writer, const std::string& path,
                      const std::string& synchronous_pragma,
                      std::unique_ptr<Checkpointer>* out);

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  // Gives the WAL hook back (no automatic checkpoints: the writer's close
  // checkpoints) and ends the thread after its current checkpoint.
  ~Checkpointer();

  // Checkpoints finished so far by the thread and by the writer (for
  // tests).
  int background_runs() const;
  int writer_runs() const;

  // Frames in the WAL after the writer's last commit (SQLite's mxFrame; the
  // WAL file holds at least 32 + frames * (24 + page size) bytes then); 0
  // before the first commit. Call from the writer's thread only.
  int last_commit_frames() const { return last_commit_frames_; }

 private:
  Checkpointer(sqlite3* writer, Db own);
  static int OnCommit(void* self, sqlite3* db, const char* name, int frames);
  void Run();

  sqlite3* const writer_;
  Db own_;  // used by thread_ only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;   // a commit crossed kStartFrames
  bool running_ = false;  // thread_ is checkpointing
  bool stop_ = false;
  int background_runs_ = 0;
  int writer_runs_ = 0;
  int last_commit_frames_ = 0;  // writer's thread only
  std::thread thread_;          // last: starts after the members it uses
};

}  // namespace anomalyd::sqlite

#endif  // ANOMALYD_STORAGE_CHECKPOINTER_H_
