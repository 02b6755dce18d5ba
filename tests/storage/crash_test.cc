// Crash test: a child process writes batches and reports each committed one
// over a pipe; it is killed with SIGKILL at a random moment. Every reported
// batch must then be there, whole, and the file must pass integrity_check.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::MakeAnomaly;
using testing::OpenSqlite;
using testing::RawQuery;
using testing::TempDir;

constexpr uint32_t kDim = 8;

// Batch b holds BatchSize(b) rows; sizes vary so that kills land inside
// both small and large transactions.
int BatchSize(int64_t b) {
  static const int kSizes[] = {1, 40, 400};
  return kSizes[b % 3];
}

// The child: never returns.
[[noreturn]] void WriteUntilKilled(const std::string& path, int fd) {
  std::unique_ptr<Store> store;
  StoreOptions o;
  o.reservoir_capacity = 100;
  if (!OpenSqlite(path, &store, o).ok()) _exit(2);
  for (int64_t b = 0;; ++b) {
    std::vector<AnomalyRow> batch;
    for (int i = 0; i < BatchSize(b); ++i) {
      AnomalyRow a = MakeAnomaly(i, "crash", 38);
      a.record_id = std::to_string(b) + "/" + std::to_string(i);
      a.labels = {{"batch", std::to_string(b)}};
      batch.push_back(std::move(a));
    }
    if (!store->InsertAnomalies(&batch).ok()) _exit(3);
    std::vector<float> samples(kDim * 50, static_cast<float>(b));
    if (!store->AddSamples("crash", kDim, samples.data(), 50).ok()) _exit(4);
    if (write(fd, &b, sizeof b) != sizeof b) _exit(5);
  }
}

TEST(StoreCrash, ReportedBatchesSurviveSigkill) {
  std::mt19937 rng(2024);
  for (int run = 0; run < 6; ++run) {
    TempDir dir;
    const std::string path = dir.file("crash.db");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      WriteUntilKilled(path, fds[1]);
    }
    close(fds[1]);

    // Wait for the first commit, then kill at a random moment after it.
    std::set<int64_t> reported;
    int64_t b = 0;
    ASSERT_EQ(read(fds[0], &b, sizeof b), static_cast<ssize_t>(sizeof b))
        << "the child died before its first commit";
    reported.insert(b);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 150'000));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus))
        << "child exited with " << WEXITSTATUS(wstatus);
    // Reports are 8-byte writes, atomic on a pipe: read to EOF.
    while (read(fds[0], &b, sizeof b) == static_cast<ssize_t>(sizeof b)) {
      reported.insert(b);
    }
    close(fds[0]);

    ASSERT_EQ(RawQuery(path, "PRAGMA integrity_check"), "ok");
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(path, &store));
    std::map<int64_t, int> rows_of;  // batch -> rows found
    AnomalyQuery q;
    q.limit = kMaxQueryLimit;
    for (;;) {
      AnomalyPage page;
      ASSERT_OK(store->QueryAnomalies(q, &page));
      for (const AnomalyRow& a : page.rows) {
        ASSERT_EQ(a.labels.size(), 1u);
        ++rows_of[std::stoll(a.labels[0].second)];
        ASSERT_EQ(a.features.size(), 38u);
      }
      if (page.next_cursor.empty()) break;
      q.cursor = page.next_cursor;
    }
    for (int64_t r : reported) {
      EXPECT_EQ(rows_of.count(r), 1u)
          << "run " << run << ": batch " << r << " was reported but is missing";
    }
    for (const auto& [batch, n] : rows_of) {  // all or nothing
      EXPECT_EQ(n, BatchSize(batch)) << "run " << run << ": batch " << batch;
    }
    // At most one batch committed after its report could be sent.
    EXPECT_LE(rows_of.size(), reported.size() + 1) << "run " << run;
    RecordProperty("run" + std::to_string(run) + "_batches",
                   std::to_string(reported.size()));
    Baseline base;
    ASSERT_OK(store->LoadReservoir("crash", &base));
    EXPECT_EQ(base.rows(), std::min<size_t>(100, base.seen));
    EXPECT_GE(base.seen, 50 * reported.size());
    store.reset();
    EXPECT_EQ(RawQuery(path, "PRAGMA integrity_check"), "ok");
  }
}

}  // namespace
}  // namespace anomalyd
