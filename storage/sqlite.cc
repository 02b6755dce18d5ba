#include "storage/sqlite.h"

#include <cmath>
#include <limits>

namespace anomalyd::sqlite {

Status ToStatus(int rc, sqlite3* db, const std::string& what) {
  ErrorCode code;
  switch (rc & 0xff) {
    case SQLITE_FULL:
      code = pb::STORAGE_FULL;
      break;
    case SQLITE_READONLY:
      code = pb::STORAGE_READ_ONLY;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = pb::STORAGE_LOCKED;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = pb::CORRUPT;
      break;
    case SQLITE_CONSTRAINT:
      code = pb::INVALID_ARGUMENT;
      break;
    default:
      code = pb::IO_ERROR;
      break;
  }
  // sqlite3_errmsg describes the connection's most recent error, which is
  // `rc` when it came from that connection; otherwise use the generic text.
  std::string detail = sqlite3_errstr(rc);
  if (db != nullptr && (sqlite3_extended_errcode(db) == rc ||
                        sqlite3_errcode(db) == (rc & 0xff))) {
    detail = sqlite3_errmsg(db);
  }
  return Status(
      code, what + ": " + detail + " (sqlite code " + std::to_string(rc) + ")");
}

// ---- Db -------------------------------------------------------------------

Status Db::Open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // open_v2 hands back a handle even on failure: own it before checking.
  std::unique_ptr<sqlite3, Closer> owned(raw);
  if (rc != SQLITE_OK) {
    return ToStatus(rc, raw, "opening " + path);
  }
  sqlite3_extended_result_codes(raw, 1);
  db_ = std::move(owned);
  return Status::OK();
}

Status Db::Exec(const std::string& sql, const std::string& what) {
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return ToStatus(rc, db_.get(), what);
  return Status::OK();
}

Status Db::QueryText(const std::string& sql, std::string* value) {
  Statement s;
  ANOMALYD_RETURN_IF_ERROR(s.Prepare(*this, sql));
  bool row = false;
  ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "running " + sql));
  value->clear();
  if (row) *value = s.ColumnText(0);
  return Status::OK();
}

int64_t Db::LastInsertRowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}
int64_t Db::Changes() const { return sqlite3_changes64(db_.get()); }
bool Db::InTransaction() const {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

// ---- Statement ------------------------------------------------------------

Status Statement::Prepare(const Db& db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db.get(), sql.c_str(),
                              static_cast<int>(sql.size() + 1),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, Finalizer> owned(raw);
  if (rc != SQLITE_OK) return ToStatus(rc, db.get(), "preparing " + sql);
  if (raw == nullptr) return Status::Internal("preparing empty SQL: " + sql);
  stmt_ = std::move(owned);
  db_ = db.get();
  bind_rc_ = SQLITE_OK;
  return Status::OK();
}

int Statement::ParamIndex(const char* name) const {
  return sqlite3_bind_parameter_index(stmt_.get(), name);
}

namespace {
inline void Keep(int* first, int rc) {
  if (*first == SQLITE_OK && rc != SQLITE_OK) *first = rc;
}
}  // namespace

void Statement::BindInt64(int index, int64_t value) {
  Keep(&bind_rc_, sqlite3_bind_int64(stmt_.get(), index, value));
}
void Statement::BindDouble(int index, double value) {
  Keep(&bind_rc_, sqlite3_bind_double(stmt_.get(), index, value));
}
void Statement::BindNull(int index) {
  Keep(&bind_rc_, sqlite3_bind_null(stmt_.get(), index));
}
void Statement::BindText(int index, std::string_view text) {
  // A non-null pointer even for "" so that it binds '' rather than NULL.
  Keep(&bind_rc_,
       sqlite3_bind_text64(stmt_.get(), index, text.empty() ? "" : text.data(),
                           text.size(), SQLITE_STATIC, SQLITE_UTF8));
}
void Statement::BindBlob(int index, const void* data, size_t size) {
  if (size == 0) {
    Keep(&bind_rc_, sqlite3_bind_zeroblob(stmt_.get(), index, 0));
  } else {
    Keep(&bind_rc_,
         sqlite3_bind_blob64(stmt_.get(), index, data, size, SQLITE_STATIC));
  }
}

Status Statement::Step(bool* row, const std::string& what) {
  *row = false;
  if (bind_rc_ != SQLITE_OK) {
    int rc = bind_rc_;
    bind_rc_ = SQLITE_OK;
    return ToStatus(rc, db_, what + " (binding)");
  }
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) {
    *row = true;
    return Status::OK();
  }
  if (rc == SQLITE_DONE) return Status::OK();
  return ToStatus(rc, db_, what);
}

Status Statement::Run(const std::string& what) {
  bool row = false;
  Status s = Step(&row, what);
  Reset();
  return s;
}

void Statement::Reset() {
  // sqlite3_reset repeats the last step's error; Step already reported it.
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_rc_ = SQLITE_OK;
}

bool Statement::IsNull(int col) const {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}
int64_t Statement::ColumnInt64(int col) const {
  return sqlite3_column_int64(stmt_.get(), col);
}
double Statement::ColumnDouble(int col) const {
  if (IsNull(col)) return std::numeric_limits<double>::quiet_NaN();
  return sqlite3_column_double(stmt_.get(), col);
}
std::string Statement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), col);
  int n = sqlite3_column_bytes(stmt_.get(), col);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}
std::string_view Statement::ColumnBlob(int col) const {
  const void* p = sqlite3_column_blob(stmt_.get(), col);
  int n = sqlite3_column_bytes(stmt_.get(), col);
  if (p == nullptr || n <= 0) return std::string_view();
  return std::string_view(static_cast<const char*>(p), static_cast<size_t>(n));
}

// ---- Transaction ----------------------------------------------------------

Status Transaction::Begin(Mode mode, const std::string& what) {
  const char* sql =
      mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED";
  ANOMALYD_RETURN_IF_ERROR(db_->Exec(sql, what + " (begin)"));
  open_ = true;
  return Status::OK();
}

Status Transaction::Commit(const std::string& what) {
  Status s = db_->Exec("COMMIT", what + " (commit)");
  // On failure the destructor rolls back whatever is still open.
  if (s.ok()) open_ = false;
  return s;
}

Transaction::~Transaction() {
  // SQLite may already have rolled back by itself (SQLITE_FULL, IOERR...).
  if (open_ && db_->InTransaction()) {
    sqlite3_exec(db_->get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

}  // namespace anomalyd::sqlite
