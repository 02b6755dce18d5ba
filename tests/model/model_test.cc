// Model's public API: training, scoring, generation.
#include "model/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <limits>
#include <mutex>
#include <numeric>
#include <regex>
#include <thread>

#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ConfigureThreads(1);
    data_ = new Matrix(CorrelatedData(800, 1));
    Status s = Model::Train(SmallTrainOptions(), *data_, FeatureNames(), nullptr, &model_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    model_.reset();
    delete data_;
  }
  static ScoreOutput Score(const Matrix& m, ScoreOptions opts = {}) {
    ScoreOutput out;
    Status s = model_->Score(m.data.data(), m.rows, opts, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  static inline std::unique_ptr<Model> model_;
  static inline Matrix* data_ = nullptr;
};

TEST_F(ModelTest, TrainingLowersValidationLoss) {
  const pb::TrainingSummary& t = model_->meta().training();
  ASSERT_GE(t.val_loss_size(), 2);
  ASSERT_GE(t.best_epoch(), 1u);
  EXPECT_LT(t.val_loss(t.best_epoch() - 1), 0.5 * t.val_loss(0));
  EXPECT_EQ(t.train_rows() + t.val_rows() + t.holdout_rows(), 800u);
}

TEST_F(ModelTest, MetadataDescribesTheModel) {
  const pb::BundleMeta& m = model_->meta();
  EXPECT_EQ(m.dim(), 4u);
  EXPECT_EQ(m.feature_names(2), "c");
  EXPECT_EQ(m.architecture().latent_dim(), 2u);
  EXPECT_EQ(m.seed(), 7u);
  EXPECT_EQ(m.baseline_rows(), 800u);
  EXPECT_GT(m.created_us(), 0);
  EXPECT_TRUE(m.library_versions().count("libtorch"));
  EXPECT_EQ(m.holdout_scores_size(), 160);  // 20% holdout
  EXPECT_TRUE(std::is_sorted(m.holdout_scores().begin(), m.holdout_scores().end()));
  EXPECT_TRUE(std::isfinite(model_->threshold()));
}

TEST_F(ModelTest, AnomaliesScoreAboveThresholdAndNormalsMostlyBelow) {
  Matrix normal = CorrelatedData(500, 99);
  ScoreOutput n = Score(normal);
  const size_t flagged = std::count_if(n.score.begin(), n.score.end(),
                                       [&](float s) { return s > model_->threshold(); });
  EXPECT_LT(flagged, 25u);  // the threshold is set for ~0.1% false flags
  // Break the b = 2a relation by 6 standard deviations of b.
  Matrix odd = CorrelatedData(20, 5);
  for (size_t i = 0; i < odd.rows; ++i) odd.at(i, 1) += 12;
  ScoreOutput o = Score(odd);
  for (float s : o.score) EXPECT_GT(s, model_->threshold());
}

// The score's formula: ScoreWeightTest (without the density term) and
// FusedTest.DensityTermIsTheKernelDensityOfTheLatentMean (with it, as in the
// defaults used here).
TEST_F(ModelTest, ScoreTermsAndPValuesAreInRange) {
  ScoreOutput out = Score(CorrelatedData(10, 3));
  EXPECT_GT(model_->meta().architecture().density_weight(), 0.0f);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_TRUE(std::isfinite(out.score[i]));
    EXPECT_GE(out.reconstruction[i], 0.0f);
    EXPECT_GE(out.kl[i], 0.0f);
    EXPECT_GE(out.p_value[i], 0.0);
    EXPECT_LE(out.p_value[i], 1.0);
  }
}

// p = share of holdout scores >= the score, exactly: at every holdout
// score, just below and above each, and beyond both ends.
TEST_F(ModelTest, PValueIsTheShareOfHoldoutScoresAtOrAbove) {
  const auto& h = model_->meta().holdout_scores();
  ASSERT_GT(h.size(), 100);
  std::vector<float> sorted(h.begin(), h.end());
  ASSERT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
  std::vector<float> probes = {sorted.front() - 1, sorted.back() + 1, 0.0f,
                               std::numeric_limits<float>::max()};
  for (float v : sorted) {
    probes.push_back(v);
    probes.push_back(std::nextafter(v, -INFINITY));
    probes.push_back(std::nextafter(v, INFINITY));
  }
  for (float s : probes) {
    const size_t below = static_cast<size_t>(
        std::lower_bound(sorted.begin(), sorted.end(), s) - sorted.begin());
    const double want = static_cast<double>(sorted.size() - below) / sorted.size();
    ASSERT_EQ(model_->PValue(s), want) << s;
  }
}

TEST_F(ModelTest, ContributionsSumToReconstructionAndPointAtTheBrokenFeature) {
  Matrix m = CorrelatedData(5, 4);
  for (size_t i = 0; i < m.rows; ++i) m.at(i, 2) += 40;  // c far off
  ScoreOptions opts;
  opts.contributions = true;
  ScoreOutput out = Score(m, opts);
  ASSERT_EQ(out.contributions.size(), 5u * 4u);
  for (size_t i = 0; i < 5; ++i) {
    const float* c = &out.contributions[i * 4];
    EXPECT_NEAR(std::accumulate(c, c + 4, 0.0f), out.reconstruction[i],
                1e-3 * out.reconstruction[i]);
    // c is broken, and d = c - a with it: one of those two carries most.
    EXPECT_GT(c[2] + c[3], 0.5f * out.reconstruction[i]);
  }
}

TEST_F(ModelTest, ExtremeInputsGiveFiniteScores) {
  const float big = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  Matrix m(6, 4);
  m.data = {big, big, big, big,     -big, -big, -big, -big,
            1e30f, -1e30f, 1e30f, 0, tiny, -tiny, tiny, tiny,
            0, 0, 0, 0,             1e-30f, 1e20f, -1e-30f, 1e10f};
  for (uint32_t samples : {1u, 4u}) {
    ScoreOptions opts;
    opts.samples = samples;
    opts.contributions = true;
    ScoreOutput out = Score(m, opts);
    for (size_t i = 0; i < m.rows; ++i) {
      EXPECT_TRUE(std::isfinite(out.score[i])) << "row " << i << " L=" << samples;
      EXPECT_TRUE(std::isfinite(out.kl[i])) << "row " << i;
    }
    for (float c : out.contributions) EXPECT_TRUE(std::isfinite(c));
  }
}

TEST_F(ModelTest, NonFiniteInputIsRejected) {
  Matrix m = CorrelatedData(3, 8);
  m.at(1, 3) = std::numeric_limits<float>::quiet_NaN();
  ScoreOutput out;
  Status s = model_->Score(m.data.data(), m.rows, {}, &out);
  EXPECT_EQ(s.code(), pb::NON_FINITE);
  EXPECT_NE(s.message().find("record 1"), std::string::npos) << s.message();
  m.at(1, 3) = std::numeric_limits<float>::infinity();
  EXPECT_EQ(model_->Score(m.data.data(), m.rows, {}, &out).code(), pb::NON_FINITE);
}

TEST_F(ModelTest, MonteCarloScoringIsSeededAndNearTheMeanScore) {
  Matrix m = CorrelatedData(50, 11);
  ScoreOptions mc;
  mc.samples = 16;
  mc.seed = 3;
  ScoreOutput a = Score(m, mc), b = Score(m, mc), mean = Score(m);
  EXPECT_EQ(a.score, b.score);
  mc.seed = 4;
  EXPECT_NE(Score(m, mc).score, a.score);
  // Sampling z adds decoder noise: MC reconstruction is not below the mean's
  // by much, and of the same order.
  const double sa = std::accumulate(a.score.begin(), a.score.end(), 0.0);
  const double sm = std::accumulate(mean.score.begin(), mean.score.end(), 0.0);
  EXPECT_GT(sa, 0.5 * sm);
  EXPECT_LT(sa, 20 * sm + 50);
}

TEST_F(ModelTest, EmptyBatchScoresNothing) {
  ScoreOutput out;
  ASSERT_OK(model_->Score(nullptr, 0, {}, &out));
  EXPECT_TRUE(out.score.empty());
}

TEST_F(ModelTest, SampleGeneratesNormalLookingRecords) {
  Matrix s;
  ASSERT_OK(model_->Sample(2000, 42, &s));
  ASSERT_EQ(s.rows, 2000u);
  ASSERT_EQ(s.cols, 4u);
  double mean_c = 0, rel = 0;
  for (size_t i = 0; i < s.rows; ++i) {
    mean_c += s.at(i, 2);
    rel += std::fabs(s.at(i, 1) - 2 * s.at(i, 0));
  }
  EXPECT_NEAR(mean_c / 2000, 10.0, 1.0);   // c ~ N(10, 3)
  EXPECT_LT(rel / 2000, 0.5);              // b = 2a is kept
  Matrix again;
  ASSERT_OK(model_->Sample(2000, 42, &again));
  EXPECT_EQ(s.data, again.data);
  // Generated records are judged normal by the model itself.
  ScoreOutput out = Score(s);
  const size_t flagged = std::count_if(out.score.begin(), out.score.end(),
                                       [&](float x) { return x > model_->threshold(); });
  EXPECT_LT(flagged, 100u);
}

TEST_F(ModelTest, EncodeGivesLatentMeans) {
  Matrix m = CorrelatedData(7, 12), z;
  ASSERT_OK(model_->Encode(m.data.data(), m.rows, &z));
  EXPECT_EQ(z.rows, 7u);
  EXPECT_EQ(z.cols, 2u);
}

TEST_F(ModelTest, RecalibrateChangesOnlyTheThreshold) {
  std::unique_ptr<Model> m;
  // Retrain cheaply to get a model we may modify.
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 2;
  ASSERT_OK(Model::Train(o, *data_, FeatureNames(), nullptr, &m));
  ThresholdOptions q;
  q.method = pb::QUANTILE;
  q.contamination = 0.5;
  ASSERT_OK(m->Recalibrate(q));
  EXPECT_EQ(m->meta().threshold().method(), pb::QUANTILE);
  const auto& h = m->meta().holdout_scores();
  EXPECT_NEAR(m->threshold(), 0.5 * (h[79] + h[80]), 1e-3);
}

TEST(ModelTrainTest, SameSeedGivesIdenticalModelsOtherSeedsDiffer) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(300, 2);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 5;
  std::unique_ptr<Model> a, b, c;
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &a));
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &b));
  o.seed = 8;
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &c));
  ScoreOutput sa, sb, sc;
  ASSERT_OK(a->Score(data.data.data(), data.rows, {}, &sa));
  ASSERT_OK(b->Score(data.data.data(), data.rows, {}, &sb));
  ASSERT_OK(c->Score(data.data.data(), data.rows, {}, &sc));
  EXPECT_EQ(sa.score, sb.score);  // bit for bit
  EXPECT_NE(sa.score, sc.score);
  EXPECT_TRUE(std::equal(a->meta().training().val_loss().begin(),
                         a->meta().training().val_loss().end(),
                         b->meta().training().val_loss().begin()));
  // Identical weights: the saved weight files are byte-identical.
  testing::TempDir dir;
  ASSERT_OK(a->Save(dir.file("a")));
  ASSERT_OK(b->Save(dir.file("b")));
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(dir.file("a/vae_0.pt")), read(dir.file("b/vae_0.pt")));
}

TEST(ModelTrainTest, EnsembleAveragesMembers) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(300, 2);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 3;
  o.model.ensemble = 3;
  std::unique_ptr<Model> m;
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &m));
  EXPECT_EQ(m->meta().ensemble_size(), 3u);
  ScoreOutput out;
  ASSERT_OK(m->Score(data.data.data(), 10, {}, &out));
  EXPECT_EQ(out.score.size(), 10u);
}

TEST(ModelTrainTest, ProgressReportsEpochsAndCanCancel) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(200, 2);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 50;
  o.patience = 0;
  std::vector<uint32_t> epochs;
  std::unique_ptr<Model> m;
  Status s = Model::Train(o, data, FeatureNames(), [&](const TrainProgress& p) {
    epochs.push_back(p.epoch);
    EXPECT_TRUE(std::isfinite(p.train_loss));
    return p.epoch < 3;
  }, &m);
  EXPECT_EQ(s.code(), pb::CANCELLED);
  EXPECT_EQ(epochs, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(m, nullptr);
}

// Parses "training cancelled in epoch E of member M after B of N batches".
struct CancelPoint {
  int epoch = -1, member = -1, batches_done = -1, batches = -1;
};
CancelPoint ParseCancel(const std::string& message) {
  std::smatch m;
  CancelPoint p;
  if (std::regex_match(
          message, m,
          std::regex("training cancelled in epoch (\\d+) of member (\\d+) "
                     "after (\\d+) of (\\d+) batches"))) {
    p = {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4])};
  }
  return p;
}

// The flag is set from another thread while training waits in the report
// of epoch 1: not one batch of epoch 2 runs (before, a cancel was seen only
// in the report at the end of an epoch; SIGTERM waited 8.6 s for one).
TEST(ModelTrainTest, CancelFlagStopsBeforeTheNextBatch) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(400, 2);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 50;
  o.patience = 0;
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::condition_variable cv;
  bool reported = false;
  std::thread canceller([&] {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return reported; });
    cancel = true;
    cv.notify_all();
  });
  std::vector<uint32_t> epochs;
  std::unique_ptr<Model> m;
  const Status s = Model::Train(
      o, data, FeatureNames(),
      [&](const TrainProgress& p) {
        epochs.push_back(p.epoch);
        std::unique_lock<std::mutex> l(mu);
        reported = true;
        cv.notify_all();
        cv.wait(l, [&] { return cancel.load(); });
        return true;  // the report does not cancel; the flag does
      },
      &m, &cancel);
  canceller.join();
  EXPECT_EQ(s.code(), pb::CANCELLED) << s.ToString();
  EXPECT_EQ(epochs, std::vector<uint32_t>{1});
  const CancelPoint at = ParseCancel(s.message());
  EXPECT_EQ(at.epoch, 2) << s.message();
  EXPECT_EQ(at.member, 0) << s.message();
  EXPECT_EQ(at.batches_done, 0) << s.message();
  EXPECT_EQ(m, nullptr);
}

// One epoch of ~700 single-row batches; the flag is set from another thread
// as soon as epoch 1 is reported, without waiting for training: epoch 2
// ends early, short of its batch count.
TEST(ModelTrainTest, CancelFlagEndsALongEpochEarly) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(1000, 3);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 3;
  o.patience = 0;
  o.batch_size = 1;
  std::atomic<bool> cancel{false};
  std::atomic<bool> reported{false};
  std::thread canceller([&] {
    while (!reported.load()) std::this_thread::yield();
    cancel = true;
  });
  std::unique_ptr<Model> m;
  const Status s = Model::Train(
      o, data, FeatureNames(),
      [&](const TrainProgress&) {
        reported = true;
        return true;
      },
      &m, &cancel);
  reported = true;  // lets the canceller end even if training failed early
  canceller.join();
  ASSERT_EQ(s.code(), pb::CANCELLED) << s.ToString();
  const CancelPoint at = ParseCancel(s.message());
  EXPECT_EQ(at.epoch, 2) << s.message();
  EXPECT_GE(at.batches, 600) << s.message();
  EXPECT_GE(at.batches_done, 0) << s.message();
  EXPECT_LT(at.batches_done, at.batches) << s.message();
  EXPECT_EQ(m, nullptr);
}

// Passing a flag that is never set changes nothing: same bundle bit for bit.
TEST(ModelTrainTest, UnsetCancelFlagGivesTheSameModel) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(300, 2);
  TrainOptions o = SmallTrainOptions();
  o.max_epochs = 5;
  std::atomic<bool> cancel{false};
  std::unique_ptr<Model> a, b;
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &a));
  ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &b, &cancel));
  ScoreOutput sa, sb;
  ASSERT_OK(a->Score(data.data.data(), data.rows, {}, &sa));
  ASSERT_OK(b->Score(data.data.data(), data.rows, {}, &sb));
  EXPECT_EQ(sa.score, sb.score);
}

TEST(ModelTrainTest, CancelFlagSetBeforehandTrainsNothing) {
  Matrix data = CorrelatedData(200, 2);
  std::atomic<bool> cancel{true};
  std::unique_ptr<Model> m;
  EXPECT_EQ(Model::Train(SmallTrainOptions(), data, FeatureNames(), nullptr, &m,
                         &cancel)
                .code(),
            pb::CANCELLED);
  EXPECT_EQ(m, nullptr);
}

TEST(ModelTrainTest, RejectsBadDataAndOptions) {
  Matrix data = CorrelatedData(200, 2);
  std::unique_ptr<Model> m;
  TrainOptions o = SmallTrainOptions();
  EXPECT_EQ(Model::Train(o, CorrelatedData(10, 1), FeatureNames(), nullptr, &m).code(),
            pb::TRAINING_FAILED);
  EXPECT_EQ(Model::Train(o, data, {"a", "b"}, nullptr, &m).code(), pb::INVALID_ARGUMENT);
  {
    // Whatever the source of the names (inline rows, the reservoir), a
    // bundle never holds one that protobuf cannot parse back.
    const Status s =
        Model::Train(o, data, {"a", "caf\xE9", "c", "d"}, nullptr, &m);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
    EXPECT_EQ(s.message(), "feature_names[1] is not valid UTF-8");
    TrainOptions bad = o;
    bad.stream = "s\xFF";
    EXPECT_EQ(Model::Train(bad, data, FeatureNames(), nullptr, &m).code(),
              pb::INVALID_ARGUMENT);
  }
  struct Case {
    const char* what;
    std::function<void(TrainOptions*)> change;
  } cases[] = {
      {"batch 0", [](TrainOptions* t) { t->batch_size = 0; }},
      {"lr 0", [](TrainOptions* t) { t->learning_rate = 0; }},
      {"holdout 0", [](TrainOptions* t) { t->holdout_split = 0; }},
      {"val 0.7", [](TrainOptions* t) { t->validation_split = 0.7; }},
      {"ensemble 0", [](TrainOptions* t) { t->model.ensemble = 0; }},
      {"samples 0", [](TrainOptions* t) { t->model.samples = 0; }},
      {"beta -1", [](TrainOptions* t) { t->model.beta = -1; }},
      {"bernoulli+standard", [](TrainOptions* t) { t->model.likelihood = pb::BERNOULLI; }},
      {"device", [](TrainOptions* t) { t->device = "tpu"; }},
  };
  for (const Case& c : cases) {
    TrainOptions bad = o;
    c.change(&bad);
    EXPECT_EQ(Model::Train(bad, data, FeatureNames(), nullptr, &m).code(),
              pb::INVALID_ARGUMENT)
        << c.what;
  }
  data.at(3, 1) = NAN;
  EXPECT_EQ(Model::Train(o, data, FeatureNames(), nullptr, &m).code(), pb::NON_FINITE);
}

TEST(ModelTrainTest, EveryLikelihoodAndActivationTrains) {
  ConfigureThreads(1);
  Matrix data = CorrelatedData(200, 2);
  for (auto lk : {pb::GAUSSIAN, pb::GAUSSIAN_LEARNED, pb::BERNOULLI}) {
    for (auto act : {pb::RELU, pb::TANH, pb::ELU, pb::LEAKY_RELU, pb::SILU}) {
      TrainOptions o = SmallTrainOptions();
      o.max_epochs = 2;
      o.model.likelihood = lk;
      o.model.activation = act;
      if (lk == pb::BERNOULLI) o.model.normaliser = pb::MINMAX;
      std::unique_ptr<Model> m;
      ASSERT_OK(Model::Train(o, data, FeatureNames(), nullptr, &m));
      ScoreOutput out;
      ASSERT_OK(m->Score(data.data.data(), 5, {}, &out));
      for (float s : out.score) EXPECT_TRUE(std::isfinite(s));
    }
  }
}

TEST(ResolveArchitectureTest, DerivesSizesFromFeatureCount) {
  ModelOptions o;
  ModelOptions r6 = ResolveArchitecture(o, 6), r100 = ResolveArchitecture(o, 100);
  EXPECT_FALSE(r6.hidden.empty());
  EXPECT_GE(r6.latent, 2u);
  EXPECT_GE(r100.hidden.front(), r6.hidden.front());
  EXPECT_GE(r100.latent, r6.latent);
  o.hidden = {5};
  o.latent = 3;
  ModelOptions fixed = ResolveArchitecture(o, 100);
  EXPECT_EQ(fixed.hidden, std::vector<uint32_t>{5});
  EXPECT_EQ(fixed.latent, 3u);
}

}  // namespace
}  // namespace anomalyd
