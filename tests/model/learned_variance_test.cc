// The learned-variance Gaussian (likelihood = gaussian_learned): its decoder
// variances are set in closed form each epoch, so training converges and
// early stopping ends it well before the epoch cap.
#include <cmath>

#include "model/model.h"
#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

TEST(LearnedVarianceTest, EarlyStoppingEndsTraining) {
  ConfigureThreads(1);
  const Matrix data = CorrelatedData(600, 5);
  TrainOptions opts = SmallTrainOptions();
  opts.model.likelihood = pb::GAUSSIAN_LEARNED;
  opts.max_epochs = 400;
  opts.patience = 5;
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, data, FeatureNames(), nullptr, &model));
  const pb::TrainingSummary& t = model->meta().training();
  EXPECT_LT(t.epochs_run(), 400u);
  EXPECT_GE(t.best_epoch(), 1u);
  ScoreOutput out;
  ASSERT_OK(model->Score(data.data.data(), 100, {}, &out));
  for (float s : out.score) EXPECT_TRUE(std::isfinite(s));
}

}  // namespace
}  // namespace anomalyd
