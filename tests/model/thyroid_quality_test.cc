// Regression guard on real data: default settings on the shared thyroid set
// (the quality targets themselves are measured by bench/quality.sh).
#include <filesystem>

#include "model/csv.h"
#include "model/metrics.h"
#include "model/model.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

TEST(ThyroidQualityTest, DefaultModelReachesRocAuc090) {
  const std::string train = testing::SharedData("adbench/thyroid/train.csv");
  const std::string test = testing::SharedData("adbench/thyroid/test.csv");
  if (!std::filesystem::exists(train)) GTEST_SKIP() << "no shared data at " << train;
  ConfigureThreads(0);
  CsvTable base, labelled;
  ASSERT_OK(ReadCsv(train, {}, &base));
  ASSERT_OK(ReadCsv(test, {}, &labelled));
  ASSERT_OK(SelectFeatures(base.feature_names, test, &labelled));
  TrainOptions opts;  // defaults
  opts.device = "cpu";
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, base.features, base.feature_names, nullptr, &model));
  ScoreOutput out;
  ASSERT_OK(model->Score(labelled.features.data.data(), labelled.features.rows, {}, &out));
  std::vector<double> scores(out.score.begin(), out.score.end());
  const double auc = RocAuc(scores, labelled.labels);
  RecordProperty("roc_auc", std::to_string(auc));
  std::printf("thyroid ROC-AUC %.4f, PR-AUC %.4f\n", auc,
              AveragePrecision(scores, labelled.labels));
  EXPECT_GE(auc, 0.90);
}

}  // namespace
}  // namespace anomalyd
