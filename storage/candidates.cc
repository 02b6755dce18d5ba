// SqliteStore: the life of a training's model version, from reservation to a
// completed candidate (or its deletion). Activation is in models.cc.
#include <limits>

#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

std::string ModelName(const std::string& stream, uint32_t version) {
  return "model " + std::to_string(version) + " of stream '" + stream + "'";
}

Status FailedPrecondition(std::string message) {
  return Status(pb::FAILED_PRECONDITION, std::move(message));
}

}  // namespace

Status SqliteStore::ReserveModelVersion(const std::string& stream,
                                        uint32_t* version) {
  Rep& r = *rep_;
  const std::string what =
      "reserving a model version of stream '" + stream + "'";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.insert_reserved,
      "INSERT INTO models (stream, version, bundle_path, created_us, "
      "baseline_rows, train_loss, val_loss, status) "
      "VALUES (?1, ?2, '', ?3, 0, NULL, NULL, 'candidate')"));
  // IMMEDIATE: the highest version is read under the write lock, so a
  // second connection reserving at the same time waits and reads ours.
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  uint32_t next = 0;
  ANOMALYD_RETURN_IF_ERROR(NextModelVersion(stream, &next));
  sqlite::Statement& s = r.insert_reserved;
  s.BindText(1, stream);
  s.BindInt64(2, next);
  s.BindInt64(3, r.clock->NowMicros());
  ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
  *version = next;
  return Status::OK();
}

Status SqliteStore::CompleteCandidate(const ModelRow& m) {
  const std::string what = "completing " + ModelName(m.stream, m.version);
  if (m.bundle_path.empty()) {
    return Status::InvalidArgument(what + ": the bundle path is empty");
  }
  Rep& r = *rep_;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.complete_candidate,
      "UPDATE models SET bundle_path = ?3, baseline_rows = ?4, "
      "train_loss = ?5, val_loss = ?6, "
      "created_us = CASE WHEN ?7 != 0 THEN ?7 ELSE created_us END "
      "WHERE stream = ?1 AND version = ?2 AND status = 'candidate'"));
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  bool found = false;
  std::string status, path;
  ANOMALYD_RETURN_IF_ERROR(
      r.ReadModelStatus(m.stream, m.version, what, &found, &status, &path));
  if (!found) {
    return Status::NotFound(ModelName(m.stream, m.version) +
                            " is not registered");
  }
  if (status != "candidate") {
    return FailedPrecondition(what + ": it is " + status + ", not a candidate");
  }
  sqlite::Statement& s = r.complete_candidate;
  s.BindText(1, m.stream);
  s.BindInt64(2, m.version);
  s.BindText(3, m.bundle_path);
  s.BindInt64(4, static_cast<int64_t>(m.baseline_rows));
  s.BindDouble(5, m.train_loss);  // NaN stores NULL
  s.BindDouble(6, m.val_loss);
  s.BindInt64(7, m.created_us);
  ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  return txn.Commit(what);
}

Status SqliteStore::DeleteCandidate(const std::string& stream,
                                    uint32_t version) {
  Rep& r = *rep_;
  const std::string what = "deleting " + ModelName(stream, version);
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.delete_model_thresholds,
      "DELETE FROM thresholds WHERE stream = ?1 AND model_version = ?2"));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.delete_model,
                 "DELETE FROM models WHERE stream = ?1 AND version = ?2 "
                 "AND status = 'candidate'"));
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  bool found = false;
  std::string status, path;
  ANOMALYD_RETURN_IF_ERROR(
      r.ReadModelStatus(stream, version, what, &found, &status, &path));
  if (!found) return Status::OK();  // nothing to delete
  if (status != "candidate") {
    return FailedPrecondition(what + ": it is " + status + ", not a candidate");
  }
  // Thresholds first: they reference the model (foreign key).
  r.delete_model_thresholds.BindText(1, stream);
  r.delete_model_thresholds.BindInt64(2, version);
  ANOMALYD_RETURN_IF_ERROR(r.delete_model_thresholds.Run(what));
  r.delete_model.BindText(1, stream);
  r.delete_model.BindInt64(2, version);
  ANOMALYD_RETURN_IF_ERROR(r.delete_model.Run(what));
  return txn.Commit(what);
}

Status SqliteStore::DeleteUnfinishedCandidates(int64_t* deleted) {
  if (deleted != nullptr) *deleted = 0;
  Rep& r = *rep_;
  const std::string what = "deleting unfinished model reservations";
  constexpr const char* kUnfinished =
      "SELECT stream, version FROM models "
      "WHERE status = 'candidate' AND bundle_path = ''";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.delete_unfinished_thresholds,
      (std::string(
           "DELETE FROM thresholds WHERE (stream, model_version) IN (") +
       kUnfinished + ")")
          .c_str()));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.delete_unfinished,
                 "DELETE FROM models "
                 "WHERE status = 'candidate' AND bundle_path = ''"));
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  ANOMALYD_RETURN_IF_ERROR(r.delete_unfinished_thresholds.Run(what));
  ANOMALYD_RETURN_IF_ERROR(r.delete_unfinished.Run(what));
  const int64_t n = r.db.Changes();
  ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
  if (deleted != nullptr) *deleted = n;
  return Status::OK();
}

Status SqliteStore::SetBundlePath(const std::string& stream, uint32_t version,
                                  const std::string& path) {
  const std::string what =
      "setting the bundle path of " + ModelName(stream, version);
  if (path.empty()) {
    return Status::InvalidArgument(what + ": the path is empty");
  }
  Rep& r = *rep_;
  sqlite::Statement& s = r.set_bundle_path;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&s,
                                      "UPDATE models SET bundle_path = ?3 "
                                      "WHERE stream = ?1 AND version = ?2"));
  s.BindText(1, stream);
  s.BindInt64(2, version);
  s.BindText(3, path);
  ANOMALYD_RETURN_IF_ERROR(s.Run(what));
  // One statement, so its own (autocommit) transaction: Changes() is its.
  if (r.db.Changes() == 0) {
    return Status::NotFound(ModelName(stream, version) + " is not registered");
  }
  return Status::OK();
}

}  // namespace anomalyd
