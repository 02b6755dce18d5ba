// The Store contract (storage/store.h), run against every implementation:
// SqliteStore and the tests' MemoryStore (tests/storage/memory_store.h,
// which the writer's unit tests stand on, so it must keep the contract for
// what it implements). A new backend adds itself to kBackends; the cases
// cover what MemoryStore implements (writes of the writer thread), the
// per-backend suites (store_test.cc, query_test.cc, ...) the rest.
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "storage/open.h"
#include "storage/store.h"
#include "tests/storage/memory_store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::FakeClock;
using testing::MakeAnomaly;
using testing::MemoryStore;
using testing::TempDir;

struct Backend {
  const char* name;
  // Opens a new, empty store in `dir` for writing.
  std::function<Status(const TempDir& dir, const StoreOptions& options,
                       std::unique_ptr<Store>* store)>
      open;
};

const Backend kBackends[] = {
    {"sqlite",
     [](const TempDir& dir, const StoreOptions& options, std::unique_ptr<Store>* store) {
       StoreSpec spec;
       spec.url = SqliteUrl(dir.file("contract.db"));
       spec.options = options;
       return OpenStore(spec, store);
     }},
    {"memory",
     [](const TempDir&, const StoreOptions& options, std::unique_ptr<Store>* store) {
       *store = std::make_unique<MemoryStore>(options);
       return Status::OK();
     }},
};

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  // Opens (again) with `reservoir_capacity`; the first open registers
  // model 1 of stream "s".
  void Open(int64_t reservoir_capacity = 10000) {
    StoreOptions o;
    o.clock = &clock_;
    o.reservoir_capacity = reservoir_capacity;
    store_.reset();
    ASSERT_OK(GetParam().open(dir_, o, &store_));
    if (registered_) return;
    registered_ = true;
    ModelRow m;
    m.stream = "s";
    m.version = 1;
    m.bundle_path = "bundles/s/v1";
    ASSERT_OK(store_->RegisterModel(m));
  }
  void SetUp() override { Open(); }

  // Anomalies stored (MemoryStore has no queries).
  std::vector<AnomalyRow> Stored() {
    if (auto* m = dynamic_cast<MemoryStore*>(store_.get())) return m->anomalies();
    std::vector<AnomalyRow> out;
    AnomalyQuery q;
    q.limit = kMaxQueryLimit;
    for (;;) {
      AnomalyPage page;
      EXPECT_OK(store_->QueryAnomalies(q, &page));
      out.insert(out.end(), page.rows.begin(), page.rows.end());
      if (page.next_cursor.empty()) break;
      q.cursor = page.next_cursor;
    }
    return out;
  }

  TempDir dir_;
  FakeClock clock_{5'000'000};
  std::unique_ptr<Store> store_;
  bool registered_ = false;
};

TEST_P(StoreContract, InsertSetsIdsAndScoredTime) {
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2), MakeAnomaly(3)};
  batch[1].scored_time_us = 0;  // "now"
  ASSERT_OK(store_->InsertAnomalies(&batch));
  EXPECT_GT(batch[0].id, 0);
  EXPECT_NE(batch[0].id, batch[1].id);
  EXPECT_NE(batch[1].id, batch[2].id);
  EXPECT_EQ(batch[1].scored_time_us, 5'000'000);
  EXPECT_EQ(batch[0].scored_time_us, MakeAnomaly(1).scored_time_us);
  std::vector<AnomalyRow> more = {MakeAnomaly(4)};
  ASSERT_OK(store_->InsertAnomalies(&more));
  EXPECT_GT(more[0].id, batch[2].id);  // later rows sort as newer
  EXPECT_EQ(Stored().size(), 4u);
}

TEST_P(StoreContract, BatchWithANanInsertsNothing) {
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2)};
  batch[1].kl = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(store_->InsertAnomalies(&batch).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(batch[0].id, 0);  // *batch unchanged
  EXPECT_TRUE(Stored().empty());
  std::vector<AnomalyRow> none;
  EXPECT_OK(store_->InsertAnomalies(&none));
}

TEST_P(StoreContract, ThresholdsNeedARegisteredModel) {
  ThresholdRow t;
  t.stream = "s";
  t.model_version = 2;  // not registered
  t.method = "pot";
  t.value = 3;
  EXPECT_EQ(store_->AppendThreshold(&t).code(), pb::INVALID_ARGUMENT);
  t.model_version = 1;
  t.value = std::nan("");
  EXPECT_EQ(store_->AppendThreshold(&t).code(), pb::INVALID_ARGUMENT);
  ThresholdRow latest;
  EXPECT_EQ(store_->LatestThreshold("s", &latest).code(), pb::NOT_FOUND);
  t.value = 3;
  ASSERT_OK(store_->AppendThreshold(&t));
  EXPECT_GT(t.id, 0);
  EXPECT_EQ(t.time_us, 5'000'000);
  ThresholdRow later = t;
  later.value = 4;
  later.time_us = 0;
  clock_.Set(6'000'000);
  ASSERT_OK(store_->AppendThreshold(&later));
  ASSERT_OK(store_->LatestThreshold("s", &latest));
  EXPECT_EQ(latest.value, 4);
  EXPECT_EQ(latest.id, later.id);
}

TEST_P(StoreContract, ReservoirKeepsAtMostItsCapacity) {
  Open(/*reservoir_capacity=*/20);
  Baseline b;
  EXPECT_EQ(store_->LoadReservoir("s", &b).code(), pb::NOT_FOUND);
  EXPECT_OK(store_->ClearReservoir("s"));  // none: fine
  std::vector<float> rows(2 * 60);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i);
  ASSERT_OK(store_->AddSamples("s", 2, rows.data(), 25));
  ASSERT_OK(store_->AddSamples("s", 2, rows.data() + 50, 35));
  ASSERT_OK(store_->LoadReservoir("s", &b));
  EXPECT_EQ(b.dim, 2u);
  EXPECT_EQ(b.seen, 60u);
  EXPECT_EQ(b.rows(), 20u);
  for (size_t r = 0; r < b.rows(); ++r) {  // whole records, never mixed
    EXPECT_EQ(b.values[2 * r + 1], b.values[2 * r] + 1);
  }
}

TEST_P(StoreContract, ReservoirRejectsBadSamples) {
  std::vector<float> rows = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(store_->AddSamples("s", 0, rows.data(), 1).code(), pb::INVALID_ARGUMENT);
  ASSERT_OK(store_->AddSamples("s", 2, rows.data(), 3));
  // Another dimension: INVALID_ARGUMENT until the reservoir is cleared.
  EXPECT_EQ(store_->AddSamples("s", 3, rows.data(), 2).code(), pb::INVALID_ARGUMENT);
  rows[4] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(store_->AddSamples("s", 2, rows.data(), 3).code(), pb::INVALID_ARGUMENT);
  Baseline b;
  ASSERT_OK(store_->LoadReservoir("s", &b));
  EXPECT_EQ(b.seen, 3u);  // the failed calls added nothing
  ASSERT_OK(store_->ClearReservoir("s"));
  ASSERT_OK(store_->AddSamples("s", 3, rows.data(), 1));
  ASSERT_OK(store_->LoadReservoir("s", &b));
  EXPECT_EQ(b.dim, 3u);
  EXPECT_EQ(b.seen, 1u);
}

TEST_P(StoreContract, PruneDeletesOldestFirst) {
  std::vector<AnomalyRow> batch;
  for (int i = 0; i < 10; ++i) {
    batch.push_back(MakeAnomaly(i));
    batch.back().scored_time_us = 1'000'000 + i * 100'000;
  }
  ASSERT_OK(store_->InsertAnomalies(&batch));
  RetentionPolicy p;
  p.max_age_us = 3'750'000;  // now 5 s: scored before 1.25 s goes (0, 1, 2)
  p.max_rows = 5;            // then all but the newest 5 (3, 4)
  p.batch_rows = 2;
  int64_t deleted = -1;
  ASSERT_OK(store_->Prune(p, &deleted));
  EXPECT_EQ(deleted, 5);
  const std::vector<AnomalyRow> left = Stored();
  ASSERT_EQ(left.size(), 5u);
  for (const AnomalyRow& a : left) EXPECT_GE(a.scored_time_us, 1'500'000);
  p.batch_rows = 0;
  EXPECT_EQ(store_->Prune(p, &deleted).code(), pb::INVALID_ARGUMENT);
}

TEST_P(StoreContract, HealthyStorePassesItsChecks) {
  std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
  ASSERT_OK(store_->InsertAnomalies(&batch));
  EXPECT_OK(store_->CheckFile());
  EXPECT_OK(store_->QuickCheck());
}

TEST_P(StoreContract, AnomaliesAfterReadsInIdOrder) {
  std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2), MakeAnomaly(3)};
  ASSERT_OK(store_->InsertAnomalies(&batch));
  std::vector<AnomalyRow> rows;
  ASSERT_OK(store_->AnomaliesAfter(0, 2, &rows));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, batch[0].id);
  EXPECT_EQ(rows[1].record_id, batch[1].record_id);
  ASSERT_OK(store_->AnomaliesAfter(rows[1].id, 100, &rows));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, batch[2].id);
  EXPECT_EQ(rows[0].features, batch[2].features);
  ASSERT_OK(store_->AnomaliesAfter(batch[2].id, 100, &rows));
  EXPECT_TRUE(rows.empty());
  EXPECT_EQ(store_->AnomaliesAfter(0, 0, &rows).code(), pb::INVALID_ARGUMENT);
}

TEST_P(StoreContract, AlertCheckpointAndOutboxSurviveReopen) {
  AlertCheckpoint cp;
  ASSERT_OK(store_->LoadAlertCheckpoint(&cp));
  EXPECT_EQ(cp.cursor, 0);
  EXPECT_TRUE(cp.state.empty());
  cp.cursor = 42;
  cp.state = std::string("st\0ate", 6);
  std::vector<OutboxRow> add(3);
  for (size_t i = 0; i < add.size(); ++i) {
    add[i].sink = i == 0 ? "alertmanager" : "webhook:0";
    add[i].payload = "{\"n\":" + std::to_string(i) + "}";
    add[i].next_attempt_us = 7;
  }
  ASSERT_OK(store_->SaveAlerts(cp, &add));
  EXPECT_GT(add[0].id, 0);
  EXPECT_LT(add[0].id, add[1].id);
  EXPECT_LT(add[1].id, add[2].id);
  EXPECT_EQ(add[0].created_us, 5'000'000);

  // Delivered rows go; a retried one keeps its new attempt count; a dead
  // letter leaves the pending rows but is counted.
  OutboxRow retry = add[1];
  retry.attempts = 2;
  retry.next_attempt_us = 9;
  retry.last_error = "HTTP 503";
  OutboxRow dead = add[2];
  dead.attempts = 5;
  dead.dead = true;
  ASSERT_OK(store_->SettleOutbox({add[0].id, 12345}, {retry, dead}));
  if (dynamic_cast<MemoryStore*>(store_.get()) == nullptr) Open();  // reopen
  ASSERT_OK(store_->LoadAlertCheckpoint(&cp));
  EXPECT_EQ(cp.cursor, 42);
  EXPECT_EQ(cp.state, std::string("st\0ate", 6));
  std::vector<OutboxRow> pending;
  ASSERT_OK(store_->PendingOutbox(100, &pending));
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].id, add[1].id);
  EXPECT_EQ(pending[0].sink, "webhook:0");
  EXPECT_EQ(pending[0].attempts, 2u);
  EXPECT_EQ(pending[0].next_attempt_us, 9);
  EXPECT_EQ(pending[0].last_error, "HTTP 503");
  EXPECT_EQ(pending[0].payload, "{\"n\":1}");
  int64_t n_pending = 0, n_dead = 0;
  ASSERT_OK(store_->CountOutbox(&n_pending, &n_dead));
  EXPECT_EQ(n_pending, 1);
  EXPECT_EQ(n_dead, 1);
  // Ids are never reused.
  std::vector<OutboxRow> more(1);
  more[0].sink = "alertmanager";
  ASSERT_OK(store_->SaveAlerts(cp, &more));
  EXPECT_GT(more[0].id, add[2].id);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace anomalyd
