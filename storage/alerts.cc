// SqliteStore: what the alert sender keeps (its checkpoint and the outbox of
// notifications to deliver), and the anomalies it reads in id order.
#include <string>

#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

Status CheckLimit(int64_t limit) {
  if (limit < 1 || limit > kMaxQueryLimit) {
    return Status::InvalidArgument("limit " + std::to_string(limit) + " is outside 1.." +
                                   std::to_string(kMaxQueryLimit));
  }
  return Status::OK();
}

constexpr char kOutboxColumns[] =
    "id, sink, created_us, attempts, next_attempt_us, dead, last_error, payload";

void ReadOutboxRow(const sqlite::Statement& s, OutboxRow* o) {
  o->id = s.ColumnInt64(0);
  o->sink = s.ColumnText(1);
  o->created_us = s.ColumnInt64(2);
  o->attempts = static_cast<uint32_t>(s.ColumnInt64(3));
  o->next_attempt_us = s.ColumnInt64(4);
  o->dead = s.ColumnInt64(5) != 0;
  o->last_error = s.ColumnText(6);
  o->payload = std::string(s.ColumnBlob(7));
}

}  // namespace

Status SqliteStore::LoadAlertCheckpoint(AlertCheckpoint* checkpoint) {
  Rep& r = *rep_;
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.alert_state_get, "SELECT cursor, state FROM alert_state WHERE id = 1"));
  sqlite::Statement& s = r.alert_state_get;
  sqlite::ResetOnExit reset(&s);
  bool row = false;
  ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "reading the alert checkpoint"));
  *checkpoint = AlertCheckpoint();
  if (row) {
    checkpoint->cursor = s.ColumnInt64(0);
    checkpoint->state = std::string(s.ColumnBlob(1));
  }
  return Status::OK();
}

Status SqliteStore::AnomaliesAfter(int64_t after_id, int64_t limit, std::vector<AnomalyRow>* rows) {
  ANOMALYD_RETURN_IF_ERROR(CheckLimit(limit));
  Rep& r = *rep_;
  static const std::string sql = std::string("SELECT ") + kAnomalyColumns +
                                 " FROM anomalies WHERE id > ?1 ORDER BY id LIMIT ?2";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&r.anomalies_after, sql.c_str()));
  sqlite::Statement& s = r.anomalies_after;
  sqlite::ResetOnExit reset(&s);
  s.BindInt64(1, after_id);
  s.BindInt64(2, limit);
  rows->clear();
  for (;;) {
    bool row = false;
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "reading anomalies after " + std::to_string(after_id)));
    if (!row) break;
    rows->emplace_back();
    ANOMALYD_RETURN_IF_ERROR(ReadAnomalyRow(s, &rows->back()));
  }
  return Status::OK();
}

Status SqliteStore::SaveAlerts(const AlertCheckpoint& checkpoint,
                               std::vector<OutboxRow>* notifications) {
  Rep& r = *rep_;
  const std::string what = "saving the alert checkpoint and " +
                           std::to_string(notifications->size()) + " notification(s)";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.alert_state_put,
      "INSERT OR REPLACE INTO alert_state (id, cursor, state, saved_us) VALUES (1, ?1, ?2, ?3)"));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.outbox_add,
                 "INSERT INTO alert_outbox (sink, created_us, attempts, next_attempt_us, dead, "
                 "last_error, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  const int64_t now = r.clock->NowMicros();
  std::vector<int64_t> ids;
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  {
    sqlite::Statement& s = r.alert_state_put;
    sqlite::ResetOnExit reset(&s);
    s.BindInt64(1, checkpoint.cursor);
    s.BindBlob(2, checkpoint.state.data(), checkpoint.state.size());
    s.BindInt64(3, now);
    ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  }
  for (const OutboxRow& o : *notifications) {
    sqlite::Statement& s = r.outbox_add;
    sqlite::ResetOnExit reset(&s);
    s.BindText(1, o.sink);
    s.BindInt64(2, o.created_us == 0 ? now : o.created_us);
    s.BindInt64(3, o.attempts);
    s.BindInt64(4, o.next_attempt_us);
    s.BindInt64(5, o.dead ? 1 : 0);
    s.BindText(6, o.last_error);
    s.BindBlob(7, o.payload.data(), o.payload.size());
    ANOMALYD_RETURN_IF_ERROR(s.Run(what));
    ids.push_back(sqlite3_last_insert_rowid(r.db.get()));
  }
  ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
  for (size_t i = 0; i < ids.size(); ++i) {
    OutboxRow& o = (*notifications)[i];
    o.id = ids[i];
    if (o.created_us == 0) o.created_us = now;
  }
  return Status::OK();
}

Status SqliteStore::PendingOutbox(int64_t limit, std::vector<OutboxRow>* rows) {
  ANOMALYD_RETURN_IF_ERROR(CheckLimit(limit));
  Rep& r = *rep_;
  static const std::string sql = std::string("SELECT ") + kOutboxColumns +
                                 " FROM alert_outbox WHERE dead = 0 ORDER BY id LIMIT ?1";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&r.outbox_pending, sql.c_str()));
  sqlite::Statement& s = r.outbox_pending;
  sqlite::ResetOnExit reset(&s);
  s.BindInt64(1, limit);
  rows->clear();
  for (;;) {
    bool row = false;
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "reading the alert outbox"));
    if (!row) break;
    rows->emplace_back();
    ReadOutboxRow(s, &rows->back());
  }
  return Status::OK();
}

Status SqliteStore::SettleOutbox(const std::vector<int64_t>& delivered,
                                 const std::vector<OutboxRow>& retried) {
  if (delivered.empty() && retried.empty()) return Status::OK();
  Rep& r = *rep_;
  const std::string what =
      "settling " + std::to_string(delivered.size() + retried.size()) + " alert notification(s)";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&r.outbox_delete, "DELETE FROM alert_outbox WHERE id = ?1"));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.outbox_retry,
                 "UPDATE alert_outbox SET attempts = ?2, next_attempt_us = ?3, dead = ?4, "
                 "last_error = ?5 WHERE id = ?1"));
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  for (int64_t id : delivered) {
    sqlite::Statement& s = r.outbox_delete;
    sqlite::ResetOnExit reset(&s);
    s.BindInt64(1, id);
    ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  }
  for (const OutboxRow& o : retried) {
    sqlite::Statement& s = r.outbox_retry;
    sqlite::ResetOnExit reset(&s);
    s.BindInt64(1, o.id);
    s.BindInt64(2, o.attempts);
    s.BindInt64(3, o.next_attempt_us);
    s.BindInt64(4, o.dead ? 1 : 0);
    s.BindText(5, o.last_error);
    ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  }
  return txn.Commit(what);
}

Status SqliteStore::CountOutbox(int64_t* pending, int64_t* dead) {
  Rep& r = *rep_;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.outbox_count,
      "SELECT coalesce(sum(dead = 0), 0), coalesce(sum(dead = 1), 0) FROM alert_outbox"));
  sqlite::Statement& s = r.outbox_count;
  sqlite::ResetOnExit reset(&s);
  bool row = false;
  ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "counting the alert outbox"));
  *pending = row ? s.ColumnInt64(0) : 0;
  *dead = row ? s.ColumnInt64(1) : 0;
  return Status::OK();
}

}  // namespace anomalyd
