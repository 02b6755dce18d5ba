// A thin RAII layer over the SQLite C API: a connection, a prepared
// statement and a transaction guard. Private to storage/. Not thread-safe:
// each object belongs to the thread that uses its connection.
#ifndef ANOMALYD_STORAGE_SQLITE_H_
#define ANOMALYD_STORAGE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proto/status.h"

namespace anomalyd::sqlite {

// Maps a SQLite result code to a Status whose message is
// "<what>: <SQLite's message>". SQLITE_FULL -> STORAGE_FULL, SQLITE_READONLY
// -> STORAGE_READ_ONLY, SQLITE_BUSY/LOCKED -> STORAGE_LOCKED,
// SQLITE_CORRUPT/NOTADB -> CORRUPT, SQLITE_CONSTRAINT -> INVALID_ARGUMENT,
// anything else -> IO_ERROR. `db` (may be nullptr) supplies the detail.
Status ToStatus(int rc, sqlite3* db, const std::string& what);

// One connection. Movable, not copyable; closing happens in the destructor
// (sqlite3_close_v2, so statements still alive do not leak it).
class Db {
 public:
  Db() = default;
  Db(Db&&) = default;
  Db& operator=(Db&&) = default;

  // Opens `path` with sqlite3_open_v2 `flags` and turns on extended result
  // codes. On error the connection stays closed.
  Status Open(const std::string& path, int flags);

  bool is_open() const { return db_ != nullptr; }
  sqlite3* get() const { return db_.get(); }

  // Runs one or more SQL statements that return no rows we need.
  Status Exec(const std::string& sql, const std::string& what);

  // Runs a PRAGMA-like statement returning one value; *value gets its text.
  Status QueryText(const std::string& sql, std::string* value);

  int64_t LastInsertRowid() const;
  int64_t Changes() const;  // rows changed by the last statement
  bool InTransaction() const;

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
};

// A prepared statement, prepared once and reused: bind, Step until done,
// Reset (which also clears bindings). Column and bind indexes follow SQLite:
// binds from 1, columns from 0. Bind errors are kept and reported by the
// next Step.
class Statement {
 public:
  Statement() = default;
  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  // REQUIRES: db is open and outlives this statement.
  Status Prepare(const Db& db, const std::string& sql);
  bool is_prepared() const { return stmt_ != nullptr; }

  // Index of a named parameter (":name"), 0 when the SQL has none.
  int ParamIndex(const char* name) const;

  void BindInt64(int index, int64_t value);
  void BindDouble(int index, double value);  // NaN binds NULL (SQLite rule)
  void BindNull(int index);
  // `text` and `data` must stay valid and unchanged until Reset() (bound
  // with SQLITE_STATIC: no copy). An empty blob binds a zero-length blob.
  void BindText(int index, std::string_view text);
  void BindBlob(int index, const void* data, size_t size);

  // Steps once. *row is true when a row is ready, false when done.
  // `what` names the operation in an error message.
  Status Step(bool* row, const std::string& what);
  // Steps a statement that returns no rows.
  Status Run(const std::string& what);
  // Resets for reuse and clears bindings; ends the statement's read.
  void Reset();

  bool IsNull(int col) const;
  int64_t ColumnInt64(int col) const;
  double ColumnDouble(int col) const;  // NULL reads as NaN
  std::string ColumnText(int col) const;
  // Valid until the next Step or Reset.
  std::string_view ColumnBlob(int col) const;

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

// Resets a statement when it goes out of scope, so an early return never
// leaves a read open (which would pin an old WAL snapshot).
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement* s) : s_(s) {}
  ~ResetOnExit() { s_->Reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Statement* s_;
};

// A transaction guard: Begin, then Commit; rolls back in the destructor
// when not committed (also after SQLite rolled back by itself, e.g. on a
// full disk). Writers use kImmediate so that lock contention shows up at
// Begin (as STORAGE_LOCKED after the busy timeout) rather than mid-way.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };

  explicit Transaction(Db* db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin(Mode mode, const std::string& what);
  Status Commit(const std::string& what);

 private:
  Db* db_;
  bool open_ = false;
};

}  // namespace anomalyd::sqlite

#endif  // ANOMALYD_STORAGE_SQLITE_H_
