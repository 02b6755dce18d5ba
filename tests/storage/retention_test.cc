// Tests of retention (storage/retention.cc).
#include <algorithm>

#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::FakeClock;
using testing::MakeAnomaly;
using testing::OpenSqlite;
using testing::TempDir;

class StoreRetention : public ::testing::Test {
 protected:
  // 100 anomalies scored at 1000, 2000, ..., 100000 us; the clock at 100000.
  void SetUp() override {
    StoreOptions o;
    o.clock = &clock_;
    ASSERT_OK(OpenSqlite(dir_.file("p.db"), &store_, o));
    std::vector<AnomalyRow> rows;
    for (int i = 0; i < 100; ++i) {
      rows.push_back(MakeAnomaly(i));
      // Scored order differs from insertion order: retention goes by time.
      rows.back().scored_time_us = 1000 * (1 + (i * 37) % 100);
    }
    ASSERT_OK(store_->InsertAnomalies(&rows));
  }

  // Scored times of the rows left, ascending.
  std::vector<int64_t> Left() {
    AnomalyQuery q;
    q.limit = kMaxQueryLimit;
    q.time_field = TimeField::kScored;
    AnomalyPage page;
    EXPECT_OK(store_->QueryAnomalies(q, &page));
    std::vector<int64_t> t;
    for (const AnomalyRow& a : page.rows) t.push_back(a.scored_time_us);
    std::reverse(t.begin(), t.end());
    return t;
  }

  FakeClock clock_{100'000};
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreRetention, PrunesByAgeInSmallBatches) {
  RetentionPolicy p;
  p.max_age_us = 60'000;  // keep scored >= 40000
  p.batch_rows = 7;
  int64_t deleted = 0;
  ASSERT_OK(store_->Prune(p, &deleted));
  EXPECT_EQ(deleted, 39);
  std::vector<int64_t> left = Left();
  ASSERT_EQ(left.size(), 61u);
  EXPECT_EQ(left.front(), 40'000);
  ASSERT_OK(store_->Prune(p, &deleted));
  EXPECT_EQ(deleted, 0);
}

TEST_F(StoreRetention, PrunesBeyondRowCountKeepingTheNewest) {
  RetentionPolicy p;
  p.max_rows = 25;
  p.batch_rows = 10;
  int64_t deleted = 0;
  ASSERT_OK(store_->Prune(p, &deleted));
  EXPECT_EQ(deleted, 75);
  std::vector<int64_t> left = Left();
  ASSERT_EQ(left.size(), 25u);
  EXPECT_EQ(left.front(), 76'000);
  EXPECT_EQ(left.back(), 100'000);
  p.max_rows = 1000;  // more than there are
  ASSERT_OK(store_->Prune(p, &deleted));
  EXPECT_EQ(deleted, 0);
}

TEST_F(StoreRetention, AgeThenCountAndBudgetOfBatches) {
  RetentionPolicy p;
  p.max_age_us = 50'000;  // 49 rows older than 51000
  p.max_rows = 40;        // then 11 more
  p.batch_rows = 5;
  p.max_batches = 4;
  int64_t deleted = 0, total = 0;
  int calls = 0;
  do {
    ASSERT_OK(store_->Prune(p, &deleted));
    EXPECT_LE(deleted, 20);
    total += deleted;
    ++calls;
  } while (deleted > 0 && calls < 100);
  EXPECT_EQ(total, 60);
  EXPECT_GE(calls, 3);
  EXPECT_EQ(Left().front(), 61'000);
}

TEST_F(StoreRetention, NoLimitsDeletesNothingAndBadPoliciesAreRejected) {
  int64_t deleted = -1;
  ASSERT_OK(store_->Prune(RetentionPolicy(), &deleted));
  EXPECT_EQ(deleted, 0);
  EXPECT_EQ(Left().size(), 100u);
  RetentionPolicy cases[4];
  cases[0].batch_rows = 0;
  cases[1].max_age_us = -1;
  cases[2].max_rows = -5;
  cases[3].max_batches = -1;
  for (const RetentionPolicy& p : cases) {
    EXPECT_EQ(store_->Prune(p, nullptr).code(), pb::INVALID_ARGUMENT);
  }
}

}  // namespace
}  // namespace anomalyd
