// The fused CPU scorer (model/fused.h) against LibTorch's forward pass on
// the same trained weights: every activation and likelihood, ensembles,
// layer widths that are not multiples of the 8-float vectors, batches
// split over the worker pool, absurd inputs clipped by the normaliser, and
// both kernels (AVX/FMA and portable). Also the worker pool itself.
#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "model/model_impl.h"
#include "model/parallel.h"
#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

// Close to float precision: the two paths sum in different orders (and the
// AVX kernel fuses multiply-adds); (x - y)^2 of large x and y magnifies
// their rounding, hence relative 1e-4 rather than a few ulps.
// A row's contributions are computed from values as large as its whole
// reconstruction term (an input clipped at 1e6 makes hidden units ~1e6),
// so each also gets a tolerance relative to that row's total (`row_scale`).
void ExpectNear(const std::vector<float>& got, const std::vector<float>& want,
                const char* what, const std::vector<float>* row_scale = nullptr,
                size_t d = 1) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    float tol = 1e-4f * std::max(1.0f, std::fabs(want[i]));
    if (row_scale) tol += 1e-6f * std::fabs((*row_scale)[i / d]);
    ASSERT_NEAR(got[i], want[i], tol) << what << " [" << i << "]";
  }
}

// Rows of the baseline's shape plus some far outside it, some absurd.
Matrix TestRows(size_t n) {
  Matrix m = CorrelatedData(n, 99);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-50, 50);
  for (size_t i = 0; i < n; i += 7) m.at(i, i % 4) = u(rng);
  if (n > 2) {
    m.at(1, 2) = 1e30f;
    m.at(2, 0) = -3e38f;
  }
  return m;
}

void CheckAgainstLibTorch(Model& model, size_t n) {
  Model::Impl& impl = ModelAccess::impl(model);
  ASSERT_NE(impl.fused, nullptr);
  const Matrix rows = TestRows(n);
  ScoreOptions ref_opts;
  ref_opts.contributions = true;
  ref_opts.libtorch = true;
  ScoreOutput ref;
  ASSERT_OK(model.Score(rows.data.data(), n, ref_opts, &ref));
  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable kernel" : "default kernel");
    impl.fused->set_portable(portable);
    for (bool contributions : {true, false}) {
      ScoreOptions opts;
      opts.contributions = contributions;
      ScoreOutput out;
      ASSERT_OK(model.Score(rows.data.data(), n, opts, &out));
      ExpectNear(out.reconstruction, ref.reconstruction, "reconstruction");
      ExpectNear(out.kl, ref.kl, "kl");
      ExpectNear(out.score, ref.score, "score");
      if (contributions) {
        ExpectNear(out.contributions, ref.contributions, "contributions",
                   &ref.reconstruction, model.dim());
      } else {
        EXPECT_TRUE(out.contributions.empty());
      }
      ASSERT_EQ(out.p_value.size(), n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out.p_value[i], model.PValue(out.score[i])) << i;
      }
    }
  }
}

struct Variant {
  pb::Activation activation;
  pb::Likelihood likelihood;
  uint32_t ensemble;
  std::vector<uint32_t> hidden;
  uint32_t latent;
};

class FusedTest : public ::testing::TestWithParam<Variant> {};

TEST_P(FusedTest, MatchesLibTorch) {
  ConfigureThreads(2);
  const Variant& v = GetParam();
  TrainOptions opts = SmallTrainOptions();
  opts.model.activation = v.activation;
  opts.model.likelihood = v.likelihood;
  if (v.likelihood == pb::BERNOULLI) opts.model.normaliser = pb::MINMAX;
  opts.model.ensemble = v.ensemble;
  opts.model.hidden = v.hidden;
  opts.model.latent = v.latent;
  opts.max_epochs = 3;
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, CorrelatedData(400, 5), FeatureNames(), nullptr,
                         &model));
  // 1 and 5 rows stay on the calling thread; 1000 rows go to the pool.
  for (size_t n : {1, 5, 1000}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    CheckAgainstLibTorch(*model, n);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, FusedTest,
    ::testing::Values(
        Variant{pb::RELU, pb::GAUSSIAN, 1, {16, 8}, 2},
        Variant{pb::RELU, pb::GAUSSIAN, 1, {}, 0},  // derived: 64-32, z16
        Variant{pb::RELU, pb::GAUSSIAN, 1, {13}, 9},
        Variant{pb::TANH, pb::GAUSSIAN, 1, {16, 8}, 2},
        Variant{pb::ELU, pb::GAUSSIAN, 1, {16, 8}, 2},
        Variant{pb::LEAKY_RELU, pb::GAUSSIAN, 1, {16, 8}, 2},
        Variant{pb::SILU, pb::GAUSSIAN, 1, {21, 5}, 3},
        Variant{pb::RELU, pb::GAUSSIAN_LEARNED, 1, {16, 8}, 2},
        Variant{pb::RELU, pb::BERNOULLI, 1, {16, 8}, 2},
        Variant{pb::RELU, pb::GAUSSIAN, 3, {16, 8}, 2}));

// Trains on `rows` correlated rows with `opts`, then checks one row (the
// calling thread), 1000 (the pool) and 5000 (LibTorch's normalisation in
// several chunks on the pool) against LibTorch.
void TrainAndCheck(const TrainOptions& opts, std::unique_ptr<Model>* model,
                   size_t rows = 400) {
  ConfigureThreads(2);
  ASSERT_OK(Model::Train(opts, CorrelatedData(rows, 5), FeatureNames(), nullptr,
                         model));
  for (size_t n : {1, 1000, 5000}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    CheckAgainstLibTorch(**model, n);
  }
}

TEST(FusedTest, MatchesLibTorchWithQuantileNormaliser) {
  TrainOptions opts = SmallTrainOptions();
  opts.model.normaliser = pb::QUANTILE_NORMAL;
  opts.max_epochs = 3;
  std::unique_ptr<Model> model;
  TrainAndCheck(opts, &model);
}

// The density term (ModelOptions::density_weight) computed the long way:
// each centre's diagonal Gaussian log-density in double, log-mean-exp over
// the centres, plus the KL's posterior-variance part.
TEST(FusedTest, DensityTermIsTheKernelDensityOfTheLatentMean) {
  ConfigureThreads(1);
  TrainOptions opts = SmallTrainOptions();
  opts.model.density_weight = 2.0f;
  opts.max_epochs = 3;
  std::unique_ptr<Model> model;
  ASSERT_OK(Model::Train(opts, CorrelatedData(400, 5), FeatureNames(), nullptr,
                         &model));
  Model::Impl& impl = ModelAccess::impl(*model);
  const pb::Architecture& arch = model->meta().architecture();
  ASSERT_EQ(model->meta().latent_centres_size(), 1);
  const pb::LatentCentres& c = model->meta().latent_centres(0);
  const size_t l = arch.latent_dim(), k = static_cast<size_t>(c.mean_size()) / l;
  EXPECT_EQ(k, std::min<size_t>(kDensityCentres, model->meta().training().train_rows()));

  const size_t n = 50;
  const Matrix rows = TestRows(n);
  ScoreOptions lt;
  lt.libtorch = true;
  ScoreOutput out;
  ASSERT_OK(model->Score(rows.data.data(), n, lt, &out));
  std::vector<float> x(n * model->dim());
  impl.normaliser.Apply(rows.data.data(), x.data(), n);
  c10::InferenceMode guard;
  auto [mu, lv] = impl.members[0]->Encode(
      torch::from_blob(x.data(), {static_cast<int64_t>(n), static_cast<int64_t>(model->dim())}));
  for (size_t r = 0; r < n; ++r) {
    double var = 0;
    for (size_t j = 0; j < l; ++j) {
      const double v = lv[r][j].item<float>();
      var += 0.5 * (std::exp(v) - 1 - v);
    }
    std::vector<double> logp(k);
    for (size_t i = 0; i < k; ++i) {
      double s = 0;
      for (size_t j = 0; j < l; ++j) {
        const double m = c.mean(i * l + j), v = c.log_var(i * l + j);
        const double d = mu[r][j].item<float>() - m;
        s += -0.5 * d * d / std::exp(v) - 0.5 * v - 0.5 * std::log(2 * M_PI);
      }
      logp[i] = s;
    }
    const double mx = *std::max_element(logp.begin(), logp.end());
    double sum = 0;
    for (double p : logp) sum += std::exp(p - mx);
    const double density = var + std::log(static_cast<double>(k)) - (mx + std::log(sum));
    const double want = out.reconstruction[r] + arch.beta() * out.kl[r] +
                        arch.density_weight() * density;
    ASSERT_NEAR(out.score[r], want, 1e-3 * std::max(1.0, std::fabs(want))) << r;
  }
  // And the fused path agrees with LibTorch on it.
  CheckAgainstLibTorch(*model, 300);
}

TEST(FusedTest, DensityTermMatchesLibTorchAndSurvivesSaveAndLoad) {
  TrainOptions opts = SmallTrainOptions();
  opts.model.density_weight = 2.0f;
  opts.model.normaliser = pb::QUANTILE_NORMAL;
  opts.model.ensemble = 2;
  opts.max_epochs = 2;
  std::unique_ptr<Model> model;
  TrainAndCheck(opts, &model);
  ASSERT_NE(model, nullptr);
  testing::TempDir dir;
  ASSERT_OK(model->Save((dir.path() / "b").string()));
  std::unique_ptr<Model> loaded;
  ASSERT_OK(Model::Load((dir.path() / "b").string(), "cpu", &loaded));
  EXPECT_EQ(loaded->meta().latent_centres_size(), 2);
  const Matrix rows = TestRows(64);
  ScoreOutput a, b;
  ASSERT_OK(model->Score(rows.data.data(), 64, ScoreOptions(), &a));
  ASSERT_OK(loaded->Score(rows.data.data(), 64, ScoreOptions(), &b));
  ExpectNear(b.score, a.score, "score after loading");
}

// Fewer training rows than kDensityCentres: the centre count is no
// multiple of 32 or 8, so the AVX kernel's 32-, 8- and 1-centre loops all run.
TEST(FusedTest, DensityTermWithAnOddCentreCountMatchesLibTorch) {
  TrainOptions opts = SmallTrainOptions();
  opts.model.density_weight = 2.0f;
  opts.max_epochs = 2;
  std::unique_ptr<Model> model;
  TrainAndCheck(opts, &model, 150);
  ASSERT_NE(model, nullptr);
  const size_t k = static_cast<size_t>(model->meta().latent_centres(0).mean_size()) /
                   model->meta().architecture().latent_dim();
  ASSERT_LT(k, kDensityCentres);
  ASSERT_NE(k % 8, 0u) << k;
  ASSERT_GT(k, 32u);
}

TEST(FusedTest, SurvivesSaveAndLoad) {
  ConfigureThreads(1);
  std::unique_ptr<Model> model;
  TrainOptions opts = SmallTrainOptions();
  opts.max_epochs = 2;
  ASSERT_OK(Model::Train(opts, CorrelatedData(300, 5), FeatureNames(), nullptr,
                         &model));
  testing::TempDir dir;
  ASSERT_OK(model->Save((dir.path() / "b").string()));
  std::unique_ptr<Model> loaded;
  ASSERT_OK(Model::Load((dir.path() / "b").string(), "cpu", &loaded));
  CheckAgainstLibTorch(*loaded, 300);
}

TEST(WorkerPoolTest, RunsEveryTaskOnce) {
  WorkerPool pool;
  for (int threads : {1, 2, 4}) {
    pool.Resize(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (size_t tasks : {0, 1, 3, 100}) {
      std::vector<std::atomic<int>> hits(tasks);
      pool.Run(tasks, [&](size_t i) { hits[i].fetch_add(1); });
      for (size_t i = 0; i < tasks; ++i) ASSERT_EQ(hits[i].load(), 1);
    }
  }
}

TEST(WorkerPoolTest, ConcurrentCallersAllFinish) {
  WorkerPool pool;
  pool.Resize(2);
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        pool.Run(10, [&](size_t i) { sum.fetch_add(static_cast<long>(i)); });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4L * 200 * 45);
}

}  // namespace
}  // namespace anomalyd
