// Every term of the score is exposed (ScoreOutput), so that
// score == reconstruction + score_beta * kl + density_weight * density can
// be checked by a user; Encode's log-variances; Sample's Bernoulli draws.
#include <cmath>
#include <set>

#include "model/model.h"
#include "model/score_formula.h"
#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

// Float tolerance of a sum of terms computed in a different order.
void ExpectTermsAddUp(const Model& model, const ScoreOutput& out, size_t n) {
  const ScoreWeights w = ScoreWeights::Of(model.meta().architecture());
  ASSERT_EQ(out.score.size(), n);
  ASSERT_EQ(out.density.size(), w.has_density() ? n : 0u);
  for (size_t i = 0; i < n; ++i) {
    const float expected =
        w.has_density()
            ? CombineScore(out.reconstruction[i], out.kl[i], out.density[i], w)
            : CombineScore(out.reconstruction[i], out.kl[i], w);
    EXPECT_NEAR(out.score[i], expected, 1e-4 * (1 + std::fabs(out.score[i])))
        << "record " << i;
  }
}

// Before, ScoreOutput had no density: the density term was only visible as
// the part of the score the other columns did not explain.
TEST(ScoreTermsTest, ScoreIsTheWeightedSumOfItsTerms) {
  ConfigureThreads(1);
  const Matrix data = CorrelatedData(400, 3);
  struct Case {
    float density_weight;
    uint32_t ensemble;
  };
  for (const Case& c : {Case{2.0f, 1}, Case{0.5f, 2}, Case{0.0f, 1}}) {
    SCOPED_TRACE("density_weight " + std::to_string(c.density_weight) +
                 ", ensemble " + std::to_string(c.ensemble));
    TrainOptions opts = SmallTrainOptions();
    opts.max_epochs = 20;
    opts.model.density_weight = c.density_weight;
    opts.model.ensemble = c.ensemble;
    std::unique_ptr<Model> model;
    ASSERT_OK(Model::Train(opts, data, FeatureNames(), nullptr, &model));
    const size_t n = 300;  // more than one fused tile
    for (bool libtorch : {false, true}) {
      SCOPED_TRACE(libtorch ? "libtorch" : "fused");
      ScoreOptions so;
      so.libtorch = libtorch;
      ScoreOutput out;
      ASSERT_OK(model->Score(data.data.data(), n, so, &out));
      ExpectTermsAddUp(*model, out, n);
    }
    ScoreOptions mc;  // the LibTorch path with Monte Carlo draws
    mc.samples = 4;
    ScoreOutput out;
    ASSERT_OK(model->Score(data.data.data(), n, mc, &out));
    ExpectTermsAddUp(*model, out, n);
  }
}

TEST(ScoreTermsTest, EncodeGivesLogVariances) {
  ConfigureThreads(1);
  const Matrix data = CorrelatedData(300, 5);
  TrainOptions opts = SmallTrainOptions();
  opts.max_epochs = 5;
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, data, FeatureNames(), nullptr, &model));
  Matrix mean, logvar, mean_only;
  ASSERT_OK(model->Encode(data.data.data(), 10, &mean, &logvar));
  ASSERT_OK(model->Encode(data.data.data(), 10, &mean_only));
  EXPECT_EQ(mean.data, mean_only.data);
  ASSERT_EQ(logvar.rows, 10u);
  ASSERT_EQ(logvar.cols, 2u);
  for (float v : logvar.data) {
    EXPECT_GE(v, opts.model.logvar_min);
    EXPECT_LE(v, opts.model.logvar_max);
  }
}

TEST(ScoreTermsTest, BernoulliDrawsAreZeroOrOneAndSeeded) {
  ConfigureThreads(1);
  Matrix data(300, 6);
  std::mt19937_64 rng(1);
  for (float& v : data.data) v = static_cast<float>(rng() % 2);
  TrainOptions opts = SmallTrainOptions();
  opts.max_epochs = 5;
  opts.model.likelihood = pb::BERNOULLI;
  opts.model.normaliser = pb::MINMAX;
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, data, {"p0", "p1", "p2", "p3", "p4", "p5"},
                         nullptr, &model));
  Matrix probs, draws, again, other;
  ASSERT_OK(model->Sample(50, /*seed=*/3, &probs));
  ASSERT_OK(model->Sample(50, /*seed=*/3, &draws, /*draws=*/true));
  ASSERT_OK(model->Sample(50, /*seed=*/3, &again, /*draws=*/true));
  ASSERT_OK(model->Sample(50, /*seed=*/4, &other, /*draws=*/true));
  EXPECT_EQ(draws.data, again.data);
  EXPECT_NE(draws.data, other.data);
  std::set<float> values(draws.data.begin(), draws.data.end());
  EXPECT_EQ(values, (std::set<float>{0.0f, 1.0f}));
  bool fractional = false;  // the decoder mean is a probability, not a draw
  for (float p : probs.data) fractional |= p > 0.0f && p < 1.0f;
  EXPECT_TRUE(fractional);

  std::unique_ptr<Model> gaussian;
  ASSERT_OK(Model::Train(SmallTrainOptions(), CorrelatedData(200, 1),
                         FeatureNames(), nullptr, &gaussian));
  EXPECT_EQ(gaussian->Sample(5, 1, &draws, /*draws=*/true).code(),
            pb::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace anomalyd
