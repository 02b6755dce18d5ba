// Store's private state, shared by the storage/*.cc files that implement
// its methods. Private to storage/.
#ifndef ANOMALYD_STORAGE_STORE_REP_H_
#define ANOMALYD_STORAGE_STORE_REP_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/checkpointer.h"
#include "storage/sqlite.h"
#include "storage/store.h"

namespace anomalyd {

struct Store::Rep {
  StoreOptions options;
  Clock* clock = nullptr;
  sqlite::Db db;  // declared before the statements: destroyed after them

  // Statements prepared on first use and kept for the connection's life.
  sqlite::Statement insert_anomaly;    // one row
  sqlite::Statement insert_anomalies;  // kRowsPerInsert rows (store.cc)
  sqlite::Statement register_model, model_status, retire_active, set_active;
  sqlite::Statement active_model, active_models, list_models, next_version;
  sqlite::Statement all_models, insert_reserved, complete_candidate;
  sqlite::Statement delete_model, delete_model_thresholds, delete_unfinished;
  sqlite::Statement delete_unfinished_thresholds, set_bundle_path;
  sqlite::Statement append_threshold, threshold_history;
  sqlite::Statement reservoir_get, reservoir_add, reservoir_seen;
  sqlite::Statement sample_put, sample_trim, samples_get, reservoir_clear;
  sqlite::Statement prune_age, prune_boundary, prune_before;
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

  // Reads the status text and bundle path of (stream, version); *found is
  // false when it is not registered. `what` names the operation in an
  // error. (models.cc)
  Status ReadModelStatus(const std::string& stream, uint32_t version,
                         const std::string& what, bool* found,
                         std::string* status, std::string* bundle_path);
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_STORE_REP_H_
