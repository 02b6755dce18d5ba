// Store: opening, options, anomaly inserts. Queries are in query.cc, the
// registry in models.cc and candidates.cc, the reservoir in reservoir.cc,
// retention in retention.cc, health checks in health.cc.
#include "storage/store.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "storage/codec.h"
#include "storage/schema.h"
#include "storage/store_rep.h"

namespace anomalyd {

namespace {

class WallClock : public Clock {
 public:
  int64_t NowMicros() override { return WallMicros(); }
};

const char* SyncPragma(SyncLevel level) {
  switch (level) {
    case SyncLevel::kOff:
      return "PRAGMA synchronous = OFF";
    case SyncLevel::kFull:
      return "PRAGMA synchronous = FULL";
    case SyncLevel::kNormal:
      break;
  }
  return "PRAGMA synchronous = NORMAL";
}

Status CheckOptions(const StoreOptions& o) {
  if (o.busy_timeout_ms < 0) {
    return Status::InvalidArgument("busy_timeout_ms must be >= 0");
  }
  if (o.cache_size_kib <= 0) {
    return Status::InvalidArgument("cache_size_kib must be > 0");
  }
  if (o.max_db_bytes < 0) {
    return Status::InvalidArgument("max_db_bytes must be >= 0");
  }
  // The bound keeps one stream's reservoir loadable in memory.
  if (o.reservoir_capacity < 1 || o.reservoir_capacity > 100'000'000) {
    return Status::InvalidArgument(
        "reservoir_capacity must be in 1..100000000");
  }
  return Status::OK();
}

// Connection settings of a writer: WAL, sync level, foreign keys, size cap.
Status ConfigureWriter(const StoreOptions& o, sqlite::Db* db,
                       const std::string& path) {
  // 16 KiB pages for new files (an existing file keeps its own): anomaly
  // rows are ~450 bytes, and bigger pages mean fewer B-tree pages to dirty
  // and write per commit: +40% insert throughput over 4 KiB in our bench.
  ANOMALYD_RETURN_IF_ERROR(
      db->Exec("PRAGMA page_size = 16384", "setting the page size"));
  std::string mode;
  ANOMALYD_RETURN_IF_ERROR(db->QueryText("PRAGMA journal_mode = WAL", &mode));
  if (mode != "wal") {
    return Status::IoError("cannot put " + path + " in WAL mode (got '" + mode +
                           "'); is it on a network file system?");
  }
  ANOMALYD_RETURN_IF_ERROR(
      db->Exec(SyncPragma(o.sync), "setting the synchronous level"));
  if (o.max_db_bytes > 0) {
    std::string page_size;
    ANOMALYD_RETURN_IF_ERROR(db->QueryText("PRAGMA page_size", &page_size));
    const int64_t pages = std::max<int64_t>(
        1, o.max_db_bytes / std::max<int64_t>(1, std::strtoll(page_size.c_str(),
                                                              nullptr, 10)));
    std::string ignored;
    ANOMALYD_RETURN_IF_ERROR(db->QueryText(
        "PRAGMA max_page_count = " + std::to_string(pages), &ignored));
  }
  return Status::OK();
}

}  // namespace

Clock* SystemClock() {
  static WallClock* clock = new WallClock;  // never destroyed: lives forever
  return clock;
}

Store::Store(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Store::~Store() = default;

int Store::CurrentSchemaVersion() { return schema::kCurrentVersion; }

Status Store::Open(const StoreOptions& options, const std::string& path,
                   std::unique_ptr<Store>* store) {
  ANOMALYD_RETURN_IF_ERROR(CheckOptions(options));
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  rep->clock = options.clock != nullptr ? options.clock : SystemClock();

  int flags = SQLITE_OPEN_NOMUTEX;  // one thread per connection
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite::Db& db = rep->db;
  ANOMALYD_RETURN_IF_ERROR(db.Open(path, flags));
  if (!options.read_only && sqlite3_db_readonly(db.get(), "main") == 1) {
    return Status(pb::STORAGE_READ_ONLY,
                  "opening " + path + " for writing: the file is read-only");
  }
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);
  ANOMALYD_RETURN_IF_ERROR(
      db.Exec("PRAGMA foreign_keys = ON; PRAGMA cache_size = -" +
                  std::to_string(options.cache_size_kib),
              "configuring " + path));
  if (options.read_only) {
    ANOMALYD_RETURN_IF_ERROR(schema::CheckReadable(&db).WithContext(path));
  } else {
    // Refuse a foreign or newer file before WAL mode changes it.
    ANOMALYD_RETURN_IF_ERROR(schema::CheckMigratable(&db).WithContext(path));
    ANOMALYD_RETURN_IF_ERROR(ConfigureWriter(options, &db, path));
    ANOMALYD_RETURN_IF_ERROR(schema::Migrate(&db).WithContext(path));
    if (options.background_checkpoint) {
      ANOMALYD_RETURN_IF_ERROR(
          sqlite::Checkpointer::Start(db, path, SyncPragma(options.sync),
                                      &rep->checkpointer)
              .WithContext(path));
    }
  }
  ANOMALYD_RETURN_IF_ERROR(rep->WatchFiles().WithContext(path));
  store->reset(new Store(std::move(rep)));
  return Status::OK();
}

namespace {

Status CheckAnomaly(const AnomalyRow& r, size_t index) {
  if (std::isnan(r.score) || std::isnan(r.reconstruction) || std::isnan(r.kl) ||
      std::isnan(r.threshold)) {
    return Status::InvalidArgument(
        "anomaly " + std::to_string(index) + " (record '" + r.record_id +
        "'): score, reconstruction, kl and threshold must not be NaN");
  }
  return Status::OK();
}

// Rows per multi-row INSERT. One statement keeps its cursors open from row
// to row, so appends to the table and to the time indexes skip the descent
// from the root, and the per-statement work (opening cursors, the
// AUTOINCREMENT counter) is paid once per 64 rows. With OR ROLLBACK (see
// InsertSql) it doubled rows per CPU-second over one statement per row
// (bench/RESULTS.md); 256 or 1,024 rows did no better. 64 x 12 parameters
// stays below 999, the smallest parameter limit SQLite builds have had.
constexpr size_t kRowsPerInsert = 64;
constexpr int kInsertColumns = 12;

// The INSERT of `rows` anomalies. OR ROLLBACK: a multi-row INSERT that may
// fail half-way otherwise opens a statement journal, copying every page it
// changes that existed before it (index leaves, the table's last page) to
// a temporary file so as to undo only itself; that tripled the writes. A
// failed row now rolls back the whole transaction, which is what a failed
// batch does anyway (the Transaction guard sees it is already over). Errors
// such as SQLITE_FULL roll back the transaction too when no statement
// journal is open.
std::string InsertSql(size_t rows) {
  std::string sql =
      "INSERT OR ROLLBACK INTO anomalies (record_id, stream, event_time_us, "
      "scored_time_us, score, reconstruction, kl, threshold, model_version, "
      "features, contributions, labels) VALUES ";
  for (size_t i = 0; i < rows; ++i) {
    sql += i == 0 ? "(?" : ",(?";
    for (int c = 1; c < kInsertColumns; ++c) sql += ",?";
    sql += ")";
  }
  return sql;
}

// Binds `a` to parameters first + 1 .. first + kInsertColumns of `s`.
// scratch[0..2] hold encodings that must outlive the statement's step.
void BindAnomaly(const AnomalyRow& a, int64_t now, int first,
                 sqlite::Statement* s, std::string* scratch) {
  s->BindText(first + 1, a.record_id);
  s->BindText(first + 2, a.stream);
  s->BindInt64(first + 3, a.event_time_us);
  s->BindInt64(first + 4, a.scored_time_us != 0 ? a.scored_time_us : now);
  s->BindDouble(first + 5, a.score);
  s->BindDouble(first + 6, a.reconstruction);
  s->BindDouble(first + 7, a.kl);
  s->BindDouble(first + 8, a.threshold);
  s->BindInt64(first + 9, a.model_version);
  std::string_view f = codec::FloatBytes(a.features, &scratch[0]);
  s->BindBlob(first + 10, f.data(), f.size());
  std::string_view c = codec::FloatBytes(a.contributions, &scratch[1]);
  s->BindBlob(first + 11, c.data(), c.size());
  codec::EncodeLabels(a.labels, &scratch[2]);
  s->BindBlob(first + 12, scratch[2].data(), scratch[2].size());
}

}  // namespace

Status Store::InsertAnomalies(std::vector<AnomalyRow>* batch) {
  if (batch->empty()) return Status::OK();
  for (size_t i = 0; i < batch->size(); ++i) {
    ANOMALYD_RETURN_IF_ERROR(CheckAnomaly((*batch)[i], i));
  }
  Rep& r = *rep_;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&r.insert_anomaly, InsertSql(1).c_str()));
  if (batch->size() >= kRowsPerInsert) {
    ANOMALYD_RETURN_IF_ERROR(
        r.Prepared(&r.insert_anomalies, InsertSql(kRowsPerInsert).c_str()));
  }
  r.insert_scratch.resize(3 * kRowsPerInsert);
  const std::string what =
      "inserting a batch of " + std::to_string(batch->size()) + " anomalies";
  const int64_t now = r.clock->NowMicros();
  std::vector<int64_t> ids;
  ids.reserve(batch->size());

  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  for (size_t done = 0; done < batch->size();) {
    const size_t n =
        batch->size() - done >= kRowsPerInsert ? kRowsPerInsert : 1;
    sqlite::Statement& s = n == 1 ? r.insert_anomaly : r.insert_anomalies;
    for (size_t i = 0; i < n; ++i) {
      BindAnomaly((*batch)[done + i], now, static_cast<int>(i) * kInsertColumns,
                  &s, &r.insert_scratch[3 * i]);
    }
    ANOMALYD_RETURN_IF_ERROR(s.Run(what));
    // One statement's rows get consecutive ids: AUTOINCREMENT gives each
    // new row 1 + the largest id so far, and this connection holds the
    // write lock.
    const int64_t last = r.db.LastInsertRowid();
    for (size_t i = 0; i < n; ++i) {
      ids.push_back(last - static_cast<int64_t>(n - 1 - i));
    }
    done += n;
  }
  ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
  for (size_t i = 0; i < batch->size(); ++i) {
    AnomalyRow& a = (*batch)[i];
    a.id = ids[i];
    if (a.scored_time_us == 0) a.scored_time_us = now;
  }
  return Status::OK();
}

}  // namespace anomalyd
