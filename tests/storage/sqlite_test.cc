// Tests of the RAII SQLite layer (storage/sqlite.h).
#include "storage/sqlite.h"

#include <cmath>
#include <cstring>

#include "tests/test_util.h"

namespace anomalyd::sqlite {
namespace {

using anomalyd::testing::TempDir;

class StoreSqlite : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(db_.Open(dir_.file("t.db"),
                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    ASSERT_OK(db_.Exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB)",
                       "creating t"));
  }
  std::string Count() {
    std::string n;
    EXPECT_OK(db_.QueryText("SELECT count(*) FROM t", &n));
    return n;
  }
  TempDir dir_;
  Db db_;
};

TEST_F(StoreSqlite, BindsStepsAndReadsEveryType) {
  Statement ins;
  ASSERT_OK(ins.Prepare(db_, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)"));
  const char blob[] = {'a', '\0', 'b'};
  ins.BindInt64(1, -42);
  ins.BindDouble(2, 2.5);
  ins.BindText(3, std::string_view("x\0y", 3));
  ins.BindBlob(4, blob, sizeof blob);
  ASSERT_OK(ins.Run("inserting"));
  EXPECT_EQ(db_.LastInsertRowid(), 1);
  EXPECT_EQ(db_.Changes(), 1);
  // NaN binds NULL; NULL reads back as NaN. Empty text is '', not NULL.
  ins.BindNull(1);
  ins.BindDouble(2, std::nan(""));
  ins.BindText(3, "");
  ins.BindBlob(4, nullptr, 0);
  ASSERT_OK(ins.Run("inserting"));

  Statement sel;
  ASSERT_OK(sel.Prepare(db_,
                        "SELECT i, d, s, b, typeof(s), typeof(b) "
                        "FROM t ORDER BY rowid"));
  bool row = false;
  ASSERT_OK(sel.Step(&row, "selecting"));
  ASSERT_TRUE(row);
  EXPECT_EQ(sel.ColumnInt64(0), -42);
  EXPECT_EQ(sel.ColumnDouble(1), 2.5);
  EXPECT_EQ(sel.ColumnText(2), std::string("x\0y", 3));
  EXPECT_EQ(sel.ColumnBlob(3), std::string_view(blob, 3));
  ASSERT_OK(sel.Step(&row, "selecting"));
  ASSERT_TRUE(row);
  EXPECT_TRUE(sel.IsNull(0));
  EXPECT_TRUE(std::isnan(sel.ColumnDouble(1)));
  EXPECT_EQ(sel.ColumnText(2), "");
  EXPECT_EQ(sel.ColumnText(4), "text");
  EXPECT_EQ(sel.ColumnText(5), "blob");
  EXPECT_TRUE(sel.ColumnBlob(3).empty());
  ASSERT_OK(sel.Step(&row, "selecting"));
  EXPECT_FALSE(row);
}

TEST_F(StoreSqlite, StatementIsReusedAfterReset) {
  Statement ins;
  ASSERT_OK(ins.Prepare(db_, "INSERT INTO t (i) VALUES (?1)"));
  for (int i = 0; i < 100; ++i) {
    ins.BindInt64(1, i);
    ASSERT_OK(ins.Run("inserting"));
  }
  EXPECT_EQ(Count(), "100");
  // Reset clears bindings: an unbound parameter is NULL.
  ASSERT_OK(ins.Run("inserting"));
  std::string nulls;
  ASSERT_OK(db_.QueryText("SELECT count(*) FROM t WHERE i IS NULL", &nulls));
  EXPECT_EQ(nulls, "1");
}

TEST_F(StoreSqlite, BindErrorIsReportedByStep) {
  Statement ins;
  ASSERT_OK(ins.Prepare(db_, "INSERT INTO t (i) VALUES (?1)"));
  ins.BindInt64(7, 1);  // no such parameter: SQLITE_RANGE
  Status s = ins.Run("inserting into t");
  EXPECT_EQ(s.code(), pb::IO_ERROR);
  EXPECT_NE(s.message().find("inserting into t"), std::string::npos);
  EXPECT_EQ(Count(), "0");
}

TEST_F(StoreSqlite, PrepareErrorNamesTheSql) {
  Statement bad;
  Status s = bad.Prepare(db_, "SELECT nope FROM t");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("SELECT nope FROM t"), std::string::npos);
  EXPECT_FALSE(bad.is_prepared());
}

TEST_F(StoreSqlite, TransactionRollsBackUnlessCommitted) {
  {
    Transaction txn(&db_);
    ASSERT_OK(txn.Begin(Transaction::Mode::kImmediate, "writing"));
    ASSERT_OK(db_.Exec("INSERT INTO t (i) VALUES (1)", "inserting"));
    EXPECT_TRUE(db_.InTransaction());
  }
  EXPECT_FALSE(db_.InTransaction());
  EXPECT_EQ(Count(), "0");
  {
    Transaction txn(&db_);
    ASSERT_OK(txn.Begin(Transaction::Mode::kDeferred, "writing"));
    ASSERT_OK(db_.Exec("INSERT INTO t (i) VALUES (1)", "inserting"));
    ASSERT_OK(txn.Commit("writing"));
  }
  EXPECT_EQ(Count(), "1");
}

TEST_F(StoreSqlite, SecondWriterIsLocked) {
  ASSERT_OK(db_.Exec("PRAGMA journal_mode = WAL", "wal"));
  Db other;
  ASSERT_OK(other.Open(dir_.file("t.db"), SQLITE_OPEN_READWRITE));
  sqlite3_busy_timeout(other.get(), 20);
  Transaction mine(&db_);
  ASSERT_OK(mine.Begin(Transaction::Mode::kImmediate, "holding the lock"));
  Transaction theirs(&other);
  Status s = theirs.Begin(Transaction::Mode::kImmediate, "second writer");
  EXPECT_EQ(s.code(), pb::STORAGE_LOCKED) << s.ToString();
  // Readers are not blocked by a writer in WAL mode.
  std::string n;
  EXPECT_OK(other.QueryText("SELECT count(*) FROM t", &n));
}

TEST(StoreSqliteOpen, MissingFileWithoutCreateIsIoError) {
  TempDir dir;
  Db db;
  Status s = db.Open(dir.file("missing.db"), SQLITE_OPEN_READWRITE);
  EXPECT_EQ(s.code(), pb::IO_ERROR) << s.ToString();
  EXPECT_NE(s.message().find("missing.db"), std::string::npos);
  EXPECT_FALSE(db.is_open());
}

TEST(StoreSqliteErrors, CodesMapToTypedErrors) {
  struct Case {
    int rc;
    ErrorCode code;
  };
  const Case cases[] = {
      {SQLITE_FULL, pb::STORAGE_FULL},
      {SQLITE_READONLY, pb::STORAGE_READ_ONLY},
      {SQLITE_READONLY_DBMOVED, pb::STORAGE_READ_ONLY},
      {SQLITE_BUSY, pb::STORAGE_LOCKED},
      {SQLITE_BUSY_SNAPSHOT, pb::STORAGE_LOCKED},
      {SQLITE_LOCKED, pb::STORAGE_LOCKED},
      {SQLITE_CORRUPT, pb::CORRUPT},
      {SQLITE_NOTADB, pb::CORRUPT},
      {SQLITE_CONSTRAINT_UNIQUE, pb::INVALID_ARGUMENT},
      {SQLITE_IOERR_WRITE, pb::IO_ERROR},
      {SQLITE_CANTOPEN, pb::IO_ERROR},
      {SQLITE_ERROR, pb::IO_ERROR},
  };
  for (const Case& c : cases) {
    Status s = ToStatus(c.rc, nullptr, "doing things");
    EXPECT_EQ(s.code(), c.code) << "rc " << c.rc;
    EXPECT_EQ(s.message().rfind("doing things: ", 0), 0u) << s.message();
  }
}

}  // namespace
}  // namespace anomalyd::sqlite
