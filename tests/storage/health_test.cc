// Tests of the health checks: CheckFile against files removed, replaced
// and truncated under an open store, and QuickCheck (storage/health.cc).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <thread>

#include "storage/sqlite_store.h"
#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::MakeAnomaly;
using testing::OpenSqlite;
using testing::TempDir;

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

// Overwrites page `page` (from 1) of the database at `path` with garbage.
void ScribbleOnPage(const std::string& path, int64_t page, int64_t page_size) {
  std::mt19937 rng(7);
  std::string garbage(static_cast<size_t>(page_size), '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp((page - 1) * page_size);
  f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  ASSERT_TRUE(f.good());
}

Status Insert(Store* store, int first, int n) {
  std::vector<AnomalyRow> batch;
  for (int i = first; i < first + n; ++i) batch.push_back(MakeAnomaly(i));
  return store->InsertAnomalies(&batch);
}

void ExpectCorrupt(const Status& s, const std::string& path,
                   const std::string& what) {
  EXPECT_EQ(s.code(), pb::CORRUPT) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
}

// A writer over a file that already holds rows in the database file
// itself (the WAL of the run that wrote them was checkpointed at close).
class StoreHealth : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    {
      std::unique_ptr<Store> filler;
      ASSERT_OK(OpenSqlite(path_, &filler));
      ASSERT_OK(Insert(filler.get(), 0, 2000));
    }
    ASSERT_OK(OpenSqlite(path_, &store_, {}, Options()));
    ASSERT_OK(store_->CheckFile());
  }
  // The parameter: background checkpoints (the default) or SQLite's own.
  SqliteOptions Options() const {
    SqliteOptions o;
    o.background_checkpoint = GetParam();
    return o;
  }
  TempDir dir_;
  // Absolute, as the messages name it.
  std::string path_ = std::filesystem::canonical(dir_.path()) / "h.db";
  std::string wal_ = path_ + "-wal";
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Checkpoints, StoreHealth, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Background" : "InCommit";
                         });

TEST_P(StoreHealth, FineAfterCommits) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(Insert(store_.get(), 10000 + 100 * i, 100));
    EXPECT_OK(store_->CheckFile());
  }
  EXPECT_OK(store_->QuickCheck());
}

TEST_P(StoreHealth, RemovedFileIsCorrupt) {
  ASSERT_EQ(unlink(path_.c_str()), 0);
  ExpectCorrupt(store_->CheckFile(), path_, "was removed");
}

TEST_P(StoreHealth, ReplacedFileIsCorrupt) {
  // A copy of the file, moved over it: same bytes, another inode.
  std::filesystem::copy_file(path_, path_ + ".bak");
  ASSERT_EQ(std::rename((path_ + ".bak").c_str(), path_.c_str()), 0);
  ExpectCorrupt(store_->CheckFile(), path_, "another file");
}

TEST_P(StoreHealth, TruncatedFileIsCorrupt) {
  const int64_t size = FileSize(path_);
  ASSERT_GT(size, 0);
  for (int64_t to : {size / 2, int64_t{0}}) {
    ASSERT_EQ(truncate(path_.c_str(), to), 0);
    ExpectCorrupt(store_->CheckFile(), path_, "truncated");
  }
  // It stays reported while the file is short.
  ExpectCorrupt(store_->CheckFile(), path_, "truncated");
}

TEST_P(StoreHealth, RemovedWalIsCorrupt) {
  ASSERT_OK(Insert(store_.get(), 5000, 100));
  ASSERT_OK(store_->CheckFile());
  ASSERT_EQ(unlink(wal_.c_str()), 0);
  ExpectCorrupt(store_->CheckFile(), wal_, "was removed");
}

TEST_P(StoreHealth, ReplacedWalIsCorrupt) {
  ASSERT_OK(Insert(store_.get(), 5000, 100));
  std::filesystem::copy_file(wal_, wal_ + ".bak");
  ASSERT_EQ(std::rename((wal_ + ".bak").c_str(), wal_.c_str()), 0);
  ExpectCorrupt(store_->CheckFile(), wal_, "another file");
}

TEST_P(StoreHealth, TruncatedWalIsCorrupt) {
  ASSERT_OK(Insert(store_.get(), 5000, 100));
  const int64_t size = FileSize(wal_);
  ASSERT_GT(size, 0);
  for (int64_t to : {size / 2, int64_t{0}}) {
    ASSERT_EQ(truncate(wal_.c_str(), to), 0);
    ExpectCorrupt(store_->CheckFile(), wal_, "truncated");
  }
}

TEST_P(StoreHealth, RemovedShmIsCorrupt) {
  ASSERT_EQ(unlink((path_ + "-shm").c_str()), 0);
  ExpectCorrupt(store_->CheckFile(), path_ + "-shm", "was removed");
}

// The store's own checkpoints (in the background or in the commit) copy the
// WAL into the database file, which grows, and start the WAL over: none of
// it may look like damage. A reader holding snapshots meanwhile makes some
// checkpoints stop half-way; pruning frees pages (kept, not given back).
TEST_P(StoreHealth, NoFalseAlarmAcrossManyCommitsAndCheckpoints) {
  const int64_t size_before = FileSize(path_);
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    StoreOptions ro;
    ro.read_only = true;
    std::unique_ptr<Store> r;
    ASSERT_OK(OpenSqlite(path_, &r, ro));
    AnomalyQuery q;
    q.limit = 500;
    while (!stop.load()) {
      AnomalyPage page;
      EXPECT_OK(r->QueryAnomalies(q, &page));
      EXPECT_OK(r->CheckFile());
    }
  });
  struct StopOnExit {  // also when an ASSERT below returns early
    std::atomic<bool>* stop;
    std::thread* thread;
    ~StopOnExit() {
      *stop = true;
      if (thread->joinable()) thread->join();
    }
  } stop_reader{&stop, &reader};
  constexpr int kBatches = 50, kRows = 2000;
  int grew = 0;  // checks that saw the file grow: a checkpoint had run
  int64_t last_size = size_before;
  for (int b = 0; b < kBatches; ++b) {
    SCOPED_TRACE("batch " + std::to_string(b));
    ASSERT_OK(Insert(store_.get(), 100000 + b * kRows, kRows));
    ASSERT_OK(store_->CheckFile());
    if (b % 10 == 9) {
      RetentionPolicy p;
      p.max_rows = 50000;
      ASSERT_OK(store_->Prune(p, nullptr));
      ASSERT_OK(store_->CheckFile());
    }
    const int64_t size = FileSize(path_);
    if (size > last_size) ++grew;
    last_size = size;
  }
  stop = true;
  reader.join();
  // SQLite's checkpoints run in the commit; the thread's may lag on a busy
  // machine, so wait for them to copy everything.
  if (!GetParam()) {
    EXPECT_GE(grew, 1);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (FileSize(path_) < size_before + 10 * 1000 * 1000 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(FileSize(path_), size_before + 10 * 1000 * 1000);
  EXPECT_OK(store_->CheckFile());
  EXPECT_OK(store_->QuickCheck());
}

TEST(StoreHealthReadOnly, ChecksTheMainFileOnly) {
  TempDir dir;
  const std::string path =
      std::filesystem::canonical(dir.path()) / std::string("r.db");
  std::unique_ptr<Store> writer;
  ASSERT_OK(OpenSqlite(path, &writer));
  ASSERT_OK(Insert(writer.get(), 0, 500));
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> reader;
  ASSERT_OK(OpenSqlite(path, &reader, ro));
  EXPECT_OK(reader->CheckFile());
  ASSERT_EQ(unlink((path + "-shm").c_str()), 0);
  EXPECT_OK(reader->CheckFile());  // not its business
  std::filesystem::copy_file(path, path + ".bak");
  ASSERT_EQ(std::rename((path + ".bak").c_str(), path.c_str()), 0);
  ExpectCorrupt(reader->CheckFile(), path, "another file");
  ExpectCorrupt(writer->CheckFile(), path, "another file");
}

TEST(StoreHealthQuickCheck, DamagedPageIsCorrupt) {
  TempDir dir;
  const std::string path = dir.file("q.db");
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
    ASSERT_OK(Insert(store.get(), 0, 20000));
    EXPECT_OK(store->QuickCheck());
  }
  const int64_t pages = FileSize(path) / 16384;
  ASSERT_GT(pages, 100);
  ScribbleOnPage(path, pages / 2, 16384);
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(path, &store, ro));
  Status s = store->QuickCheck();
  EXPECT_EQ(s.code(), pb::CORRUPT) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
}

// A connection that had read every page answered quick_check from its page
// cache and missed damage done on disk since.
TEST(StoreHealthQuickCheck, QuickCheckTrustedThePageCache) {
  TempDir dir;
  const std::string path = dir.file("q.db");
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
    ASSERT_OK(Insert(store.get(), 0, 20000));
  }
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(path, &store));
  ASSERT_OK(store->QuickCheck());  // every page now in its cache (16 MiB)
  ScribbleOnPage(path, FileSize(path) / 16384 / 2, 16384);
  Status s = store->QuickCheck();
  EXPECT_EQ(s.code(), pb::CORRUPT) << s.ToString();
}

// Drops the kernel's cached pages of `path`, so that the next read comes
// from the disk (or at least from below the guest's page cache).
void EvictFromPageCache(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  fdatasync(fd);  // dirty pages cannot be dropped
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

double Seconds(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// Measures QuickCheck on 1,000,000 anomalies of 38 features (about 500
// bytes each, as the bench's rows) for docs/storage.md. Run with
// --gtest_also_run_disabled_tests; takes about 10 s and 0.5 GB of temp
// space.
TEST(StoreHealthQuickCheck, DISABLED_TimeOnAMillionAnomalies) {
  TempDir dir;
  const std::string path = dir.file("big.db");
  constexpr int kRows = 1'000'000, kBatch = 10'000;
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
    for (int i = 0; i < kRows; i += kBatch) {
      std::vector<AnomalyRow> batch;
      for (int j = i; j < i + kBatch; ++j) {
        batch.push_back(MakeAnomaly(j, "s" + std::to_string(j % 8), 38));
      }
      ASSERT_OK(store->InsertAnomalies(&batch));
    }
  }
  std::printf("%d rows, %.1f MB\n", kRows, FileSize(path) / 1e6);
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(path, &store, ro));
  EvictFromPageCache(path);
  std::printf("QuickCheck, file not in the page cache: %.2f s\n",
              Seconds([&] { EXPECT_OK(store->QuickCheck()); }));
  for (int run = 0; run < 3; ++run) {
    std::printf("QuickCheck, file in the page cache: %.2f s\n",
                Seconds([&] { EXPECT_OK(store->QuickCheck()); }));
  }
  std::printf(
      "PRAGMA integrity_check, in the page cache: %.2f s\n", Seconds([&] {
        EXPECT_EQ(testing::RawQuery(path, "PRAGMA integrity_check"), "ok");
      }));
  constexpr int kChecks = 10000;
  std::printf("CheckFile, read-only (1 stat): %.2f us\n",
              1e6 / kChecks * Seconds([&] {
                for (int i = 0; i < kChecks; ++i) EXPECT_OK(store->CheckFile());
              }));
  std::unique_ptr<Store> writer;
  ASSERT_OK(OpenSqlite(path, &writer));
  ASSERT_OK(Insert(writer.get(), kRows, 100));
  std::printf("CheckFile, writer (3 stats): %.2f us\n",
              1e6 / kChecks * Seconds([&] {
                for (int i = 0; i < kChecks; ++i) {
                  EXPECT_OK(writer->CheckFile());
                }
              }));
}

}  // namespace
}  // namespace anomalyd
