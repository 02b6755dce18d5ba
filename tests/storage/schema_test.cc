// Tests of the schema and its migrations (storage/schema.cc), through Store
// and against the version-1 fixture in tests/storage/fixtures/.
#include "storage/schema.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "storage/sqlite_store.h"
#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::OpenSqlite;
using testing::RawQuery;
using testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Creates `path` from the SQL text fixture of schema version 1.
void LoadV1Fixture(const std::string& path) {
  const std::string sql =
      ReadFile(std::string(ANOMALYD_SOURCE_DIR) + "/tests/storage/fixtures/schema_v1.sql");
  ASSERT_FALSE(sql.empty());
  sqlite::Db db;
  ASSERT_OK(db.Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  ASSERT_OK(db.Exec(sql, "loading the fixture"));
}

// Every table and index with its SQL, whitespace collapsed.
std::string SchemaOf(const std::string& path) {
  sqlite::Db db;
  EXPECT_OK(db.Open(path, SQLITE_OPEN_READONLY));
  sqlite::Statement s;
  EXPECT_OK(s.Prepare(db,
                      "SELECT type || ' ' || name || ': ' || "
                      "coalesce(sql, '') FROM sqlite_schema "
                      "WHERE name NOT LIKE 'sqlite_%' ORDER BY name"));
  std::string out;
  bool row = false;
  while (s.Step(&row, "reading the schema").ok() && row) {
    std::istringstream words(s.ColumnText(0));
    std::string w;
    while (words >> w) out += w + " ";
    out += "\n";
  }
  return out;
}

TEST(StoreSchema, FreshDatabaseIsAtCurrentVersion) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
  }
  EXPECT_EQ(RawQuery(path,
                     "SELECT value FROM meta WHERE key = "
                     "'schema_version'"),
            std::to_string(SqliteStore::CurrentSchemaVersion()));
  EXPECT_EQ(RawQuery(path, "PRAGMA application_id"), std::to_string(schema::kApplicationId));
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
}

TEST(StoreSchema, FixtureIsTheVersion1Schema) {
  TempDir dir;
  LoadV1Fixture(dir.file("fixture.db"));
  sqlite::Db db;
  ASSERT_OK(db.Open(dir.file("v1.db"), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  ASSERT_OK(schema::CreateAtVersion(&db, 1));
  EXPECT_EQ(SchemaOf(dir.file("fixture.db")), SchemaOf(dir.file("v1.db")));
}

TEST(StoreSchema, MigratesVersion1Fixture) {
  TempDir dir;
  const std::string path = dir.file("old.db");
  LoadV1Fixture(path);
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(path, &store));

  AnomalyPage page;
  AnomalyQuery q;
  q.order = AnomalyOrder::kTimeDesc;
  ASSERT_OK(store->QueryAnomalies(q, &page));
  ASSERT_EQ(page.rows.size(), 5u);
  const AnomalyRow& a = page.rows.back();  // the oldest: rec-1
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.record_id, "rec-1");
  EXPECT_EQ(a.stream, "cpu");
  EXPECT_EQ(a.event_time_us, 1700000000000000);
  EXPECT_EQ(a.scored_time_us, 1700000000100000);
  EXPECT_EQ(a.score, 12.5);
  EXPECT_EQ(a.reconstruction, 10.0f);
  EXPECT_EQ(a.kl, 2.5f);
  EXPECT_EQ(a.threshold, 11.0f);
  EXPECT_EQ(a.model_version, 1u);
  EXPECT_EQ(a.features, (std::vector<float>{1, 2, 3}));
  EXPECT_TRUE(a.contributions.empty());  // not kept by version 1
  using L = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(a.labels, (L{{"host", "a"}, {"dc", "eu"}}));
  EXPECT_EQ(page.rows[0].labels, (L{{"ünï", "cødé"}}));
  EXPECT_EQ(page.rows[1].score, 30.0);

  ModelRow m;
  ASSERT_OK(store->ActiveModel("cpu", &m));
  EXPECT_EQ(m.version, 2u);
  EXPECT_DOUBLE_EQ(m.train_loss, 0.31);
  EXPECT_TRUE(std::isnan(m.val_loss));
  std::vector<ModelRow> models;
  ASSERT_OK(store->ListModels("disk", &models));
  ASSERT_EQ(models.size(), 1u);
  EXPECT_TRUE(std::isnan(models[0].train_loss));
  ThresholdRow t;
  ASSERT_OK(store->LatestThreshold("cpu", &t));
  EXPECT_EQ(t.value, 12.0);
  EXPECT_EQ(t.window, 2000u);
  Baseline b;
  ASSERT_OK(store->LoadReservoir("cpu", &b));
  EXPECT_EQ(b.dim, 3u);
  EXPECT_EQ(b.seen, 4u);
  ASSERT_EQ(b.rows(), 4u);
  EXPECT_EQ(b.values[3], 1.0f);

  // The alert cursor starts at the newest anomaly of the old file: an
  // upgrade does not alert on the whole history.
  AlertCheckpoint cp;
  ASSERT_OK(store->LoadAlertCheckpoint(&cp));
  EXPECT_EQ(cp.cursor, 5);

  // New rows get fresh ids and keep their contributions.
  std::vector<AnomalyRow> batch = {testing::MakeAnomaly(6, "cpu")};
  ASSERT_OK(store->InsertAnomalies(&batch));
  EXPECT_EQ(batch[0].id, 6);
  store.reset();

  EXPECT_EQ(RawQuery(path, "SELECT value FROM meta"),
            std::to_string(SqliteStore::CurrentSchemaVersion()));
  EXPECT_EQ(RawQuery(path, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(RawQuery(path, "PRAGMA foreign_key_check"), "");
}

TEST(StoreSchema, MigratedSchemaEqualsFreshSchema) {
  TempDir dir;
  LoadV1Fixture(dir.file("old.db"));
  std::unique_ptr<Store> a, b;
  ASSERT_OK(OpenSqlite(dir.file("old.db"), &a));
  ASSERT_OK(OpenSqlite(dir.file("new.db"), &b));
  a.reset();
  b.reset();
  EXPECT_EQ(SchemaOf(dir.file("old.db")), SchemaOf(dir.file("new.db")));
}

TEST(StoreSchema, ReopeningChangesNothing) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  std::string before;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
    store.reset();
    if (i == 0) before = SchemaOf(path);
    EXPECT_EQ(SchemaOf(path), before);
  }
}

TEST(StoreSchema, RefusesNewerSchemaAndLeavesFileAlone) {
  TempDir dir;
  const std::string path = dir.file("future.db");
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
  }
  const std::string future = std::to_string(SqliteStore::CurrentSchemaVersion() + 1);
  RawQuery(path, "UPDATE meta SET value = '" + future + "' WHERE key = 'schema_version'");
  ASSERT_EQ(RawQuery(path, "SELECT value FROM meta"), future);
  const std::string bytes = ReadFile(path);

  for (bool read_only : {false, true}) {
    StoreOptions o;
    o.read_only = read_only;
    std::unique_ptr<Store> store;
    Status s = OpenSqlite(path, &store, o);
    EXPECT_EQ(s.code(), pb::SCHEMA_TOO_NEW) << s.ToString();
    EXPECT_NE(s.message().find("version " + future), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("newer"), std::string::npos) << s.message();
    EXPECT_EQ(store, nullptr);
  }
  EXPECT_EQ(ReadFile(path), bytes);
}

TEST(StoreSchema, RefusesForeignFiles) {
  TempDir dir;
  RawQuery(dir.file("other.db"), "CREATE TABLE t (x)");
  RawQuery(dir.file("app.db"), "PRAGMA application_id = 42");
  { std::ofstream(dir.file("text.db")) << std::string(4096, 'z'); }
  RawQuery(dir.file("meta.db"), "CREATE TABLE meta (key, value)");
  for (const char* name : {"other.db", "app.db", "text.db", "meta.db"}) {
    std::unique_ptr<Store> store;
    Status s = OpenSqlite(dir.file(name), &store);
    EXPECT_EQ(s.code(), pb::CORRUPT) << name << ": " << s.ToString();
    EXPECT_EQ(store, nullptr);
  }
  // Not switched to WAL (nor otherwise touched) on the way.
  EXPECT_EQ(RawQuery(dir.file("other.db"), "PRAGMA journal_mode"), "delete");
}

TEST(StoreSchema, ReadOnlyOpenOfOldSchemaAsksForMigration) {
  TempDir dir;
  LoadV1Fixture(dir.file("old.db"));
  StoreOptions o;
  o.read_only = true;
  std::unique_ptr<Store> store;
  Status s = OpenSqlite(dir.file("old.db"), &store, o);
  EXPECT_EQ(s.code(), pb::STORAGE_READ_ONLY) << s.ToString();
  EXPECT_NE(s.message().find("migrat"), std::string::npos);
}

}  // namespace
}  // namespace anomalyd
