#include "storage/schema.h"

#include <cstdlib>
#include <string>

namespace anomalyd::schema {
namespace {

// Step i brings the schema from version i to version i + 1. Steps are never
// edited once released: a change is a new step (and a new fixture in
// tests/storage/fixtures/).
const char* const kSteps[] = {
    // 0 -> 1: the first layout.
    R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE anomalies (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  record_id      TEXT    NOT NULL,
  stream         TEXT    NOT NULL,
  event_time_us  INTEGER NOT NULL,
  scored_time_us INTEGER NOT NULL,
  score          REAL    NOT NULL,
  reconstruction REAL    NOT NULL,
  kl             REAL    NOT NULL,
  threshold      REAL    NOT NULL,
  model_version  INTEGER NOT NULL,
  features       BLOB    NOT NULL,
  labels         BLOB    NOT NULL
);
CREATE INDEX anomalies_event_time ON anomalies (event_time_us);
CREATE INDEX anomalies_stream_time ON anomalies (stream, event_time_us);

CREATE TABLE models (
  stream        TEXT    NOT NULL,
  version       INTEGER NOT NULL CHECK (version > 0),
  bundle_path   TEXT    NOT NULL,
  created_us    INTEGER NOT NULL,
  baseline_rows INTEGER NOT NULL,
  train_loss    REAL,
  status        TEXT    NOT NULL
                CHECK (status IN ('candidate', 'active', 'retired')),
  PRIMARY KEY (stream, version)
);

CREATE TABLE thresholds (
  id            INTEGER PRIMARY KEY,
  stream        TEXT    NOT NULL,
  model_version INTEGER NOT NULL,
  method        TEXT    NOT NULL,
  value         REAL    NOT NULL,
  window_size   INTEGER NOT NULL,
  time_us       INTEGER NOT NULL,
  FOREIGN KEY (stream, model_version) REFERENCES models (stream, version)
);
CREATE INDEX thresholds_stream_time ON thresholds (stream, time_us, id);

CREATE TABLE reservoirs (
  stream TEXT    PRIMARY KEY,
  dim    INTEGER NOT NULL CHECK (dim > 0),
  seen   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE samples (
  stream TEXT    NOT NULL REFERENCES reservoirs (stream) ON DELETE CASCADE,
  slot   INTEGER NOT NULL,
  vals   BLOB    NOT NULL,
  PRIMARY KEY (stream, slot)
) WITHOUT ROWID;
)sql",
    // 1 -> 2: per-feature contributions and validation loss are stored;
    // the time indexes cover the operators' queries: keyset paging on
    // (time, id), min-score and stream filters and score order read from
    // the index, the table touched only for the rows returned. There is
    // deliberately no index on score alone: its random inserts dirty most
    // of its pages at every commit and halved insert throughput (see
    // docs/storage.md). At most one active model per stream.
    R"sql(
ALTER TABLE anomalies ADD COLUMN contributions BLOB NOT NULL DEFAULT x'';
ALTER TABLE models ADD COLUMN val_loss REAL;
DROP INDEX anomalies_event_time;
DROP INDEX anomalies_stream_time;
CREATE INDEX anomalies_event ON anomalies (event_time_us, id, score, stream);
CREATE INDEX anomalies_scored ON anomalies (scored_time_us, id, score, stream);
CREATE INDEX anomalies_stream ON anomalies (stream, event_time_us, id, score);
CREATE UNIQUE INDEX models_one_active ON models (stream)
  WHERE status = 'active';
)sql",
    // 2 -> 3: alert delivery. alert_state holds the alert sender's cursor
    // (the last anomaly id it has shaped) and its shaping state; it starts
    // at the newest anomaly, so a database from before this version does
    // not alert on its whole history. alert_outbox holds notifications not
    // yet delivered (and dead letters), by id.
    R"sql(
CREATE TABLE alert_state (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  cursor   INTEGER NOT NULL,
  state    BLOB    NOT NULL,
  saved_us INTEGER NOT NULL
);
INSERT INTO alert_state (id, cursor, state, saved_us)
  SELECT 1, coalesce(max(id), 0), x'', 0 FROM anomalies;
CREATE TABLE alert_outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  sink            TEXT    NOT NULL,
  created_us      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  next_attempt_us INTEGER NOT NULL,
  dead            INTEGER NOT NULL CHECK (dead IN (0, 1)),
  last_error      TEXT    NOT NULL,
  payload         BLOB    NOT NULL
);
CREATE INDEX alert_outbox_dead ON alert_outbox (dead, id);
)sql",
};
static_assert(sizeof(kSteps) / sizeof(kSteps[0]) == kCurrentVersion,
              "one migration step per schema version");

Status RunSteps(sqlite::Db* db, int from, int to) {
  for (int v = from; v < to; ++v) {
    ANOMALYD_RETURN_IF_ERROR(db->Exec(
        kSteps[v],
        "migrating the schema from version " + std::to_string(v) + " to " + std::to_string(v + 1)));
  }
  return db->Exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', '" +
                      std::to_string(to) +
                      "');PRAGMA application_id = " + std::to_string(kApplicationId) + ";",
                  "recording schema version " + std::to_string(to));
}

}  // namespace

Status ReadVersion(sqlite::Db* db, int* version) {
  std::string text;
  ANOMALYD_RETURN_IF_ERROR(db->QueryText("PRAGMA application_id", &text));
  if (text != "0" && text != std::to_string(kApplicationId)) {
    return Status::Corrupt("not an anomalyd database (application_id " + text + ")");
  }
  ANOMALYD_RETURN_IF_ERROR(
      db->QueryText("SELECT count(*) FROM sqlite_schema WHERE name = 'meta'", &text));
  if (text == "0") {
    ANOMALYD_RETURN_IF_ERROR(db->QueryText("SELECT count(*) FROM sqlite_schema", &text));
    if (text != "0") {
      return Status::Corrupt("not an anomalyd database (no meta table)");
    }
    *version = 0;
    return Status::OK();
  }
  ANOMALYD_RETURN_IF_ERROR(
      db->QueryText("SELECT value FROM meta WHERE key = 'schema_version'", &text));
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v <= 0 || v > 1000000) {
    return Status::Corrupt("meta table holds no valid schema_version ('" + text + "')");
  }
  *version = static_cast<int>(v);
  return Status::OK();
}

namespace {
Status TooNew(int version) {
  return Status(pb::SCHEMA_TOO_NEW, "database schema version " + std::to_string(version) +
                                        " was written by a newer anomalyd; this build reads up to "
                                        "version " +
                                        std::to_string(kCurrentVersion) +
                                        ". Upgrade anomalyd or use another database file; the "
                                        "file was not changed");
}
}  // namespace

Status Migrate(sqlite::Db* db) {
  sqlite::Transaction txn(db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, "migrating the schema"));
  int version = 0;
  ANOMALYD_RETURN_IF_ERROR(ReadVersion(db, &version));
  if (version > kCurrentVersion) return TooNew(version);
  if (version == kCurrentVersion) return txn.Commit("reading the schema");
  ANOMALYD_RETURN_IF_ERROR(RunSteps(db, version, kCurrentVersion));
  return txn.Commit("migrating the schema");
}

Status CreateAtVersion(sqlite::Db* db, int version) {
  if (version < 1 || version > kCurrentVersion) {
    return Status::InvalidArgument("no schema version " + std::to_string(version));
  }
  sqlite::Transaction txn(db);
  ANOMALYD_RETURN_IF_ERROR(txn.Begin(sqlite::Transaction::Mode::kImmediate, "creating the schema"));
  ANOMALYD_RETURN_IF_ERROR(RunSteps(db, 0, version));
  return txn.Commit("creating the schema");
}

Status CheckMigratable(sqlite::Db* db) {
  int version = 0;
  ANOMALYD_RETURN_IF_ERROR(ReadVersion(db, &version));
  if (version > kCurrentVersion) return TooNew(version);
  return Status::OK();
}

Status CheckReadable(sqlite::Db* db) {
  int version = 0;
  ANOMALYD_RETURN_IF_ERROR(ReadVersion(db, &version));
  if (version > kCurrentVersion) return TooNew(version);
  if (version < kCurrentVersion) {
    return Status(pb::STORAGE_READ_ONLY, "database schema version " + std::to_string(version) +
                                             " needs migrating to version " +
                                             std::to_string(kCurrentVersion) +
                                             ", which a read-only open cannot do; open it "
                                             "read-write once (the daemon does)");
  }
  return Status::OK();
}

}  // namespace anomalyd::schema
