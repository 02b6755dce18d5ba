// SqliteStore: retention of anomalies, in small transactions.
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

// Deletes up to `batch` rows per transaction with `s` (whose ?1.. are bound
// by `bind`, and whose last parameter is the batch size) until a
// transaction deletes fewer than `batch` or the budget of transactions is
// spent. Adds the rows deleted to *total.
template <typename Bind>
Status DeleteInBatches(sqlite::Db* db, sqlite::Statement* s, int limit_param,
                       Bind bind, int64_t batch, int64_t* budget,
                       int64_t* total, const std::string& what) {
  for (;;) {
    if (*budget == 0) return Status::OK();
    sqlite::Transaction txn(db);
    ANOMALYD_RETURN_IF_ERROR(
        txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
    bind(s);
    s->BindInt64(limit_param, batch);
    ANOMALYD_RETURN_IF_ERROR(s->Run(what));
    const int64_t n = db->Changes();
    ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
    *total += n;
    if (*budget > 0) --*budget;
    if (n < batch) return Status::OK();
  }
}

}  // namespace

Status SqliteStore::Prune(const RetentionPolicy& p, int64_t* deleted) {
  int64_t total = 0;
  if (deleted != nullptr) *deleted = 0;
  // The bound keeps one transaction short (see RetentionPolicy::batch_rows).
  if (p.batch_rows < 1 || p.batch_rows > 1'000'000) {
    return Status::InvalidArgument("batch_rows must be in 1..1000000");
  }
  if (p.max_age_us < 0 || p.max_rows < 0 || p.max_batches < 0) {
    return Status::InvalidArgument(
        "max_age_us, max_rows and max_batches must be >= 0");
  }
  Rep& r = *rep_;
  int64_t budget = p.max_batches > 0 ? p.max_batches : -1;
  Status st;
  if (p.max_age_us > 0) {
    ANOMALYD_RETURN_IF_ERROR(r.Prepared(
        &r.prune_age,
        "DELETE FROM anomalies WHERE id IN (SELECT id FROM anomalies "
        "WHERE scored_time_us < ?1 ORDER BY scored_time_us, id LIMIT ?2)"));
    const int64_t cutoff = r.clock->NowMicros() - p.max_age_us;
    st = DeleteInBatches(
        &r.db, &r.prune_age, 2,
        [cutoff](sqlite::Statement* s) { s->BindInt64(1, cutoff); },
        p.batch_rows, &budget, &total,
        "pruning anomalies older than " + std::to_string(p.max_age_us) + " us");
  }
  if (st.ok() && p.max_rows > 0 && budget != 0) {
    ANOMALYD_RETURN_IF_ERROR(
        r.Prepared(&r.prune_boundary,
                   "SELECT scored_time_us, id FROM anomalies "
                   "ORDER BY scored_time_us DESC, id DESC LIMIT 1 OFFSET ?1"));
    ANOMALYD_RETURN_IF_ERROR(r.Prepared(
        &r.prune_before,
        "DELETE FROM anomalies WHERE id IN (SELECT id FROM anomalies "
        "WHERE (scored_time_us, id) < (?1, ?2) "
        "ORDER BY scored_time_us, id LIMIT ?3)"));
    const std::string what =
        "pruning anomalies beyond " + std::to_string(p.max_rows) + " rows";
    // The oldest row to keep; everything before it in (time, id) goes.
    int64_t keep_time = 0, keep_id = 0;
    bool found = false;
    {
      sqlite::Statement& s = r.prune_boundary;
      sqlite::ResetOnExit reset(&s);
      s.BindInt64(1, p.max_rows - 1);
      st = s.Step(&found, what);
      if (found) {
        keep_time = s.ColumnInt64(0);
        keep_id = s.ColumnInt64(1);
      }
    }
    if (st.ok() && found) {
      st = DeleteInBatches(
          &r.db, &r.prune_before, 3,
          [keep_time, keep_id](sqlite::Statement* s) {
            s->BindInt64(1, keep_time);
            s->BindInt64(2, keep_id);
          },
          p.batch_rows, &budget, &total, what);
    }
  }
  if (deleted != nullptr) *deleted = total;
  return st;
}

}  // namespace anomalyd
