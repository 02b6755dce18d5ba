#include "engine/recalibrator.h"

#include <random>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

RecalibrationOptions Opts() {
  RecalibrationOptions o;
  o.every_scores = 1000;
  o.every_seconds = 0;
  o.min_interval_seconds = 0;
  o.window = 5000;
  o.min_samples = 500;
  o.threshold.method = pb::QUANTILE;
  o.threshold.contamination = 0.01;
  return o;
}

std::vector<float> Exponential(size_t n, double scale, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> e(1.0 / scale);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(e(rng));
  return v;
}

TEST(RecalibratorTest, NotDueUntilEnoughScores) {
  Recalibrator r(Opts(), 4.6, 0);
  pb::ThresholdParams p;
  Status err;
  auto s = Exponential(999, 1, 1);
  r.Add(s.data(), s.size());
  EXPECT_FALSE(r.MaybeRecalibrate(0, &p, &err));
  r.Add(s.data(), 1);
  EXPECT_TRUE(r.MaybeRecalibrate(0, &p, &err));
  EXPECT_EQ(p.sample_count(), 1000u);
  EXPECT_FALSE(r.MaybeRecalibrate(0, &p, &err));  // counter restarted
}

TEST(RecalibratorTest, ByCountAtMostOncePerMinInterval) {
  RecalibrationOptions o = Opts();
  o.min_interval_seconds = 1;
  Recalibrator r(o, 4.6, 0);
  auto s = Exponential(5000, 1, 4);
  pb::ThresholdParams p;
  Status err;
  r.Add(s.data(), s.size());
  EXPECT_FALSE(r.MaybeRecalibrate(999'999, &p, &err));  // due by count, too soon
  EXPECT_TRUE(r.MaybeRecalibrate(1'000'000, &p, &err));
  r.Add(s.data(), s.size());
  EXPECT_FALSE(r.MaybeRecalibrate(1'500'000, &p, &err));
  EXPECT_TRUE(r.MaybeRecalibrate(2'000'000, &p, &err));
  EXPECT_FALSE(r.MaybeRecalibrate(3'500'000, &p, &err));  // interval passed, count not
}

TEST(RecalibratorTest, TooFewSamplesKeepThreshold) {
  RecalibrationOptions o = Opts();
  o.every_scores = 10;
  Recalibrator r(o, 4.6, 0);
  auto s = Exponential(100, 1, 2);
  r.Add(s.data(), s.size());
  pb::ThresholdParams p;
  Status err;
  EXPECT_FALSE(r.MaybeRecalibrate(0, &p, &err));
  EXPECT_EQ(r.threshold(), 4.6);
}

TEST(RecalibratorTest, DueByTime) {
  RecalibrationOptions o = Opts();
  o.every_scores = 1'000'000;
  o.every_seconds = 60;
  Recalibrator r(o, 4.6, 0);
  auto s = Exponential(600, 1, 3);
  r.Add(s.data(), s.size());
  pb::ThresholdParams p;
  Status err;
  EXPECT_FALSE(r.MaybeRecalibrate(59'000'000, &p, &err));
  EXPECT_TRUE(r.MaybeRecalibrate(60'000'000, &p, &err));
}

TEST(RecalibratorTest, FollowsAModestShiftStepByStep) {
  // Base 4.6 = the 99% quantile of Exp(1); the stream now looks like
  // Exp(1.1) (quantile 5.07, +10%): the threshold gets there within bounds.
  Recalibrator r(Opts(), 4.6, 0);
  pb::ThresholdParams p;
  Status err;
  for (int round = 0; round < 5; ++round) {
    auto s = Exponential(1000, 1.1, 10 + round);
    r.Add(s.data(), s.size());
    r.MaybeRecalibrate(0, &p, &err);
  }
  EXPECT_NEAR(r.threshold(), 5.07, 0.35);
}

TEST(RecalibratorTest, FloodOfAnomaliesCannotHideItself) {
  // Regression: every score of a sustained flood is 100x the threshold.
  RecalibrationOptions o = Opts();
  Recalibrator r(o, 4.6, 0);
  pb::ThresholdParams p;
  Status err;
  double previous = r.threshold();
  for (int round = 0; round < 50; ++round) {
    std::vector<float> flood(1000, 460.0f);
    r.Add(flood.data(), flood.size());
    ASSERT_TRUE(r.MaybeRecalibrate(0, &p, &err));
    // One step moves at most max_step * base.
    EXPECT_LE(r.threshold() - previous, o.max_step * 4.6 + 1e-9);
    previous = r.threshold();
    // Never beyond base * (1 + max_drift): the flood stays flagged.
    EXPECT_LE(r.threshold(), 4.6 * (1 + o.max_drift) + 1e-9);
    EXPECT_LT(r.threshold(), 460.0);
  }
}

TEST(RecalibratorTest, ResetStartsFromTheNewModel) {
  Recalibrator r(Opts(), 4.6, 0);
  auto s = Exponential(2000, 1, 4);
  r.Add(s.data(), s.size());
  r.Reset(9.0, 0);
  EXPECT_EQ(r.threshold(), 9.0);
  EXPECT_EQ(r.window_size(), 0u);
}

TEST(RecalibratorTest, WindowIsBounded) {
  Recalibrator r(Opts(), 4.6, 0);
  auto s = Exponential(12000, 1, 5);
  r.Add(s.data(), s.size());
  EXPECT_EQ(r.window_size(), 5000u);
}

TEST(RecalibratorTest, FixedMethodAndDisabledNeverMove) {
  RecalibrationOptions o = Opts();
  o.threshold.method = pb::FIXED;
  Recalibrator fixed(o, 4.6, 0);
  o = Opts();
  o.enabled = false;
  Recalibrator off(o, 4.6, 0);
  auto s = Exponential(5000, 3, 6);
  pb::ThresholdParams p;
  Status err;
  for (Recalibrator* r : {&fixed, &off}) {
    r->Add(s.data(), s.size());
    EXPECT_FALSE(r->MaybeRecalibrate(1'000'000'000, &p, &err));
    EXPECT_EQ(r->threshold(), 4.6);
  }
}

}  // namespace
}  // namespace anomalyd
