// SqliteStore's private state, shared by the storage/*.cc files that
// implement its methods (sqlite_store.cc, query.cc, models.cc,
// candidates.cc, reservoir.cc, retention.cc, health.cc, alerts.cc). Private to
// storage/.
#ifndef ANOMALYD_STORAGE_SQLITE_STORE_REP_H_
#define ANOMALYD_STORAGE_SQLITE_STORE_REP_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/checkpointer.h"
#include "storage/sqlite.h"
#include "storage/sqlite_store.h"

namespace anomalyd {

// What SqliteStore::CheckFile knows of the files behind a connection
// (health.cc).
struct FileId {
  bool known = false;  // seen at least once
  uint64_t dev = 0;
  uint64_t ino = 0;
};
struct FileWatch {
  std::string db_path;             // absolute; "" for an in-memory database
  std::string wal_path, shm_path;  // "" unless a writer (WAL mode)
  FileId db, wal, shm;
  int64_t db_bytes_seen = 0;   // the largest size of db_path seen
  bool db_may_shrink = false;  // auto_vacuum: commits may shrink the file
  int64_t page_size = 0;
  // Frames in the WAL after this connection's last commit, from the WAL
  // hook, when there is no checkpointer (which keeps its own count).
  int wal_frames = 0;
};

// The columns of an anomaly in the order ReadAnomalyRow reads them.
inline constexpr char kAnomalyColumns[] =
    "id, record_id, stream, event_time_us, scored_time_us, score, "
    "reconstruction, kl, threshold, model_version, features, contributions, "
    "labels";

// Reads the row `s` stands on, selected with kAnomalyColumns. CORRUPT when
// a blob does not decode. (query.cc)
Status ReadAnomalyRow(const sqlite::Statement& s, AnomalyRow* a);

struct SqliteStore::Rep {
  StoreOptions options;
  Clock* clock = nullptr;

  // For CheckFile. Declared before db: the WAL hook of a writer without a
  // checkpointer points at it.
  FileWatch watch;

  sqlite::Db db;  // declared before the statements: destroyed after them

  // Statements prepared on first use and kept for the connection's life.
  sqlite::Statement insert_anomaly;    // one row
  sqlite::Statement insert_anomalies;  // kRowsPerInsert rows (sqlite_store.cc)
  sqlite::Statement register_model, model_status, retire_active, set_active;
  sqlite::Statement active_model, active_models, list_models, next_version;
  sqlite::Statement all_models, insert_reserved, complete_candidate;
  sqlite::Statement delete_model, delete_model_thresholds, delete_unfinished;
  sqlite::Statement delete_unfinished_thresholds, set_bundle_path;
  sqlite::Statement append_threshold, threshold_history;
  sqlite::Statement reservoir_get, reservoir_add, reservoir_seen;
  sqlite::Statement sample_put, sample_trim, samples_get, reservoir_clear;
  sqlite::Statement prune_age, prune_boundary, prune_before;
  sqlite::Statement alert_state_get, alert_state_put, anomalies_after;
  sqlite::Statement outbox_add, outbox_pending, outbox_delete, outbox_retry;
  sqlite::Statement outbox_count;
  // Anomaly queries, by SQL text (a few dozen shapes at most).
  std::map<std::string, sqlite::Statement> queries;
  // Writers with background_checkpoint only. Declared after db: stopped
  // before the writer connection closes (and checkpoints one last time).
  std::unique_ptr<sqlite::Checkpointer> checkpointer;

  // Encoding buffers of the rows bound to one INSERT (three per row: they
  // must stay unchanged until the statement has run), reused between calls.
  std::vector<std::string> insert_scratch;

  // Prepares *s with `sql` unless already prepared.
  Status Prepared(sqlite::Statement* s, const char* sql) {
    if (s->is_prepared()) return Status::OK();
    return s->Prepare(db, sql);
  }

  // Records what CheckFile compares against: the files' identities and
  // sizes now, the page size, whether the file may shrink; installs the
  // WAL hook of a writer without a checkpointer. Called at the end of Open.
  // (health.cc)
  Status WatchFiles();

  // Reads the status text and bundle path of (stream, version); *found is
  // false when it is not registered. `what` names the operation in an
  // error. (models.cc)
  Status ReadModelStatus(const std::string& stream, uint32_t version, const std::string& what,
                         bool* found, std::string* status, std::string* bundle_path);
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_SQLITE_STORE_REP_H_
