#include "storage/checkpointer.h"

#include <string>
#include <utility>

namespace anomalyd::sqlite {

Status Checkpointer::Start(const Db& writer, const std::string& path,
                           const std::string& synchronous_pragma,
                           std::unique_ptr<Checkpointer>* out) {
  Db own;
  ANOMALYD_RETURN_IF_ERROR(
      own.Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX));
  // The checkpointing connection decides the fsyncs of a checkpoint.
  ANOMALYD_RETURN_IF_ERROR(own.Exec(
      synchronous_pragma, "setting the checkpointer's synchronous level"));
  // A connection finds out that the file is in WAL mode (and opens the
  // WAL) at its first read; before that a checkpoint does nothing.
  std::string ignored;
  ANOMALYD_RETURN_IF_ERROR(own.QueryText("PRAGMA schema_version", &ignored));
  out->reset(new Checkpointer(writer.get(), std::move(own)));
  return Status::OK();
}

Checkpointer::Checkpointer(sqlite3* writer, Db own)
    : writer_(writer), own_(std::move(own)), thread_([this] { Run(); }) {
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(writer_, &Checkpointer::OnCommit, this);
}

Checkpointer::~Checkpointer() {
  sqlite3_wal_hook(writer_, nullptr, nullptr);
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

int Checkpointer::background_runs() const {
  std::lock_guard<std::mutex> l(mu_);
  return background_runs_;
}

int Checkpointer::writer_runs() const {
  std::lock_guard<std::mutex> l(mu_);
  return writer_runs_;
}

// On the writer's thread, after each commit (the write lock is released).
// Like SQLite's automatic checkpoint, it returns SQLITE_OK whatever happens:
// the commit is done, and a checkpoint that failed is retried after the next
// one.
int Checkpointer::OnCommit(void* arg, sqlite3* db, const char* name,
                           int frames) {
  auto* self = static_cast<Checkpointer*>(arg);
  self->last_commit_frames_ = frames;
  if (frames < kStartFrames) return SQLITE_OK;
  std::unique_lock<std::mutex> l(self->mu_);
  if (frames < kMaxFrames) {
    self->wanted_ = true;
    l.unlock();
    self->cv_.notify_all();
    return SQLITE_OK;
  }
  // The thread falls behind. A checkpoint copies only the frames committed
  // when it began, and SQLite starts the WAL over only when every frame is
  // copied, so under a steady stream of commits the WAL would grow without
  // bound. Wait for the thread, then copy the rest here, before the next
  // write transaction.
  self->cv_.wait(l, [self] { return !self->running_; });
  self->wanted_ = false;
  l.unlock();
  sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                            nullptr);
  l.lock();
  ++self->writer_runs_;
  return SQLITE_OK;
}

void Checkpointer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [this] { return wanted_ || stop_; });
    if (stop_) return;
    wanted_ = false;
    running_ = true;
    l.unlock();
    // PASSIVE: never waits for the writer or readers; copies what it can.
    sqlite3_wal_checkpoint_v2(own_.get(), "main", SQLITE_CHECKPOINT_PASSIVE,
                              nullptr, nullptr);
    l.lock();
    running_ = false;
    ++background_runs_;
    cv_.notify_all();
  }
}

}  // namespace anomalyd::sqlite
