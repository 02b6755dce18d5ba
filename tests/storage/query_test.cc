// Tests of anomaly queries: filters, orders, keyset paging, bucket counts
// and their query plans (storage/query.cc).
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::MakeAnomaly;
using testing::OpenSqlite;
using testing::TempDir;

// Rows with many ties in time and score, over three streams.
std::vector<AnomalyRow> TieHeavyRows(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<AnomalyRow> rows;
  for (int i = 0; i < n; ++i) {
    AnomalyRow a = MakeAnomaly(i, std::string(1, "abc"[rng() % 3]), 3);
    a.event_time_us = static_cast<int64_t>(rng() % 100) * 1000;
    a.scored_time_us = static_cast<int64_t>(rng() % 150) * 1000;
    a.score = static_cast<double>(rng() % 40) / 2.0;
    a.model_version = 1 + rng() % 3;
    rows.push_back(a);
  }
  return rows;
}

int64_t TimeOf(const AnomalyRow& a, TimeField f) {
  return f == TimeField::kEvent ? a.event_time_us : a.scored_time_us;
}

bool Matches(const AnomalyQuery& q, const AnomalyRow& a) {
  const int64_t t = TimeOf(a, q.time_field);
  return (!q.since_us || t >= *q.since_us) && (!q.until_us || t < *q.until_us) &&
         (!q.stream || a.stream == *q.stream) && (!q.min_score || a.score >= *q.min_score) &&
         (!q.model_version || a.model_version == *q.model_version);
}

// True when a sorts before b in the query's order.
bool Before(const AnomalyQuery& q, const AnomalyRow& a, const AnomalyRow& b) {
  if (q.order == AnomalyOrder::kScoreDesc) {
    if (a.score != b.score) return a.score > b.score;
  } else {
    const int64_t ta = TimeOf(a, q.time_field), tb = TimeOf(b, q.time_field);
    if (q.order == AnomalyOrder::kTimeAsc) return ta != tb ? ta < tb : a.id < b.id;
    if (ta != tb) return ta > tb;
  }
  return a.id > b.id;
}

std::vector<int64_t> Expected(AnomalyQuery q, std::vector<AnomalyRow> rows) {
  rows.erase(
      std::remove_if(rows.begin(), rows.end(), [&](const AnomalyRow& a) { return !Matches(q, a); }),
      rows.end());
  std::sort(rows.begin(), rows.end(),
            [&](const AnomalyRow& a, const AnomalyRow& b) { return Before(q, a, b); });
  std::vector<int64_t> ids;
  for (const AnomalyRow& a : rows) ids.push_back(a.id);
  return ids;
}

// Follows the cursor to the end; returns every id in page order.
std::vector<int64_t> AllPages(Store* store, AnomalyQuery q, int* pages) {
  std::vector<int64_t> ids;
  *pages = 0;
  for (;;) {
    AnomalyPage page;
    EXPECT_OK(store->QueryAnomalies(q, &page));
    ++*pages;
    EXPECT_LE(static_cast<int64_t>(page.rows.size()), q.limit);
    for (const AnomalyRow& a : page.rows) ids.push_back(a.id);
    if (page.next_cursor.empty() || *pages > 1000) break;
    EXPECT_EQ(static_cast<int64_t>(page.rows.size()), q.limit);
    q.cursor = page.next_cursor;
  }
  return ids;
}

class StoreQuery : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(OpenSqlite(dir_.file("q.db"), &store_));
    rows_ = TieHeavyRows(300, /*seed=*/7);
    ASSERT_OK(store_->InsertAnomalies(&rows_));
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<AnomalyRow> rows_;
};

TEST_F(StoreQuery, EveryFilterCombinationMatchesBruteForce) {
  int combos = 0;
  for (int mask = 0; mask < 32; ++mask) {
    for (AnomalyOrder order :
         {AnomalyOrder::kTimeDesc, AnomalyOrder::kScoreDesc, AnomalyOrder::kTimeAsc}) {
      for (TimeField field : {TimeField::kEvent, TimeField::kScored}) {
        AnomalyQuery q;
        if (mask & 1) q.since_us = 20'000;
        if (mask & 2) q.until_us = 70'000;
        if (mask & 4) q.stream = "b";
        if (mask & 8) q.min_score = 8.0;
        if (mask & 16) q.model_version = 2;
        q.order = order;
        q.time_field = field;
        q.limit = 7;
        int pages = 0;
        std::vector<int64_t> want = Expected(q, rows_);
        ASSERT_FALSE(want.empty()) << mask;
        EXPECT_EQ(AllPages(store_.get(), q, &pages), want)
            << "mask " << mask << " order " << static_cast<int>(order) << " field "
            << static_cast<int>(field);
        EXPECT_EQ(pages, std::max<int>(1, (want.size() + 6) / 7));
        ++combos;
      }
    }
  }
  EXPECT_EQ(combos, 192);
}

TEST_F(StoreQuery, OnePageHoldsEverythingWhenLimitIsLarge) {
  AnomalyQuery q;
  q.limit = kMaxQueryLimit;
  AnomalyPage page;
  ASSERT_OK(store_->QueryAnomalies(q, &page));
  EXPECT_EQ(page.rows.size(), rows_.size());
  EXPECT_TRUE(page.next_cursor.empty());
  q.limit = 300;  // exactly the row count: no next page either
  ASSERT_OK(store_->QueryAnomalies(q, &page));
  EXPECT_TRUE(page.next_cursor.empty());
  q.stream = "nope";
  ASSERT_OK(store_->QueryAnomalies(q, &page));
  EXPECT_TRUE(page.rows.empty());
}

TEST_F(StoreQuery, PagingWithInsertsNeitherSkipsNorRepeats) {
  std::mt19937 rng(11);
  int next_i = 1000;
  for (AnomalyOrder order :
       {AnomalyOrder::kTimeDesc, AnomalyOrder::kScoreDesc, AnomalyOrder::kTimeAsc}) {
    AnomalyQuery q;
    q.order = order;
    q.limit = 9;
    AnomalyPage first;
    ASSERT_OK(store_->QueryAnomalies(q, &first));
    // Every row present when paging starts, in order.
    const std::vector<int64_t> before = Expected(q, [&] {
      AnomalyQuery all;
      all.limit = kMaxQueryLimit;
      AnomalyPage p;
      EXPECT_OK(store_->QueryAnomalies(all, &p));
      return p.rows;
    }());
    std::vector<AnomalyRow> seen = first.rows;
    q.cursor = first.next_cursor;
    while (!q.cursor.empty()) {
      // New rows: newer, older, and tied with the last row on its key.
      const AnomalyRow& last = seen.back();
      std::vector<AnomalyRow> fresh = TieHeavyRows(4, rng());
      for (AnomalyRow& a : fresh) a.record_id = "new" + std::to_string(next_i++);
      fresh[0].event_time_us = last.event_time_us;
      fresh[0].score = last.score;
      fresh[1].event_time_us = 1'000'000;
      fresh[1].score = 1000;
      fresh[2].event_time_us = -1;
      fresh[2].score = -1;
      ASSERT_OK(store_->InsertAnomalies(&fresh));
      AnomalyPage page;
      ASSERT_OK(store_->QueryAnomalies(q, &page));
      for (const AnomalyRow& a : page.rows) {
        EXPECT_TRUE(Before(q, seen.back(), a)) << "out of order: " << a.id;
        seen.push_back(a);
      }
      q.cursor = page.next_cursor;
    }
    std::set<int64_t> ids;
    for (const AnomalyRow& a : seen) {
      EXPECT_TRUE(ids.insert(a.id).second) << "repeated " << a.id;
    }
    for (int64_t id : before) EXPECT_EQ(ids.count(id), 1u) << "skipped " << id;
    // Rows inserted meanwhile that sort after the cursor show up too.
    EXPECT_GT(ids.size(), before.size());
  }
}

// A row's size as AnomalyQuery::max_bytes counts it (types.h).
int64_t WireBytes(const AnomalyRow& a) {
  int64_t n =
      64 + a.record_id.size() + a.stream.size() + 4 * (a.features.size() + a.contributions.size());
  for (const auto& [k, v] : a.labels) n += k.size() + v.size();
  return n;
}

// Pages bounded by bytes over rows of very different sizes (record ids up to
// 6 KB): each page keeps to the bound unless it holds a single row, stops
// only when the next row would not fit, and the pages together hold every
// matching row once, in order: the row that did not fit opens the next
// page.
TEST(StoreQueryBytes, ByteBoundedPagesNeitherSkipNorRepeat) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("b.db"), &store));
  std::vector<AnomalyRow> rows = TieHeavyRows(250, /*seed=*/3);
  std::mt19937 rng(5);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].record_id = "big" + std::to_string(i) + std::string(rng() % 6000, 'x');
    if (i % 7 == 0) rows[i].labels.push_back({"note", std::string(900, 'n')});
  }
  ASSERT_OK(store->InsertAnomalies(&rows));
  std::map<int64_t, int64_t> bytes_of;
  for (const AnomalyRow& a : rows) bytes_of[a.id] = WireBytes(a);

  int checked = 0;
  for (AnomalyOrder order :
       {AnomalyOrder::kTimeDesc, AnomalyOrder::kScoreDesc, AnomalyOrder::kTimeAsc}) {
    for (TimeField field : {TimeField::kEvent, TimeField::kScored}) {
      for (int64_t max_bytes : {int64_t{1}, int64_t{5000}, int64_t{40000}}) {
        for (int64_t limit : {int64_t{4}, int64_t{100}}) {
          for (bool filtered : {false, true}) {
            AnomalyQuery q;
            q.order = order;
            q.time_field = field;
            q.max_bytes = max_bytes;
            q.limit = limit;
            if (filtered) q.stream = "b";
            SCOPED_TRACE(::testing::Message()
                         << "order " << static_cast<int>(order) << " field "
                         << static_cast<int>(field) << " max_bytes " << max_bytes << " limit "
                         << limit << " filtered " << filtered);
            const std::vector<int64_t> want = Expected(q, rows);
            std::vector<int64_t> got;
            for (int pages = 0; pages <= 1000; ++pages) {
              AnomalyPage page;
              ASSERT_OK(store->QueryAnomalies(q, &page));
              ASSERT_FALSE(page.rows.empty());
              ASSERT_LE(static_cast<int64_t>(page.rows.size()), limit);
              int64_t bytes = 0;
              for (const AnomalyRow& a : page.rows) {
                EXPECT_EQ(WireBytes(a), bytes_of[a.id]);
                bytes += WireBytes(a);
                got.push_back(a.id);
              }
              if (page.rows.size() > 1) {
                EXPECT_LE(bytes, max_bytes);
              }
              if (page.next_cursor.empty()) break;
              // Full: by count, or the next row would not have fitted.
              const size_t next = got.size();
              ASSERT_LT(next, want.size());
              if (static_cast<int64_t>(page.rows.size()) < limit) {
                EXPECT_GT(bytes + bytes_of[want[next]], max_bytes);
              }
              q.cursor = page.next_cursor;
            }
            EXPECT_EQ(got, want);
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 72);
}

TEST_F(StoreQuery, NoByteBoundIsTheDefaultAndNegativeIsRejected) {
  AnomalyQuery q;
  q.limit = kMaxQueryLimit;
  EXPECT_EQ(q.max_bytes, 0);
  AnomalyPage page;
  ASSERT_OK(store_->QueryAnomalies(q, &page));
  EXPECT_EQ(page.rows.size(), rows_.size());
  q.max_bytes = -1;
  EXPECT_EQ(store_->QueryAnomalies(q, &page).code(), pb::INVALID_ARGUMENT);
  // A bound that every row exceeds still returns one row per page.
  q.max_bytes = 1;
  q.limit = 10;
  ASSERT_OK(store_->QueryAnomalies(q, &page));
  EXPECT_EQ(page.rows.size(), 1u);
  EXPECT_FALSE(page.next_cursor.empty());
}

TEST_F(StoreQuery, RejectsBadLimitsRangesAndCursors) {
  AnomalyPage page;
  for (int64_t limit : {int64_t{0}, int64_t{-1}, kMaxQueryLimit + 1, int64_t{1} << 40}) {
    AnomalyQuery q;
    q.limit = limit;
    EXPECT_EQ(store_->QueryAnomalies(q, &page).code(), pb::INVALID_ARGUMENT) << limit;
  }
  AnomalyQuery q;
  q.since_us = 10;
  q.until_us = 10;
  EXPECT_EQ(store_->QueryAnomalies(q, &page).code(), pb::INVALID_ARGUMENT);

  AnomalyQuery by_time;
  by_time.limit = 5;
  ASSERT_OK(store_->QueryAnomalies(by_time, &page));
  const std::string time_cursor = page.next_cursor;
  ASSERT_FALSE(time_cursor.empty());
  AnomalyQuery by_score;
  by_score.order = AnomalyOrder::kScoreDesc;
  by_score.cursor = time_cursor;
  EXPECT_EQ(store_->QueryAnomalies(by_score, &page).code(), pb::INVALID_ARGUMENT);
  AnomalyQuery by_scored = by_time;
  by_scored.time_field = TimeField::kScored;
  by_scored.cursor = time_cursor;
  EXPECT_EQ(store_->QueryAnomalies(by_scored, &page).code(), pb::INVALID_ARGUMENT);
  by_time.cursor = "garbage";
  EXPECT_EQ(store_->QueryAnomalies(by_time, &page).code(), pb::INVALID_ARGUMENT);
  // A well-formed cursor past every row is simply the end.
  by_time.cursor = "e1.-999999999.1";
  ASSERT_OK(store_->QueryAnomalies(by_time, &page));
  EXPECT_TRUE(page.rows.empty());
  EXPECT_TRUE(page.next_cursor.empty());
}

TEST_F(StoreQuery, CountByBucketMatchesBruteForce) {
  for (TimeField field : {TimeField::kEvent, TimeField::kScored}) {
    for (int64_t bucket : {int64_t{1000}, int64_t{7000}, int64_t{1'000'000}}) {
      const int64_t since = 5'500, until = 90'000;
      std::map<std::pair<std::string, int64_t>, int64_t> want;
      for (const AnomalyRow& a : rows_) {
        const int64_t t = TimeOf(a, field);
        if (t >= since && t < until) ++want[{a.stream, t - t % bucket}];
      }
      std::vector<BucketCount> got;
      ASSERT_OK(store_->CountByBucket(since, until, bucket, field, &got));
      ASSERT_EQ(got.size(), want.size());
      auto it = want.begin();
      for (const BucketCount& c : got) {
        EXPECT_EQ(c.stream, it->first.first);
        EXPECT_EQ(c.bucket_start_us, it->first.second);
        EXPECT_EQ(c.count, it->second);
        ++it;
      }
    }
  }
  std::vector<BucketCount> got;
  EXPECT_EQ(store_->CountByBucket(0, 10, 0, TimeField::kEvent, &got).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(store_->CountByBucket(10, 10, 5, TimeField::kEvent, &got).code(), pb::INVALID_ARGUMENT);
}

TEST(StoreQueryBuckets, TimesBeforeEpochFloorToTheirBucket) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("b.db"), &store));
  std::vector<AnomalyRow> rows;
  for (int64_t t : {-2500, -1000, -1, 0, 999, 1000}) {
    AnomalyRow a = MakeAnomaly(0);
    a.event_time_us = t;
    rows.push_back(a);
  }
  ASSERT_OK(store->InsertAnomalies(&rows));
  std::vector<BucketCount> got;
  ASSERT_OK(store->CountByBucket(-10'000, 10'000, 1000, TimeField::kEvent, &got));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].bucket_start_us, -3000);
  EXPECT_EQ(got[1].bucket_start_us, -1000);
  EXPECT_EQ(got[1].count, 2);
  EXPECT_EQ(got[2].bucket_start_us, 0);
  EXPECT_EQ(got[2].count, 2);
  EXPECT_EQ(got[3].bucket_start_us, 1000);
}

// The operators' queries are index range scans. Time order needs no sort;
// score order picks its page's ids from a covering time index (then sorts
// only those entries).
TEST_F(StoreQuery, QueryPlansUseIndexes) {
  struct Case {
    const char* name;
    AnomalyQuery q;
    const char* search;
  };
  std::vector<Case> cases;
  AnomalyQuery q;
  q.since_us = 1;
  q.until_us = 2;
  cases.push_back({"event time range", q, "INDEX anomalies_event ("});
  q.min_score = 3;
  cases.push_back({"event time range + min score", q, "INDEX anomalies_event ("});
  q.cursor = "e1.5.5";
  cases.push_back({"... next page", q, "INDEX anomalies_event ("});
  q.cursor.clear();
  q.time_field = TimeField::kScored;
  cases.push_back({"scored time range + min score", q, "INDEX anomalies_scored ("});
  q.time_field = TimeField::kEvent;
  q.stream = "s";
  cases.push_back({"stream + time range + min score", q, "INDEX anomalies_stream (stream=? AND"});
  AnomalyQuery s;
  s.order = AnomalyOrder::kScoreDesc;
  s.since_us = 1;
  s.until_us = 2;
  s.min_score = 3;
  cases.push_back({"top scores in a range", s, "COVERING INDEX anomalies_event ("});
  s.cursor = "x1.4000000000000000.5";
  cases.push_back({"... next page", s, "COVERING INDEX anomalies_event ("});
  s.stream = "s";
  cases.push_back({"top scores of a stream", s, "COVERING INDEX anomalies_stream (stream=? AND"});
  for (const Case& c : cases) {
    std::string plan;
    ASSERT_OK(store_->ExplainQuery(c.q, &plan));
    EXPECT_NE(plan.find(std::string("SEARCH anomalies USING ") + c.search), std::string::npos)
        << c.name << ":\n"
        << plan;
    EXPECT_EQ(plan.find("SCAN"), std::string::npos) << c.name << ":\n" << plan;
    if (c.q.order == AnomalyOrder::kTimeDesc) {
      EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << c.name << ":\n" << plan;
    }
  }
}

}  // namespace
}  // namespace anomalyd
