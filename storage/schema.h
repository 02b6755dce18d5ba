// The store's schema and its migrations. Private to storage/; the SQL is
// reproduced in docs/storage.md.
#ifndef ANOMALYD_STORAGE_SCHEMA_H_
#define ANOMALYD_STORAGE_SCHEMA_H_

#include <cstdint>

#include "proto/status.h"
#include "storage/sqlite.h"

namespace anomalyd::schema {

// The version this build writes, kept in meta(key='schema_version').
inline constexpr int kCurrentVersion = 3;

// PRAGMA application_id of an anomalyd database: "anom" in ASCII.
inline constexpr int32_t kApplicationId = 0x616e6f6d;

// The schema version of `db`: 0 for an empty database. CORRUPT when the
// file holds tables but is not an anomalyd database.
Status ReadVersion(sqlite::Db* db, int* version);

// Brings a writable `db` to kCurrentVersion, creating it when empty: every
// step from its version on runs in one IMMEDIATE transaction, so a crash
// mid-way leaves the old version intact. SCHEMA_TOO_NEW (and no change)
// when the database is newer than this build.
Status Migrate(sqlite::Db* db);

// Runs only the steps up to `version` on an empty database (for tests that
// need a database of an older version). REQUIRES: 1 <= version <= current.
Status CreateAtVersion(sqlite::Db* db, int version);

// Checks, without writing, that Migrate can bring `db` up to date: CORRUPT
// for a foreign file, SCHEMA_TOO_NEW for a newer one. Run before anything
// changes the file (such as switching it to WAL).
Status CheckMigratable(sqlite::Db* db);

// For read-only connections: OK only when the version is kCurrentVersion.
Status CheckReadable(sqlite::Db* db);

}  // namespace anomalyd::schema

#endif  // ANOMALYD_STORAGE_SCHEMA_H_
