// Tests of model version reservations and candidates
// (storage/candidates.cc).
#include <cmath>
#include <set>
#include <thread>

#include "storage/sqlite.h"
#include "storage/sqlite_store.h"
#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::FakeClock;
using testing::OpenSqlite;
using testing::TempDir;

class StoreCandidates : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.clock = &clock_;
    ASSERT_OK(OpenSqlite(path_, &store_, o));
  }
  // The registered row (stream, version); fails the test when missing.
  ModelRow Row(const std::string& stream, uint32_t version) {
    std::vector<ModelRow> models;
    EXPECT_OK(store_->ListModels(stream, &models));
    for (const ModelRow& m : models) {
      if (m.version == version) return m;
    }
    ADD_FAILURE() << "no model " << version << " of " << stream;
    return ModelRow();
  }
  // The result of a training of (stream, version).
  static ModelRow Trained(const std::string& stream, uint32_t version) {
    ModelRow m;
    m.stream = stream;
    m.version = version;
    m.bundle_path = "models/" + stream + "/" + std::to_string(version);
    m.baseline_rows = 4000;
    m.train_loss = 0.5;
    m.val_loss = 0.625;
    return m;
  }
  ThresholdRow Threshold(const std::string& stream, uint32_t version) {
    ThresholdRow t;
    t.stream = stream;
    t.model_version = version;
    t.method = "pot";
    t.value = 7;
    return t;
  }
  size_t Count(const std::string& stream) {
    std::vector<ModelRow> models;
    EXPECT_OK(store_->ListModels(stream, &models));
    return models.size();
  }

  FakeClock clock_{5000};
  TempDir dir_;
  std::string path_ = dir_.file("c.db");
  std::unique_ptr<Store> store_;
};

TEST_F(StoreCandidates, ReserveTakesOneAboveTheHighestAndPublishesIt) {
  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  EXPECT_EQ(v, 1u);
  const ModelRow r = Row("cpu", 1);
  EXPECT_EQ(r.bundle_path, "");
  EXPECT_EQ(r.created_us, 5000);
  EXPECT_EQ(r.baseline_rows, 0u);
  EXPECT_TRUE(std::isnan(r.train_loss));
  EXPECT_TRUE(std::isnan(r.val_loss));
  EXPECT_EQ(r.status, ModelStatus::kCandidate);
  // The reservation counts: the next one, and NextModelVersion, go past it.
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  EXPECT_EQ(v, 2u);
  uint32_t next = 0;
  ASSERT_OK(store_->NextModelVersion("cpu", &next));
  EXPECT_EQ(next, 3u);
  // Registered versions count too, and streams are independent.
  ModelRow m = Trained("cpu", 9);
  ASSERT_OK(store_->RegisterModel(m));
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  EXPECT_EQ(v, 10u);
  ASSERT_OK(store_->ReserveModelVersion("disk", &v));
  EXPECT_EQ(v, 1u);
}

TEST_F(StoreCandidates, TwoConnectionsNeverGetTheSameVersion) {
  std::unique_ptr<Store> other;
  ASSERT_OK(OpenSqlite(path_, &other));
  uint32_t a = 0, b = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &a));
  ASSERT_OK(other->ReserveModelVersion("cpu", &b));
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, 2u);

  // At the same time, from two threads with a connection each.
  constexpr int kPerThread = 40;
  std::vector<uint32_t> got[2];
  auto reserve = [](Store* s, std::vector<uint32_t>* out) {
    for (int i = 0; i < kPerThread; ++i) {
      uint32_t v = 0;
      EXPECT_OK(s->ReserveModelVersion("cpu", &v));
      out->push_back(v);
    }
  };
  std::thread t0(reserve, store_.get(), &got[0]);
  std::thread t1(reserve, other.get(), &got[1]);
  t0.join();
  t1.join();
  std::set<uint32_t> all(got[0].begin(), got[0].end());
  all.insert(got[1].begin(), got[1].end());
  ASSERT_EQ(all.size(), 2u * kPerThread);  // no version twice
  EXPECT_EQ(*all.begin(), 3u);
  EXPECT_EQ(*all.rbegin(), 2u + 2 * kPerThread);
  EXPECT_EQ(Count("cpu"), 2u + 2 * kPerThread);
}

TEST_F(StoreCandidates, ReserveFailsWithoutInsertingAnything) {
  // Locked by another writer.
  SqliteOptions o;
  o.busy_timeout_ms = 10;
  std::unique_ptr<Store> impatient;
  ASSERT_OK(OpenSqlite(path_, &impatient, {}, o));
  {
    sqlite::Db holder;
    ASSERT_OK(holder.Open(path_, SQLITE_OPEN_READWRITE));
    sqlite::Transaction hold(&holder);
    ASSERT_OK(hold.Begin(sqlite::Transaction::Mode::kImmediate, "holding"));
    uint32_t v = 77;
    EXPECT_EQ(impatient->ReserveModelVersion("cpu", &v).code(),
              pb::STORAGE_LOCKED);
    EXPECT_EQ(v, 77u);
  }
  EXPECT_EQ(Count("cpu"), 0u);
  // Read-only.
  StoreOptions ro;
  ro.read_only = true;
  std::unique_ptr<Store> reader;
  ASSERT_OK(OpenSqlite(path_, &reader, ro));
  uint32_t v = 77;
  EXPECT_EQ(reader->ReserveModelVersion("cpu", &v).code(),
            pb::STORAGE_READ_ONLY);
  EXPECT_EQ(v, 77u);
  EXPECT_EQ(Count("cpu"), 0u);
}

TEST_F(StoreCandidates, CompleteRecordsTheTrainingAndAllowsActivation) {
  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  // Not yet: an unfinished reservation has no bundle to serve.
  Status s = store_->ActivateModel("cpu", v);
  EXPECT_EQ(s.code(), pb::FAILED_PRECONDITION) << s.ToString();
  EXPECT_EQ(Row("cpu", v).status, ModelStatus::kCandidate);

  ModelRow m = Trained("cpu", v);
  m.status = ModelStatus::kActive;  // ignored
  ASSERT_OK(store_->CompleteCandidate(m));
  ModelRow r = Row("cpu", v);
  EXPECT_EQ(r.bundle_path, "models/cpu/1");
  EXPECT_EQ(r.baseline_rows, 4000u);
  EXPECT_EQ(r.train_loss, 0.5);
  EXPECT_EQ(r.val_loss, 0.625);
  EXPECT_EQ(r.created_us, 5000);  // created_us 0: the reservation's time
  EXPECT_EQ(r.status, ModelStatus::kCandidate);
  // Completing again (e.g. a retried write) overwrites; NaN clears a loss.
  m.created_us = 6000;
  m.val_loss = std::nan("");
  ASSERT_OK(store_->CompleteCandidate(m));
  r = Row("cpu", v);
  EXPECT_EQ(r.created_us, 6000);
  EXPECT_TRUE(std::isnan(r.val_loss));

  ASSERT_OK(store_->ActivateModel("cpu", v));
  EXPECT_EQ(Row("cpu", v).status, ModelStatus::kActive);
}

TEST_F(StoreCandidates, CompleteRejectsWhatIsNotAnOpenCandidate) {
  ModelRow m = Trained("cpu", 1);
  Status s = store_->CompleteCandidate(m);
  EXPECT_EQ(s.code(), pb::NOT_FOUND) << s.ToString();
  EXPECT_NE(s.message().find("model 1 of stream 'cpu'"), std::string::npos);
  EXPECT_EQ(Count("cpu"), 0u);

  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  m.bundle_path = "";
  EXPECT_EQ(store_->CompleteCandidate(m).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(Row("cpu", 1).bundle_path, "");

  m = Trained("cpu", 1);
  ASSERT_OK(store_->CompleteCandidate(m));
  ASSERT_OK(store_->ActivateModel("cpu", 1));
  m.bundle_path = "elsewhere";
  s = store_->CompleteCandidate(m);
  EXPECT_EQ(s.code(), pb::FAILED_PRECONDITION) << s.ToString();
  EXPECT_NE(s.message().find("active"), std::string::npos);
  // Retired: version 2 replaces 1.
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  ASSERT_OK(store_->CompleteCandidate(Trained("cpu", v)));
  ASSERT_OK(store_->ActivateModel("cpu", v));
  EXPECT_EQ(store_->CompleteCandidate(m).code(), pb::FAILED_PRECONDITION);
  EXPECT_EQ(Row("cpu", 1).bundle_path, "models/cpu/1");
  EXPECT_EQ(Row("cpu", 1).status, ModelStatus::kRetired);
}

TEST_F(StoreCandidates, DeleteCandidateRemovesItAndItsThresholds) {
  EXPECT_OK(store_->DeleteCandidate("cpu", 1));  // none: OK
  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  ASSERT_OK(store_->DeleteCandidate("cpu", v));  // unfinished
  EXPECT_EQ(Count("cpu"), 0u);

  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  EXPECT_EQ(v, 1u);  // no longer the highest: handed out again
  ASSERT_OK(store_->CompleteCandidate(Trained("cpu", v)));
  ThresholdRow t = Threshold("cpu", v);
  ASSERT_OK(store_->AppendThreshold(&t));
  ASSERT_OK(store_->DeleteCandidate("cpu", v));  // completed, with threshold
  EXPECT_EQ(Count("cpu"), 0u);
  ThresholdRow latest;
  EXPECT_EQ(store_->LatestThreshold("cpu", &latest).code(), pb::NOT_FOUND);
}

TEST_F(StoreCandidates, DeleteCandidateRefusesServingAndRetiredModels) {
  for (uint32_t v = 1; v <= 2; ++v) {
    uint32_t got = 0;
    ASSERT_OK(store_->ReserveModelVersion("cpu", &got));
    ASSERT_OK(store_->CompleteCandidate(Trained("cpu", got)));
    ASSERT_OK(store_->ActivateModel("cpu", got));
  }
  ThresholdRow t = Threshold("cpu", 2);
  ASSERT_OK(store_->AppendThreshold(&t));
  for (uint32_t v : {1u, 2u}) {  // retired, active
    Status s = store_->DeleteCandidate("cpu", v);
    EXPECT_EQ(s.code(), pb::FAILED_PRECONDITION) << s.ToString();
  }
  EXPECT_EQ(Count("cpu"), 2u);
  ThresholdRow latest;
  EXPECT_OK(store_->LatestThreshold("cpu", &latest));
}

TEST_F(StoreCandidates, DeleteUnfinishedKeepsEverythingElse) {
  int64_t deleted = -1;
  ASSERT_OK(store_->DeleteUnfinishedCandidates(&deleted));
  EXPECT_EQ(deleted, 0);
  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));  // 1: completed
  ASSERT_OK(store_->CompleteCandidate(Trained("cpu", v)));
  ASSERT_OK(store_->ActivateModel("cpu", v));
  ThresholdRow kept = Threshold("cpu", v);
  ASSERT_OK(store_->AppendThreshold(&kept));
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));  // 2: completed
  ASSERT_OK(store_->CompleteCandidate(Trained("cpu", v)));
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));  // 3: unfinished
  ThresholdRow lost = Threshold("cpu", v);
  lost.time_us = 9000;
  ASSERT_OK(store_->AppendThreshold(&lost));
  ASSERT_OK(store_->ReserveModelVersion("disk", &v));  // disk 1: unfinished

  ASSERT_OK(store_->DeleteUnfinishedCandidates(&deleted));
  EXPECT_EQ(deleted, 2);
  std::vector<ModelRow> all;
  ASSERT_OK(store_->AllModels(&all));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].version, 2u);
  EXPECT_EQ(all[1].version, 1u);
  ThresholdRow latest;
  ASSERT_OK(store_->LatestThreshold("cpu", &latest));
  EXPECT_EQ(latest.id, kept.id);
  ASSERT_OK(store_->DeleteUnfinishedCandidates(nullptr));  // nothing left
}

// A crash between reservation and completion leaves the reservation; the
// next start-up forgets it and the version is free again.
TEST_F(StoreCandidates, ReservationOfACrashedTrainingIsForgottenAtStartUp) {
  uint32_t v = 0;
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  store_.reset();
  ASSERT_OK(OpenSqlite(path_, &store_));
  EXPECT_EQ(Row("cpu", 1).bundle_path, "");
  int64_t deleted = 0;
  ASSERT_OK(store_->DeleteUnfinishedCandidates(&deleted));
  EXPECT_EQ(deleted, 1);
  ASSERT_OK(store_->ReserveModelVersion("cpu", &v));
  EXPECT_EQ(v, 1u);
}

}  // namespace
}  // namespace anomalyd
