// Tests of SqliteStore's opening, options, inserts and error reporting
// (storage/sqlite_store.cc, storage/store.cc).
#include "storage/store.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "storage/sqlite.h"
#include "storage/sqlite_store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::FakeClock;
using testing::MakeAnomaly;
using testing::OpenSqlite;
using testing::RawQuery;
using testing::TempDir;

AnomalyPage All(Store* store) {
  AnomalyQuery q;
  q.limit = kMaxQueryLimit;
  AnomalyPage page;
  EXPECT_OK(store->QueryAnomalies(q, &page));
  return page;
}

TEST(Store, RoundTripsEveryField) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &store));

  AnomalyRow a;
  a.record_id = std::string("id\0with nul", 11);
  a.stream = "стрим";
  a.event_time_us = -123456789;  // before 1970 is allowed
  a.scored_time_us = std::numeric_limits<int64_t>::max();
  a.score = 1.0 / 3.0;
  a.reconstruction = std::numeric_limits<float>::denorm_min();
  a.kl = 0.125f;
  a.threshold = std::numeric_limits<float>::infinity();
  a.model_version = std::numeric_limits<uint32_t>::max();
  for (int i = 0; i < 38; ++i) {
    a.features.push_back(std::ldexp(1.0f, i - 19) * (i % 2 ? -1 : 1));
    a.contributions.push_back(static_cast<float>(i) / 38);
  }
  a.labels = {{"k", "v"}, {"", std::string("\0\xff", 2)}, {"k", "again"}};
  AnomalyRow empty;  // no features, contributions or labels
  empty.record_id = "";
  empty.stream = "";
  empty.scored_time_us = 5;
  std::vector<AnomalyRow> batch = {a, empty};
  ASSERT_OK(store->InsertAnomalies(&batch));
  EXPECT_EQ(batch[0].id, 1);
  EXPECT_EQ(batch[1].id, 2);

  // Read back through a second, read-only store.
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> reader;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &reader, ro));
  AnomalyPage page = All(reader.get());
  ASSERT_EQ(page.rows.size(), 2u);
  const AnomalyRow& b = page.rows[0].id == 1 ? page.rows[0] : page.rows[1];
  EXPECT_EQ(b.id, 1);
  EXPECT_EQ(b.record_id, a.record_id);
  EXPECT_EQ(b.stream, a.stream);
  EXPECT_EQ(b.event_time_us, a.event_time_us);
  EXPECT_EQ(b.scored_time_us, a.scored_time_us);
  EXPECT_EQ(b.score, a.score);
  EXPECT_EQ(b.reconstruction, a.reconstruction);
  EXPECT_EQ(b.kl, a.kl);
  EXPECT_EQ(b.threshold, a.threshold);
  EXPECT_EQ(b.model_version, a.model_version);
  EXPECT_EQ(b.features, a.features);
  EXPECT_EQ(b.contributions, a.contributions);
  EXPECT_EQ(b.labels, a.labels);
  const AnomalyRow& e = page.rows[0].id == 2 ? page.rows[0] : page.rows[1];
  EXPECT_EQ(e.record_id, "");
  EXPECT_TRUE(e.features.empty());
  EXPECT_TRUE(e.contributions.empty());
  EXPECT_TRUE(e.labels.empty());
}

TEST(Store, FillsScoredTimeFromClockAndIdsGrow) {
  TempDir dir;
  FakeClock clock(777);
  StoreOptions o;
  o.clock = &clock;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &store, o));
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2)};
  batch[1].scored_time_us = 0;
  ASSERT_OK(store->InsertAnomalies(&batch));
  EXPECT_EQ(batch[0].scored_time_us, MakeAnomaly(1).scored_time_us);
  EXPECT_EQ(batch[1].scored_time_us, 777);
  std::vector<AnomalyRow> next = {MakeAnomaly(3)};
  ASSERT_OK(store->InsertAnomalies(&next));
  EXPECT_EQ(next[0].id, batch[1].id + 1);
}

TEST(Store, NaNRowRejectsWholeBatch) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &store));
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2)};
  batch[1].kl = std::nanf("");
  Status s = store->InsertAnomalies(&batch);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("r2"), std::string::npos) << s.message();
  EXPECT_EQ(batch[0].id, 0);  // untouched
  EXPECT_TRUE(All(store.get()).rows.empty());

  std::vector<AnomalyRow> none;
  EXPECT_OK(store->InsertAnomalies(&none));
}

TEST(Store, RejectsBadOptions) {
  TempDir dir;
  struct Case {
    StoreOptions store;
    SqliteOptions sqlite;
  } cases[5];
  cases[0].sqlite.busy_timeout_ms = -1;
  cases[1].sqlite.cache_size_kib = 0;
  cases[2].sqlite.max_db_bytes = -1;
  cases[3].store.reservoir_capacity = 0;
  cases[4].store.reservoir_capacity = 1'000'000'000;
  for (const Case& c : cases) {
    std::unique_ptr<Store> store;
    EXPECT_EQ(OpenSqlite(dir.file("a.db"), &store, c.store, c.sqlite).code(),
              pb::INVALID_ARGUMENT);
    EXPECT_EQ(store, nullptr);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.db")));
}

TEST(Store, MissingFileWithoutCreateIsIoError) {
  TempDir dir;
  StoreOptions o;
  o.create_if_missing = false;
  std::unique_ptr<Store> store;
  EXPECT_EQ(OpenSqlite(dir.file("none.db"), &store, o).code(), pb::IO_ERROR);
  o.read_only = true;
  EXPECT_EQ(OpenSqlite(dir.file("none.db"), &store, o).code(), pb::IO_ERROR);
  EXPECT_EQ(OpenSqlite(dir.file("no/such/dir.db"), &store).code(),
            pb::IO_ERROR);
}

TEST(Store, ReaderSeesOnlyCommittedWrites) {
  TempDir dir;
  std::unique_ptr<Store> writer, reader;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &writer));
  StoreOptions ro;
  ro.read_only = true;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &reader, ro));
  EXPECT_TRUE(All(reader.get()).rows.empty());
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2)};
  ASSERT_OK(writer->InsertAnomalies(&batch));
  EXPECT_EQ(All(reader.get()).rows.size(), 2u);
}

// Batches of 50 go in one row per statement; batches of 150 mostly in
// multi-row statements, which must undo their earlier rows too.
TEST(Store, FullDatabaseIsStorageFullAndStaysUsable) {
  for (int batch_rows : {50, 150}) {
    SCOPED_TRACE("batches of " + std::to_string(batch_rows));
    TempDir dir;
    SqliteOptions o;
    o.max_db_bytes = 512 * 1024;  // 32 pages: the empty schema takes 14
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("full.db"), &store, {}, o));
    int committed = 0;
    Status s;
    for (int b = 0; b < 1000 && s.ok(); ++b) {
      std::vector<AnomalyRow> batch;
      for (int i = 0; i < batch_rows; ++i)
        batch.push_back(MakeAnomaly(b * batch_rows + i, "s", 38));
      s = store->InsertAnomalies(&batch);
      if (s.ok()) committed += batch_rows;
    }
    ASSERT_EQ(s.code(), pb::STORAGE_FULL) << s.ToString();
    EXPECT_NE(s.message().find("inserting a batch of " +
                               std::to_string(batch_rows) + " anomalies"),
              std::string::npos)
        << s.message();
    EXPECT_GT(committed, 0);
    // The failed batch left nothing behind; reads and deletes still work.
    AnomalyQuery q;
    q.limit = kMaxQueryLimit;
    AnomalyPage page;
    ASSERT_OK(store->QueryAnomalies(q, &page));
    EXPECT_EQ(static_cast<int>(page.rows.size()), committed);
    std::vector<float> samples(38 * 2000, 1.0f);
    EXPECT_EQ(store->AddSamples("s", 38, samples.data(), 2000).code(),
              pb::STORAGE_FULL);
    int64_t deleted = 0;
    RetentionPolicy keep_half;
    keep_half.max_rows = committed / 2;
    ASSERT_OK(store->Prune(keep_half, &deleted));
    std::vector<AnomalyRow> more = {MakeAnomaly(999999)};
    EXPECT_OK(store->InsertAnomalies(&more));
    store.reset();
    EXPECT_EQ(RawQuery(dir.file("full.db"), "PRAGMA integrity_check"), "ok");
  }
}

// Big batches go in as multi-row INSERTs plus single-row ones for the
// rest; each row must get the id under which its own values were stored.
TEST(Store, LargeBatchIdsMatchTheirRows) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &store));
  std::vector<AnomalyRow> first = {MakeAnomaly(0)};
  ASSERT_OK(store->InsertAnomalies(&first));
  for (int n : {64, 65, 200, 1000}) {
    SCOPED_TRACE("batch of " + std::to_string(n));
    std::vector<AnomalyRow> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back(MakeAnomaly(i + 1, "s" + std::to_string(i % 3), i % 7));
    }
    const int64_t before = first[0].id;  // the last id so far
    ASSERT_OK(store->InsertAnomalies(&batch));
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(batch[i].id, before + 1 + i);
    }
    first = {batch.back()};
    std::map<int64_t, const AnomalyRow*> by_id;
    for (const AnomalyRow& a : batch) by_id[a.id] = &a;
    AnomalyPage page = All(store.get());
    int seen = 0;
    for (const AnomalyRow& got : page.rows) {
      auto it = by_id.find(got.id);
      if (it == by_id.end()) continue;
      ++seen;
      const AnomalyRow& want = *it->second;
      EXPECT_EQ(got.record_id, want.record_id);
      EXPECT_EQ(got.stream, want.stream);
      EXPECT_EQ(got.event_time_us, want.event_time_us);
      EXPECT_EQ(got.score, want.score);
      EXPECT_EQ(got.features, want.features);
      EXPECT_EQ(got.contributions, want.contributions);
      EXPECT_EQ(got.labels, want.labels);
    }
    EXPECT_EQ(seen, n);
  }
}

TEST(Store, ReadOnlyStoreRejectsEveryWrite) {
  TempDir dir;
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("a.db"), &store));
  }
  StoreOptions o;
  o.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("a.db"), &store, o));
  std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
  EXPECT_EQ(store->InsertAnomalies(&batch).code(), pb::STORAGE_READ_ONLY);
  ModelRow m;
  m.stream = "s";
  m.version = 1;
  EXPECT_EQ(store->RegisterModel(m).code(), pb::STORAGE_READ_ONLY);
  float x[2] = {1, 2};
  EXPECT_EQ(store->AddSamples("s", 2, x, 1).code(), pb::STORAGE_READ_ONLY);
  int64_t deleted = -1;
  RetentionPolicy p;
  p.max_age_us = 1;
  EXPECT_EQ(store->Prune(p, &deleted).code(), pb::STORAGE_READ_ONLY);
  EXPECT_EQ(deleted, 0);
  EXPECT_TRUE(All(store.get()).rows.empty());  // reads still work
}

TEST(Store, ReadOnlyFileIsStorageReadOnly) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes read-only files anyway";
  TempDir dir;
  const std::string path = dir.file("a.db");
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read);
  std::unique_ptr<Store> store;
  Status s = OpenSqlite(path, &store);
  EXPECT_EQ(s.code(), pb::STORAGE_READ_ONLY) << s.ToString();
}

TEST(Store, LockedDatabaseIsStorageLocked) {
  TempDir dir;
  const std::string path = dir.file("a.db");
  SqliteOptions o;
  o.busy_timeout_ms = 20;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(path, &store, {}, o));
  {
    sqlite::Db other;
    ASSERT_OK(other.Open(path, SQLITE_OPEN_READWRITE));
    sqlite::Transaction hold(&other);
    ASSERT_OK(hold.Begin(sqlite::Transaction::Mode::kImmediate, "holding"));
    std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
    Status s = store->InsertAnomalies(&batch);
    EXPECT_EQ(s.code(), pb::STORAGE_LOCKED) << s.ToString();
    EXPECT_EQ(batch[0].id, 0);
    EXPECT_EQ(store->ActivateModel("s", 1).code(), pb::STORAGE_LOCKED);
    // Another writer's Open (which migrates) waits and reports the same.
    std::unique_ptr<Store> second;
    EXPECT_EQ(OpenSqlite(path, &second, {}, o).code(), pb::STORAGE_LOCKED);
  }
  std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
  EXPECT_OK(store->InsertAnomalies(&batch));
}

TEST(Store, SyncLevelsAllOpen) {
  for (SyncLevel level :
       {SyncLevel::kOff, SyncLevel::kNormal, SyncLevel::kFull}) {
    TempDir dir;
    SqliteOptions o;
    o.sync = level;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("a.db"), &store, {}, o));
    std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
    EXPECT_OK(store->InsertAnomalies(&batch));
  }
}

}  // namespace
}  // namespace anomalyd
