// Tests of the background checkpointer (storage/checkpointer.h).
#include "storage/checkpointer.h"

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace anomalyd::sqlite {
namespace {

using anomalyd::testing::TempDir;

constexpr int kPageSize = 4096;
// The WAL file of n frames: a 32-byte header, then a 24-byte header and a
// page per frame.
int64_t WalBytes(int64_t frames) { return 32 + frames * (24 + kPageSize); }

class StoreCheckpointer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(writer_.Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    ASSERT_OK(writer_.Exec("PRAGMA page_size = " + std::to_string(kPageSize) +
                               "; PRAGMA journal_mode = WAL;"
                               "PRAGMA synchronous = NORMAL;"
                               "CREATE TABLE t (b BLOB NOT NULL);",
                           "creating t"));
  }
  // Commits `n` rows of one page each (about n + 1 frames).
  void Commit(int n) {
    ASSERT_OK(writer_.Exec("BEGIN IMMEDIATE", "begin"));
    Statement ins;
    ASSERT_OK(ins.Prepare(writer_, "INSERT INTO t VALUES (zeroblob(4000))"));
    for (int i = 0; i < n; ++i) ASSERT_OK(ins.Run("inserting"));
    ASSERT_OK(writer_.Exec("COMMIT", "commit"));
  }
  int64_t WalSize() {
    std::error_code ec;
    auto n = std::filesystem::file_size(path_ + "-wal", ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  // Every committed row is there and the file is sound.
  void ExpectRowsAndIntact(int64_t rows) {
    std::string n;
    ASSERT_OK(writer_.QueryText("SELECT count(*) FROM t", &n));
    EXPECT_EQ(n, std::to_string(rows));
    ASSERT_OK(writer_.QueryText("PRAGMA integrity_check", &n));
    EXPECT_EQ(n, "ok");
  }
  TempDir dir_;
  std::string path_ = dir_.file("t.db");
  Db writer_;
};

TEST_F(StoreCheckpointer, CopiesTheWalInTheBackground) {
  std::unique_ptr<Checkpointer> c;
  ASSERT_OK(
      Checkpointer::Start(writer_, path_, "PRAGMA synchronous = NORMAL", &c));
  Commit(Checkpointer::kStartFrames);  // crosses the threshold
  // The commit returned without checkpointing; the thread copies the pages
  // into the database file soon after.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (c->background_runs() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(std::filesystem::file_size(path_),
            uint64_t{Checkpointer::kStartFrames} * kPageSize);
  EXPECT_EQ(c->background_runs(), 1);
  EXPECT_EQ(c->writer_runs(), 0);
  // Fully copied: the next write transaction starts the WAL over.
  const int64_t wal = WalSize();
  Commit(10);
  EXPECT_EQ(WalSize(), wal);
  c.reset();
  ExpectRowsAndIntact(Checkpointer::kStartFrames + 10);
}

// Commits back to back never leave the thread a moment in which every frame
// is copied, so the WAL would never start over: the writer steps in.
TEST_F(StoreCheckpointer, BoundsTheWalUnderBackToBackCommits) {
  std::unique_ptr<Checkpointer> c;
  ASSERT_OK(
      Checkpointer::Start(writer_, path_, "PRAGMA synchronous = OFF", &c));
  constexpr int kRowsPerCommit = 200;
  for (int i = 0; i < 100; ++i) {
    Commit(kRowsPerCommit);
    ASSERT_LE(WalSize(),
              WalBytes(Checkpointer::kMaxFrames + 2 * (kRowsPerCommit + 10)))
        << "after commit " << i;
  }
  EXPECT_GT(c->background_runs() + c->writer_runs(), 0);
  c.reset();
  ExpectRowsAndIntact(100 * kRowsPerCommit);
}

TEST_F(StoreCheckpointer, StopsCleanlyWhenIdleAndGivesTheHookBack) {
  std::unique_ptr<Checkpointer> c;
  ASSERT_OK(
      Checkpointer::Start(writer_, path_, "PRAGMA synchronous = FULL", &c));
  c.reset();
  // No hook and no automatic checkpoint left: commits just grow the WAL.
  Commit(Checkpointer::kStartFrames + 100);
  EXPECT_GE(WalSize(), WalBytes(Checkpointer::kStartFrames + 100));
}

TEST_F(StoreCheckpointer, MissingFileIsAnError) {
  std::unique_ptr<Checkpointer> c;
  Status s = Checkpointer::Start(writer_, dir_.file("none/t.db"),
                                 "PRAGMA synchronous = NORMAL", &c);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(c, nullptr);
}

}  // namespace
}  // namespace anomalyd::sqlite
