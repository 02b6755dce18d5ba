#include "model/threshold.h"

#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Draws from U(0, 1], so that logs and negative powers stay finite.
double Uniform(std::mt19937_64* rng) {
  return 1.0 - std::uniform_real_distribution<double>(0.0, 1.0)(*rng);
}

std::vector<double> Exponential(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out(n);
  for (double& v : out) v = -std::log(Uniform(&rng));  // rate 1
  return out;
}

// Pareto with x_m = 1: P(X > x) = x^-alpha for x >= 1.
std::vector<double> Pareto(size_t n, double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out(n);
  for (double& v : out) v = std::pow(Uniform(&rng), -1.0 / alpha);
  return out;
}

// GPD(gamma, sigma) by inversion: sigma/gamma * (U^-gamma - 1).
std::vector<double> Gpd(size_t n, double gamma, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> out(n);
  for (double& v : out) {
    const double u = Uniform(&rng);
    v = gamma == 0.0 ? -sigma * std::log(u)
                     : sigma / gamma * (std::pow(u, -gamma) - 1.0);
    if (v <= 0.0) v = std::numeric_limits<double>::min();  // u == 1
  }
  return out;
}

TEST(ThresholdTest, QuantileMatchesNumpy) {
  struct Case {
    std::vector<double> values;
    double q;
    double want;  // numpy.quantile(values, q), method="linear"
  };
  const std::vector<Case> cases = {
      {{1, 2, 3, 4}, 0.5, 2.5},                // h = 1.5
      {{4, 3, 2, 1}, 0.5, 2.5},                // order does not matter
      {{1, 2, 3, 4, 5}, 0.3, 2.2},             // h = 1.2
      {{3, 1, 4, 1, 5, 9, 2, 6}, 0.9, 6.9},    // sorted[6] + .3 (9 - 6)
      {{3, 1, 4, 1, 5, 9, 2, 6}, 0.0, 1.0},    // min
      {{3, 1, 4, 1, 5, 9, 2, 6}, 1.0, 9.0},    // max
      {{3, 1, 4, 1, 5, 9, 2, 6}, 0.25, 1.75},  // h = 1.75: 1 + .75 (2 - 1)
      {{10}, 0.37, 10.0},                      // one value
      {{-5, 5}, 0.75, 2.5},                    // h = .75
      {{2, 2, 2, 7}, 0.5, 2.0},                // ties
      {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.98, 9.82},  // h = 8.82
  };
  for (const Case& c : cases) {
    EXPECT_NEAR(c.want, Quantile(c.values, c.q), 1e-12) << "q=" << c.q;
  }
}

TEST(ThresholdTest, QuantileOfLargeSample) {
  std::vector<double> v(1001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(1000 - i);
  // h = 1000 * 0.99 = 990: exactly the order statistic 990.
  EXPECT_DOUBLE_EQ(990.0, Quantile(v, 0.99));
}

TEST(ThresholdTest, FitGpdRecoversKnownParameters) {
  struct Case {
    double gamma, sigma;
  };
  // 100,000 draws: the MLE's standard errors are about (1 + gamma) / sqrt(n)
  // = 0.004 to 0.006 for gamma and under 1% of sigma: the tolerances (0.02
  // and 3%) are 3-5 of them.
  for (const Case& c :
       std::vector<Case>{{0.2, 1.0}, {-0.2, 1.0}, {0.0, 1.5}, {0.5, 0.3}}) {
    SCOPED_TRACE(::testing::Message()
                 << "gamma=" << c.gamma << " sigma=" << c.sigma);
    GpdFit fit;
    ASSERT_OK(FitGpd(Gpd(100000, c.gamma, c.sigma, /*seed=*/1), &fit));
    EXPECT_NEAR(c.gamma, fit.gamma, 0.02);
    EXPECT_NEAR(c.sigma, fit.sigma, 0.03 * c.sigma);
  }
}

TEST(ThresholdTest, FitGpdWithoutRootFallsBackToExponential) {
  // Equal excesses: Grimshaw's equation has no root besides 0, so the
  // exponential candidate (sigma = mean) is the answer.
  GpdFit fit;
  ASSERT_OK(FitGpd({2.0, 2.0, 2.0, 2.0}, &fit));
  EXPECT_EQ(0.0, fit.gamma);
  EXPECT_DOUBLE_EQ(2.0, fit.sigma);
  ASSERT_OK(FitGpd({1.0, 3.0}, &fit));
  EXPECT_TRUE(std::isfinite(fit.gamma));
  EXPECT_GT(fit.sigma, 0.0);
}

TEST(ThresholdTest, FitGpdRejectsBadExcesses) {
  const std::vector<std::vector<double>> bad = {
      {}, {1.0}, {1.0, 0.0}, {1.0, -2.0}, {1.0, kNaN}, {kInf, 1.0}};
  for (const auto& excesses : bad) {
    GpdFit fit;
    EXPECT_EQ(pb::INVALID_ARGUMENT, FitGpd(excesses, &fit).code());
  }
}

ThresholdOptions Pot(double risk) {
  ThresholdOptions o;
  o.method = pb::POT;
  o.risk = risk;
  o.initial_quantile = 0.98;
  return o;
}

TEST(ThresholdTest, PotOnExponentialFindsTrueQuantile) {
  // P(X > x) = e^-x, so the 1e-4 risk quantile is -ln(1e-4) = 9.21.
  // 200,000 draws (4,000 excesses): over 40 seeds the relative error had a
  // standard deviation of 1.7% (3.8% at 50,000), so 10% is a wide margin.
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(Pot(1e-4), Exponential(200000, /*seed=*/42), &p));
  EXPECT_NEAR(-std::log(1e-4), p.value(), 0.1 * -std::log(1e-4));
  EXPECT_EQ(pb::POT, p.method());
  EXPECT_EQ(1e-4, p.risk());
  EXPECT_EQ(0.98, p.initial_quantile());
  EXPECT_EQ(200000u, p.sample_count());
}

TEST(ThresholdTest, PotOnExponential50k) {
  // The 50,000-sample case: standard deviation 3.8%, so allow 15%.
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(Pot(1e-4), Exponential(50000, /*seed=*/42), &p));
  EXPECT_NEAR(-std::log(1e-4), p.value(), 0.15 * -std::log(1e-4));
}

TEST(ThresholdTest, PotOnParetoFindsTrueQuantile) {
  // Pareto(alpha = 3): P(X > x) = x^-3, so the 1e-4 quantile is
  // 1e-4^(-1/3) = 21.54; its excesses are GPD with gamma = 1/3.
  // Heavier tail, larger error: 2.5% standard deviation at 500,000 draws.
  const double truth = std::pow(1e-4, -1.0 / 3.0);
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(Pot(1e-4), Pareto(500000, 3.0, /*seed=*/42), &p));
  EXPECT_NEAR(truth, p.value(), 0.1 * truth);
}

TEST(ThresholdTest, PotWithTooFewExcessesUsesEmpiricalQuantile) {
  // 100 scores at initial_quantile 0.98 leave 2 excesses < min_excesses.
  std::vector<double> scores(100);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<double>(i);
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(Pot(1e-3), scores, &p));
  // 0.999 quantile: h = 99 * 0.999 = 98.901.
  EXPECT_NEAR(98.901, p.value(), 1e-9);
  EXPECT_EQ(pb::POT, p.method());
}

TEST(ThresholdTest, PotOnConstantScoresUsesEmpiricalQuantile) {
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(Pot(1e-3), std::vector<double>(1000, 4.5), &p));
  EXPECT_EQ(4.5, p.value());
}

TEST(ThresholdTest, QuantileMethod) {
  // 1..1000 at contamination 0.01: h = 999 * 0.99 = 989.01, so
  // 990 + 0.01 * (991 - 990).
  std::vector<double> scores(1000);
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = 1000.0 - i;
  ThresholdOptions o;
  o.method = pb::QUANTILE;
  o.contamination = 0.01;
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(o, scores, &p));
  EXPECT_NEAR(990.01, p.value(), 1e-9);
  EXPECT_EQ(pb::QUANTILE, p.method());
  EXPECT_EQ(0.01, p.contamination());
  EXPECT_EQ(1000u, p.sample_count());
}

TEST(ThresholdTest, FixedIgnoresScores) {
  ThresholdOptions o;
  o.method = pb::FIXED;
  o.fixed_value = 3.25;
  pb::ThresholdParams p;
  ASSERT_OK(ComputeThreshold(o, {}, &p));
  EXPECT_EQ(3.25, p.value());
  EXPECT_EQ(pb::FIXED, p.method());
  EXPECT_EQ(0u, p.sample_count());
  ASSERT_OK(ComputeThreshold(o, {1.0, 100.0}, &p));
  EXPECT_EQ(3.25, p.value());
  EXPECT_EQ(2u, p.sample_count());
}

TEST(ThresholdTest, InvalidOptionsNameTheOption) {
  struct Case {
    const char* option;
    ThresholdOptions options;
  };
  auto with = [](pb::ThresholdMethod m, auto set) {
    ThresholdOptions o;
    o.method = m;
    set(&o);
    return o;
  };
  const std::vector<Case> cases = {
      {"contamination",
       with(pb::QUANTILE, [](auto* o) { o->contamination = 0; })},
      {"contamination",
       with(pb::QUANTILE, [](auto* o) { o->contamination = 1; })},
      {"contamination",
       with(pb::QUANTILE, [](auto* o) { o->contamination = -0.1; })},
      {"contamination",
       with(pb::QUANTILE, [](auto* o) { o->contamination = kNaN; })},
      {"risk", with(pb::POT, [](auto* o) { o->risk = 0; })},
      {"risk", with(pb::POT, [](auto* o) { o->risk = 1; })},
      {"risk", with(pb::POT, [](auto* o) { o->risk = kNaN; })},
      // The risk must lie inside the tail that is fitted.
      {"risk", with(pb::POT, [](auto* o) { o->risk = 0.05; })},
      {"initial_quantile",
       with(pb::POT, [](auto* o) { o->initial_quantile = 0; })},
      {"initial_quantile",
       with(pb::POT, [](auto* o) { o->initial_quantile = 1; })},
      {"initial_quantile",
       with(pb::POT, [](auto* o) { o->initial_quantile = 1.5; })},
      {"min_excesses", with(pb::POT, [](auto* o) { o->min_excesses = 1; })},
      {"fixed_value", with(pb::FIXED, [](auto* o) { o->fixed_value = kInf; })},
      {"fixed_value", with(pb::FIXED, [](auto* o) { o->fixed_value = kNaN; })},
      {"method", with(static_cast<pb::ThresholdMethod>(17), [](auto*) {})},
  };
  const std::vector<double> scores = Exponential(1000, /*seed=*/3);
  for (const Case& c : cases) {
    pb::ThresholdParams p;
    const Status s = ComputeThreshold(c.options, scores, &p);
    EXPECT_EQ(pb::INVALID_ARGUMENT, s.code()) << c.option;
    EXPECT_NE(std::string::npos,
              s.message().find("'" + std::string(c.option) + "'"))
        << s.message();
  }
}

TEST(ThresholdTest, OptionsOfOtherMethodsAreNotChecked) {
  // A QUANTILE threshold read back from a bundle has risk = 0 (absent).
  ThresholdOptions o;
  o.method = pb::QUANTILE;
  o.risk = 0;
  o.initial_quantile = 0;
  pb::ThresholdParams p;
  EXPECT_OK(ComputeThreshold(o, {1.0, 2.0}, &p));
}

TEST(ThresholdTest, RejectsEmptyAndNonFiniteScores) {
  for (pb::ThresholdMethod m : {pb::POT, pb::QUANTILE}) {
    ThresholdOptions o;
    o.method = m;
    pb::ThresholdParams p;
    EXPECT_EQ(pb::INVALID_ARGUMENT, ComputeThreshold(o, {}, &p).code());
    for (double bad : {kNaN, kInf, -kInf}) {
      std::vector<double> scores = Exponential(1000, /*seed=*/5);
      scores[500] = bad;
      p.set_value(7.0);
      const Status s = ComputeThreshold(o, scores, &p);
      EXPECT_EQ(pb::INVALID_ARGUMENT, s.code());
      EXPECT_NE(std::string::npos, s.message().find("score 500"))
          << s.message();
      EXPECT_EQ(7.0, p.value());  // untouched on failure
    }
  }
}

}  // namespace
}  // namespace anomalyd
