// SqliteStore: the model registry and the threshold history.
#include <cmath>
#include <limits>

#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

const char* StatusText(ModelStatus s) {
  switch (s) {
    case ModelStatus::kActive:
      return "active";
    case ModelStatus::kRetired:
      return "retired";
    case ModelStatus::kCandidate:
      break;
  }
  return "candidate";
}

Status ParseStatus(const std::string& text, ModelStatus* s) {
  if (text == "candidate") {
    *s = ModelStatus::kCandidate;
  } else if (text == "active") {
    *s = ModelStatus::kActive;
  } else if (text == "retired") {
    *s = ModelStatus::kRetired;
  } else {
    return Status::Corrupt("unknown model status '" + text + "'");
  }
  return Status::OK();
}

constexpr const char* kModelColumns =
    "SELECT stream, version, bundle_path, created_us, baseline_rows, "
    "train_loss, val_loss, status FROM models ";

Status ReadModel(const sqlite::Statement& s, ModelRow* m) {
  m->stream = s.ColumnText(0);
  m->version = static_cast<uint32_t>(s.ColumnInt64(1));
  m->bundle_path = s.ColumnText(2);
  m->created_us = s.ColumnInt64(3);
  m->baseline_rows = static_cast<uint64_t>(s.ColumnInt64(4));
  m->train_loss = s.ColumnDouble(5);
  m->val_loss = s.ColumnDouble(6);
  return ParseStatus(s.ColumnText(7), &m->status);
}

constexpr const char* kThresholdColumns =
    "SELECT id, stream, model_version, method, value, window_size, time_us "
    "FROM thresholds WHERE stream = ?1 ORDER BY time_us DESC, id DESC "
    "LIMIT ?2";

void ReadThreshold(const sqlite::Statement& s, ThresholdRow* t) {
  t->id = s.ColumnInt64(0);
  t->stream = s.ColumnText(1);
  t->model_version = static_cast<uint32_t>(s.ColumnInt64(2));
  t->method = s.ColumnText(3);
  t->value = s.ColumnDouble(4);
  t->window = static_cast<uint64_t>(s.ColumnInt64(5));
  t->time_us = s.ColumnInt64(6);
}

std::string ModelName(const std::string& stream, uint32_t version) {
  return "model " + std::to_string(version) + " of stream '" + stream + "'";
}

// Steps `s` to the end, one ModelRow per result row.
Status ReadModels(sqlite::Statement& s, const std::string& what,
                  std::vector<ModelRow>* models) {
  models->clear();
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (!row) return Status::OK();
    models->emplace_back();
    ANOMALYD_RETURN_IF_ERROR(ReadModel(s, &models->back()));
  }
}

}  // namespace

Status SqliteStore::RegisterModel(const ModelRow& m) {
  if (m.version == 0) return Status::InvalidArgument("model version 0");
  if (m.status != ModelStatus::kCandidate) {
    return Status::InvalidArgument(
        "a model is registered as a candidate; use ActivateModel");
  }
  Rep& r = *rep_;
  sqlite::Statement& s = r.register_model;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      "INSERT INTO models (stream, version, bundle_path, created_us, "
      "baseline_rows, train_loss, val_loss, status) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  s.BindText(1, m.stream);
  s.BindInt64(2, m.version);
  s.BindText(3, m.bundle_path);
  s.BindInt64(4, m.created_us != 0 ? m.created_us : r.clock->NowMicros());
  s.BindInt64(5, static_cast<int64_t>(m.baseline_rows));
  s.BindDouble(6, m.train_loss);  // NaN stores NULL
  s.BindDouble(7, m.val_loss);
  s.BindText(8, StatusText(m.status));
  return s.Run("registering " + ModelName(m.stream, m.version));
}

Status SqliteStore::Rep::ReadModelStatus(const std::string& stream,
                                         uint32_t version,
                                         const std::string& what, bool* found,
                                         std::string* status,
                                         std::string* bundle_path) {
  ANOMALYD_RETURN_IF_ERROR(Prepared(&model_status,
                                    "SELECT status, bundle_path FROM models "
                                    "WHERE stream = ?1 AND version = ?2"));
  sqlite::Statement& s = model_status;
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  s.BindInt64(2, version);
  ANOMALYD_RETURN_IF_ERROR(s.Step(found, what));
  if (*found) {
    *status = s.ColumnText(0);
    *bundle_path = s.ColumnText(1);
  }
  return Status::OK();
}

Status SqliteStore::ActivateModel(const std::string& stream, uint32_t version) {
  Rep& r = *rep_;
  const std::string what = "activating " + ModelName(stream, version);
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.retire_active,
                 "UPDATE models SET status = 'retired' "
                 "WHERE stream = ?1 AND status = 'active'"));
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&r.set_active,
                                      "UPDATE models SET status = 'active' "
                                      "WHERE stream = ?1 AND version = ?2"));

  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  bool found = false;
  std::string status, path;
  ANOMALYD_RETURN_IF_ERROR(
      r.ReadModelStatus(stream, version, what, &found, &status, &path));
  if (!found) {
    return Status::NotFound(ModelName(stream, version) + " is not registered");
  }
  if (status == "active") return Status::OK();  // already is
  if (status == "candidate" && path.empty()) {
    return Status(pb::FAILED_PRECONDITION,
                  what +
                      ": it is a reservation whose training has not "
                      "completed (no bundle path)");
  }
  r.retire_active.BindText(1, stream);
  ANOMALYD_RETURN_IF_ERROR(r.retire_active.Run(what));
  r.set_active.BindText(1, stream);
  r.set_active.BindInt64(2, version);
  ANOMALYD_RETURN_IF_ERROR(r.set_active.Run(what));
  return txn.Commit(what);
}

Status SqliteStore::ActiveModel(const std::string& stream, ModelRow* model) {
  Rep& r = *rep_;
  sqlite::Statement& s = r.active_model;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      (std::string(kModelColumns) + "WHERE stream = ?1 AND status = 'active'")
          .c_str()));
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  bool row = false;
  ANOMALYD_RETURN_IF_ERROR(
      s.Step(&row, "reading the active model of stream '" + stream + "'"));
  if (!row) {
    return Status::NotFound("stream '" + stream + "' has no active model");
  }
  return ReadModel(s, model);
}

Status SqliteStore::ListModels(const std::string& stream,
                               std::vector<ModelRow>* models) {
  Rep& r = *rep_;
  sqlite::Statement& s = r.list_models;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      (std::string(kModelColumns) + "WHERE stream = ?1 ORDER BY version DESC")
          .c_str()));
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  return ReadModels(s, "listing the models of stream '" + stream + "'", models);
}

Status SqliteStore::ActiveModels(std::vector<ModelRow>* models) {
  Rep& r = *rep_;
  sqlite::Statement& s = r.active_models;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      (std::string(kModelColumns) + "WHERE status = 'active' ORDER BY stream")
          .c_str()));
  sqlite::ResetOnExit reset(&s);
  return ReadModels(s, "listing the active models", models);
}

Status SqliteStore::AllModels(std::vector<ModelRow>* models) {
  Rep& r = *rep_;
  sqlite::Statement& s = r.all_models;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      (std::string(kModelColumns) + "ORDER BY stream, version DESC").c_str()));
  sqlite::ResetOnExit reset(&s);
  return ReadModels(s, "listing every model", models);
}

Status SqliteStore::NextModelVersion(const std::string& stream,
                                     uint32_t* version) {
  Rep& r = *rep_;
  sqlite::Statement& s = r.next_version;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s, "SELECT coalesce(max(version), 0) FROM models WHERE stream = ?1"));
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  bool row = false;
  ANOMALYD_RETURN_IF_ERROR(
      s.Step(&row, "reading the model versions of stream '" + stream + "'"));
  const int64_t max = row ? s.ColumnInt64(0) : 0;
  if (max >= std::numeric_limits<uint32_t>::max()) {
    return Status::Internal("model versions of stream '" + stream +
                            "' are exhausted");
  }
  *version = static_cast<uint32_t>(max + 1);
  return Status::OK();
}

Status SqliteStore::AppendThreshold(ThresholdRow* t) {
  if (std::isnan(t->value)) {
    return Status::InvalidArgument("threshold value is NaN");
  }
  Rep& r = *rep_;
  sqlite::Statement& s = r.append_threshold;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &s,
      "INSERT INTO thresholds (stream, model_version, method, value, "
      "window_size, time_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  const int64_t time_us = t->time_us != 0 ? t->time_us : r.clock->NowMicros();
  s.BindText(1, t->stream);
  s.BindInt64(2, t->model_version);
  s.BindText(3, t->method);
  s.BindDouble(4, t->value);
  s.BindInt64(5, static_cast<int64_t>(t->window));
  s.BindInt64(6, time_us);
  ANOMALYD_RETURN_IF_ERROR(s.Run("appending a threshold for " +
                                 ModelName(t->stream, t->model_version) +
                                 " (the model must be registered)"));
  t->id = r.db.LastInsertRowid();
  t->time_us = time_us;
  return Status::OK();
}

Status SqliteStore::LatestThreshold(const std::string& stream,
                                    ThresholdRow* t) {
  std::vector<ThresholdRow> history;
  ANOMALYD_RETURN_IF_ERROR(ThresholdHistory(stream, 1, &history));
  if (history.empty()) {
    return Status::NotFound("stream '" + stream + "' has no threshold");
  }
  *t = std::move(history.front());
  return Status::OK();
}

Status SqliteStore::ThresholdHistory(const std::string& stream, int64_t limit,
                                     std::vector<ThresholdRow>* history) {
  if (limit < 1 || limit > kMaxQueryLimit) {
    return Status::InvalidArgument("limit " + std::to_string(limit) +
                                   " is outside 1.." +
                                   std::to_string(kMaxQueryLimit));
  }
  Rep& r = *rep_;
  sqlite::Statement& s = r.threshold_history;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(&s, kThresholdColumns));
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  s.BindInt64(2, limit);
  history->clear();
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(
        s.Step(&row, "reading the thresholds of stream '" + stream + "'"));
    if (!row) return Status::OK();
    history->emplace_back();
    ReadThreshold(s, &history->back());
  }
}

}  // namespace anomalyd
