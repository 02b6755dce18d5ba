// The score's KL weight (ModelOptions::score_beta): derived from beta and
// the likelihood unless set, stored in the bundle as Architecture.beta, and
// used for the holdout scores, the threshold and every score.
#include <cmath>

#include "model/model.h"
#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

TEST(ScoreWeightTest, DerivedFromBetaAndLikelihood) {
  ModelOptions o;
  o.beta = 0.5f;
  EXPECT_FLOAT_EQ(ResolveArchitecture(o, 6).score_beta, 1.0f);  // gaussian: 2x
  o.likelihood = pb::GAUSSIAN_LEARNED;
  EXPECT_FLOAT_EQ(ResolveArchitecture(o, 6).score_beta, 0.5f);
  o.likelihood = pb::BERNOULLI;
  EXPECT_FLOAT_EQ(ResolveArchitecture(o, 6).score_beta, 0.5f);
  o.score_beta = 0.0f;  // explicit: reconstruction only
  EXPECT_FLOAT_EQ(ResolveArchitecture(o, 6).score_beta, 0.0f);
  o.score_beta = 3.0f;
  EXPECT_FLOAT_EQ(ResolveArchitecture(o, 6).score_beta, 3.0f);
}

TEST(ScoreWeightTest, StoredInBundleAndUsedForScores) {
  ConfigureThreads(1);
  const Matrix data = CorrelatedData(400, 3);
  for (float weight : {-1.0f, 0.0f, 5.0f}) {
    TrainOptions opts = SmallTrainOptions();
    opts.model.score_beta = weight;
    opts.model.density_weight = 0;  // the score is then exactly rec + w * kl
    std::unique_ptr<Model> model;
    ASSERT_OK(Model::Train(opts, data, FeatureNames(), nullptr, &model));
    const float expected = weight < 0 ? 2.0f * opts.model.beta : weight;
    EXPECT_FLOAT_EQ(model->meta().architecture().beta(), expected);
    ScoreOutput out;
    ASSERT_OK(model->Score(data.data.data(), 50, {}, &out));
    for (size_t i = 0; i < 50; ++i) {
      EXPECT_NEAR(out.score[i], out.reconstruction[i] + expected * out.kl[i],
                  1e-4 * (1 + std::fabs(out.score[i])));
    }
  }
  TrainOptions bad = SmallTrainOptions();
  bad.model.score_beta = std::nanf("");
  std::unique_ptr<Model> model;
  EXPECT_EQ(Model::Train(bad, data, FeatureNames(), nullptr, &model).code(),
            pb::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace anomalyd
