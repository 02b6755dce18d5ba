// Tests of the model registry and threshold history (storage/models.cc).
#include <cmath>

#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::FakeClock;
using testing::OpenSqlite;
using testing::TempDir;

ModelRow Model(const std::string& stream, uint32_t version) {
  ModelRow m;
  m.stream = stream;
  m.version = version;
  m.bundle_path = "/models/" + stream + "/" + std::to_string(version);
  m.created_us = 1000 * version;
  m.baseline_rows = 5000 + version;
  m.train_loss = 0.5 / version;
  m.val_loss = 0.75 / version;
  return m;
}

class StoreModels : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.clock = &clock_;
    ASSERT_OK(OpenSqlite(dir_.file("m.db"), &store_, o));
  }
  FakeClock clock_{123456};
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreModels, RegisterActivateAndRollBack) {
  uint32_t next = 0;
  ASSERT_OK(store_->NextModelVersion("cpu", &next));
  EXPECT_EQ(next, 1u);
  ModelRow got;
  EXPECT_EQ(store_->ActiveModel("cpu", &got).code(), pb::NOT_FOUND);

  for (uint32_t v = 1; v <= 3; ++v)
    ASSERT_OK(store_->RegisterModel(Model("cpu", v)));
  ASSERT_OK(store_->RegisterModel(Model("disk", 1)));
  ASSERT_OK(store_->NextModelVersion("cpu", &next));
  EXPECT_EQ(next, 4u);
  EXPECT_EQ(store_->ActiveModel("cpu", &got).code(), pb::NOT_FOUND);

  ASSERT_OK(store_->ActivateModel("cpu", 2));
  ASSERT_OK(store_->ActiveModel("cpu", &got));
  EXPECT_EQ(got.version, 2u);
  EXPECT_EQ(got.status, ModelStatus::kActive);
  EXPECT_EQ(got.bundle_path, "/models/cpu/2");
  EXPECT_EQ(got.created_us, 2000);
  EXPECT_EQ(got.baseline_rows, 5002u);
  EXPECT_EQ(got.train_loss, 0.25);
  EXPECT_EQ(got.val_loss, 0.375);

  ASSERT_OK(store_->ActivateModel("cpu", 3));
  ASSERT_OK(store_->ActivateModel("cpu", 3));  // again: no change
  ASSERT_OK(store_->ActivateModel("cpu", 2));  // rollback
  std::vector<ModelRow> models;
  ASSERT_OK(store_->ListModels("cpu", &models));
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(models[0].version, 3u);  // newest first
  EXPECT_EQ(models[0].status, ModelStatus::kRetired);
  EXPECT_EQ(models[1].status, ModelStatus::kActive);
  EXPECT_EQ(models[2].status, ModelStatus::kCandidate);
  // Streams are independent.
  EXPECT_EQ(store_->ActiveModel("disk", &got).code(), pb::NOT_FOUND);
  ASSERT_OK(store_->ListModels("none", &models));
  EXPECT_TRUE(models.empty());
}

TEST_F(StoreModels, ActiveModelsListsOnePerStream) {
  std::vector<ModelRow> active;
  ASSERT_OK(store_->ActiveModels(&active));
  EXPECT_TRUE(active.empty());
  for (uint32_t v = 1; v <= 2; ++v)
    ASSERT_OK(store_->RegisterModel(Model("cpu", v)));
  ASSERT_OK(store_->RegisterModel(Model("disk", 1)));
  ASSERT_OK(store_->RegisterModel(Model("net", 1)));  // never activated
  ASSERT_OK(store_->ActivateModel("cpu", 1));
  ASSERT_OK(store_->ActivateModel("cpu", 2));
  ASSERT_OK(store_->ActivateModel("disk", 1));
  ASSERT_OK(store_->ActiveModels(&active));
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].stream, "cpu");
  EXPECT_EQ(active[0].version, 2u);
  EXPECT_EQ(active[1].stream, "disk");
}

TEST_F(StoreModels, RejectsBadRegistrations) {
  ASSERT_OK(store_->RegisterModel(Model("cpu", 1)));
  EXPECT_EQ(store_->RegisterModel(Model("cpu", 1)).code(),
            pb::INVALID_ARGUMENT);
  EXPECT_EQ(store_->RegisterModel(Model("cpu", 0)).code(),
            pb::INVALID_ARGUMENT);
  ModelRow active = Model("cpu", 2);
  active.status = ModelStatus::kActive;
  EXPECT_EQ(store_->RegisterModel(active).code(), pb::INVALID_ARGUMENT);
  Status s = store_->ActivateModel("cpu", 9);
  EXPECT_EQ(s.code(), pb::NOT_FOUND);
  EXPECT_NE(s.message().find("model 9 of stream 'cpu'"), std::string::npos);
}

TEST_F(StoreModels, DefaultsAndMissingLosses) {
  ModelRow m = Model("cpu", 1);
  m.created_us = 0;
  m.train_loss = std::nan("");
  m.val_loss = std::nan("");
  ASSERT_OK(store_->RegisterModel(m));
  std::vector<ModelRow> models;
  ASSERT_OK(store_->ListModels("cpu", &models));
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].created_us, 123456);
  EXPECT_TRUE(std::isnan(models[0].train_loss));
  EXPECT_TRUE(std::isnan(models[0].val_loss));
}

TEST_F(StoreModels, ThresholdHistory) {
  ThresholdRow t;
  EXPECT_EQ(store_->LatestThreshold("cpu", &t).code(), pb::NOT_FOUND);
  ASSERT_OK(store_->RegisterModel(Model("cpu", 1)));
  ASSERT_OK(store_->RegisterModel(Model("cpu", 2)));
  std::vector<ThresholdRow> appended;
  for (int i = 0; i < 5; ++i) {
    ThresholdRow r;
    r.stream = "cpu";
    r.model_version = i < 3 ? 1 : 2;
    r.method = i % 2 ? "pot" : "quantile";
    r.value = 10 + i;
    r.window = 1000 * (i + 1);
    r.time_us = i == 4 ? 0 : 100 + i;  // the last one: "now"
    ASSERT_OK(store_->AppendThreshold(&r));
    EXPECT_GT(r.id, 0);
    appended.push_back(r);
  }
  EXPECT_EQ(appended[4].time_us, 123456);
  ASSERT_OK(store_->LatestThreshold("cpu", &t));
  EXPECT_EQ(t.id, appended[4].id);
  EXPECT_EQ(t.model_version, 2u);
  EXPECT_EQ(t.method, "quantile");
  EXPECT_EQ(t.value, 14);
  EXPECT_EQ(t.window, 5000u);

  std::vector<ThresholdRow> history;
  ASSERT_OK(store_->ThresholdHistory("cpu", 3, &history));
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].id, appended[4].id);
  EXPECT_EQ(history[1].id, appended[3].id);
  EXPECT_EQ(history[2].id, appended[2].id);
  EXPECT_EQ(history[2].method, "quantile");
  EXPECT_EQ(history[1].time_us, 103);
  ASSERT_OK(store_->ThresholdHistory("cpu", 100, &history));
  EXPECT_EQ(history.size(), 5u);
  EXPECT_EQ(store_->ThresholdHistory("cpu", 0, &history).code(),
            pb::INVALID_ARGUMENT);
}

TEST_F(StoreModels, ThresholdNeedsARegisteredModel) {
  ThresholdRow r;
  r.stream = "cpu";
  r.model_version = 7;
  r.method = "fixed";
  r.value = 3;
  Status s = store_->AppendThreshold(&r);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << s.ToString();
  EXPECT_NE(s.message().find("must be registered"), std::string::npos);
  ASSERT_OK(store_->RegisterModel(Model("cpu", 7)));
  r.value = std::nan("");
  EXPECT_EQ(store_->AppendThreshold(&r).code(), pb::INVALID_ARGUMENT);
  r.value = 3;
  EXPECT_OK(store_->AppendThreshold(&r));
}

TEST_F(StoreModels, AllModelsListsEveryStreamNewestFirst) {
  std::vector<ModelRow> all;
  ASSERT_OK(store_->AllModels(&all));
  EXPECT_TRUE(all.empty());
  ASSERT_OK(store_->RegisterModel(Model("disk", 1)));
  for (uint32_t v = 1; v <= 3; ++v)
    ASSERT_OK(store_->RegisterModel(Model("cpu", v)));
  ASSERT_OK(store_->RegisterModel(Model("a", 7)));
  ASSERT_OK(store_->ActivateModel("cpu", 2));
  ASSERT_OK(store_->AllModels(&all));
  std::vector<std::pair<std::string, uint32_t>> got;
  for (const ModelRow& m : all) got.emplace_back(m.stream, m.version);
  const std::vector<std::pair<std::string, uint32_t>> want = {
      {"a", 7}, {"cpu", 3}, {"cpu", 2}, {"cpu", 1}, {"disk", 1}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(all[2].status, ModelStatus::kActive);
  EXPECT_EQ(all[2].bundle_path, "/models/cpu/2");
}

TEST_F(StoreModels, SetBundlePathChangesOnlyThePath) {
  ASSERT_OK(store_->RegisterModel(Model("cpu", 1)));
  ASSERT_OK(store_->RegisterModel(Model("cpu", 2)));
  ASSERT_OK(store_->ActivateModel("cpu", 1));
  ASSERT_OK(store_->SetBundlePath("cpu", 1, "bundles/cpu/1"));  // active
  ModelRow got;
  ASSERT_OK(store_->ActiveModel("cpu", &got));
  EXPECT_EQ(got.bundle_path, "bundles/cpu/1");
  EXPECT_EQ(got.baseline_rows, 5001u);
  EXPECT_EQ(got.status, ModelStatus::kActive);
  std::vector<ModelRow> models;
  ASSERT_OK(store_->ListModels("cpu", &models));
  EXPECT_EQ(models[0].bundle_path, "/models/cpu/2");  // the other untouched

  Status s = store_->SetBundlePath("cpu", 3, "x");
  EXPECT_EQ(s.code(), pb::NOT_FOUND) << s.ToString();
  EXPECT_NE(s.message().find("model 3 of stream 'cpu'"), std::string::npos);
  EXPECT_EQ(store_->SetBundlePath("disk", 1, "x").code(), pb::NOT_FOUND);
  EXPECT_EQ(store_->SetBundlePath("cpu", 2, "").code(), pb::INVALID_ARGUMENT);
  ASSERT_OK(store_->ListModels("cpu", &models));
  EXPECT_EQ(models[0].bundle_path, "/models/cpu/2");
  // The same path again is still a match, not NOT_FOUND.
  EXPECT_OK(store_->SetBundlePath("cpu", 1, "bundles/cpu/1"));
}

}  // namespace
}  // namespace anomalyd
