#include "model/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace anomalyd {
namespace {

constexpr double kTol = 1e-12;

struct RankingCase {
  const char* name;
  std::vector<double> scores;
  std::vector<int> labels;
  double roc;  // NaN when undefined
  double ap;   // NaN when undefined
};

// Each expected value is worked by hand in the comment beside it.
// ROC = (sum of positives' ascending mid-ranks - P(P+1)/2) / (P N).
// AP  = sum over distinct thresholds, descending, of
//       (recall gained) * (precision at that threshold).
const std::vector<RankingCase>& RankingCases() {
  static const auto* cases = new std::vector<RankingCase>{
      // Ranks 0.1:1 0.35:2 0.4:3 0.8:4; positives 2 + 4 = 6; (6-3)/4 = 0.75.
      // Descending: 0.8(+) P=1 R=.5; 0.4(-) adds no recall;
      // 0.35(+) P=2/3 R=1. AP = .5*1 + .5*2/3 = 5/6.
      {"sklearn doc example",
       {0.1, 0.4, 0.35, 0.8},
       {0, 0, 1, 1},
       0.75,
       5.0 / 6.0},
      // Perfect: positives hold ranks 3,4: (7-3)/4 = 1. AP: P=1 at R=.5, 1.
      {"perfect", {0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}, 1.0, 1.0},
      // Inverted: positives ranks 1,2: (3-3)/4 = 0.
      // AP: 0.9(-),0.8(-) no recall; 0.2(+) P=1/3 R=.5; 0.1(+) P=2/4 R=1.
      // AP = .5/3 + .5*.5 = 1/6 + 1/4 = 5/12.
      {"inverted", {0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}, 0.0, 5.0 / 12.0},
      // All tied: every rank is the mid-rank 2.5; (5-3)/4 = 0.5.
      // AP: one threshold flags all: P = 2/4, R = 1 -> 0.5.
      {"all tied", {0.3, 0.3, 0.3, 0.3}, {1, 0, 0, 1}, 0.5, 0.5},
      // Scores 0.1(-) 0.5(+) 0.5(-) 0.9(+) 0.2(-): ascending ranks
      // 0.1:1 0.2:2 0.5,0.5:3.5 0.9:5. Positives 3.5 + 5 = 8.5;
      // (8.5 - 3) / (2*3) = 5.5/6.
      // AP: 0.9(+) P=1 R=.5; {0.5,0.5} one + one - : P=2/3 R=1.
      // AP = .5 + .5*2/3 = 5/6.
      {"tie across classes",
       {0.1, 0.5, 0.5, 0.9, 0.2},
       {0, 1, 0, 1, 0},
       5.5 / 6.0,
       5.0 / 6.0},
      // Ties inside one class change nothing: ranks 0.2,0.2 -> 1.5,1.5;
      // 0.7,0.7 -> 3.5,3.5 (positives): (7 - 3)/4 = 1. AP = 1.
      {"ties within classes", {0.7, 0.2, 0.7, 0.2}, {1, 0, 1, 0}, 1.0, 1.0},
      // One positive in the middle: ranks 1..5, positive rank 3;
      // (3 - 1) / (1*4) = 0.5. AP: descending 5,4 (-), 3 (+): P = 1/3, R=1.
      {"single positive", {1, 2, 3, 4, 5}, {0, 0, 1, 0, 0}, 0.5, 1.0 / 3.0},
      // No negative: ROC undefined; AP = 1 (every threshold has P = 1).
      {"no negative", {0.1, 0.2}, {1, 1}, NAN, 1.0},
      // No positive: both undefined.
      {"no positive", {0.1, 0.2}, {0, 0}, NAN, NAN},
      {"empty", {}, {}, NAN, NAN},
  };
  return *cases;
}

void ExpectNear(double want, double got) {
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << got;
  } else {
    EXPECT_NEAR(want, got, kTol);
  }
}

TEST(MetricsTest, RocAucHandComputed) {
  for (const RankingCase& c : RankingCases()) {
    SCOPED_TRACE(c.name);
    ExpectNear(c.roc, RocAuc(c.scores, c.labels));
  }
}

TEST(MetricsTest, AveragePrecisionHandComputed) {
  for (const RankingCase& c : RankingCases()) {
    SCOPED_TRACE(c.name);
    ExpectNear(c.ap, AveragePrecision(c.scores, c.labels));
  }
}

// Quadratic reference implementations straight from the definitions.
double BruteRoc(const std::vector<double>& s, const std::vector<int>& l) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      if (l[i] != 1 || l[j] != 0) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    }
  }
  return wins / pairs;
}

double BruteAp(const std::vector<double>& s, const std::vector<int>& l) {
  std::vector<double> thresholds = s;
  std::sort(thresholds.rbegin(), thresholds.rend());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()),
                   thresholds.end());
  double pos = 0;
  for (int v : l) pos += v;
  double ap = 0, prev_recall = 0;
  for (double t : thresholds) {
    double tp = 0, flagged = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] >= t) {
        flagged += 1;
        tp += l[i];
      }
    }
    ap += (tp / pos - prev_recall) * (tp / flagged);
    prev_recall = tp / pos;
  }
  return ap;
}

TEST(MetricsTest, MatchesBruteForceWithManyTies) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 5 + trial * 3;
    std::vector<double> s(n);
    std::vector<int> l(n);
    for (int i = 0; i < n; ++i) {
      l[i] = rng() % 4 == 0;
      s[i] = static_cast<double>(rng() % 7) + 0.5 * l[i];  // heavy ties
    }
    l[0] = 1;
    l[1] = 0;
    SCOPED_TRACE(trial);
    EXPECT_NEAR(BruteRoc(s, l), RocAuc(s, l), 1e-12);
    EXPECT_NEAR(BruteAp(s, l), AveragePrecision(s, l), 1e-12);
  }
}

TEST(MetricsTest, ConfusionFlagsStrictlyAboveThreshold) {
  // Scores > 0.4 are flagged: 0.8(+) tp, 0.5(-) fp; 0.4(+) is not (fn),
  // 0.1(-) tn. P = 1/2, R = 1/2, F1 = 1/2.
  const Confusion c =
      ConfusionAt({0.1, 0.4, 0.5, 0.8}, {0, 1, 0, 1}, /*threshold=*/0.4);
  EXPECT_EQ(1, c.tp);
  EXPECT_EQ(1, c.fp);
  EXPECT_EQ(1, c.tn);
  EXPECT_EQ(1, c.fn);
  EXPECT_DOUBLE_EQ(0.5, c.precision());
  EXPECT_DOUBLE_EQ(0.5, c.recall());
  EXPECT_DOUBLE_EQ(0.5, c.f1());
}

TEST(MetricsTest, ConfusionDegenerateRatiosAreZero) {
  Confusion nothing_flagged = ConfusionAt({0.1, 0.2}, {1, 0}, 1.0);
  EXPECT_EQ(0.0, nothing_flagged.precision());
  EXPECT_EQ(0.0, nothing_flagged.recall());
  EXPECT_EQ(0.0, nothing_flagged.f1());
  Confusion no_positive = ConfusionAt({0.1, 0.2}, {0, 0}, 0.0);
  EXPECT_EQ(2, no_positive.fp);
  EXPECT_EQ(0.0, no_positive.recall());
  EXPECT_EQ(0.0, no_positive.f1());
}

TEST(MetricsTest, BestF1HandComputed) {
  struct Case {
    const char* name;
    std::vector<double> scores;
    std::vector<int> labels;
    double f1;
    double threshold;
  };
  const double kBelow01 = std::nextafter(0.1, -1.0);
  const std::vector<Case> cases = {
      // Cuts (descending 0.8+ 0.4- 0.35+ 0.1-; F1 = 2tp / (flagged + P)):
      // {0.8}: 2/3; {.8,.4}: 2/4; {.8,.4,.35}: 4/5; all: 4/6.
      // Best 0.8 flags score >= 0.35, i.e. score > 0.1.
      {"sklearn doc example", {0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}, 0.8, 0.1},
      // Perfect: flag {0.9, 0.8}: F1 = 1, threshold the next score 0.2.
      {"perfect", {0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}, 1.0, 0.2},
      // Inverted: only flagging everything reaches the positives:
      // cuts 0, 0, 2/5, 4/6. Threshold just below the lowest score.
      {"inverted", {0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}, 4.0 / 6.0, kBelow01},
      // All tied: one cut, everything: 2*2 / (4 + 2) = 2/3.
      {"all tied", {0.1, 0.1, 0.1, 0.1}, {1, 0, 0, 1}, 2.0 / 3.0, kBelow01},
      // Ties: descending 0.9+ {0.5+,0.5-} 0.2- 0.1-. Cuts: 2/3,
      // 4/5, 4/6, 4/7. Best: flag score >= 0.5, i.e. > 0.2.
      {"ties", {0.1, 0.5, 0.5, 0.9, 0.2}, {0, 1, 0, 1, 0}, 0.8, 0.2},
      // Descending 0.9+ 0.8- 0.7- 0.6+; cuts 2/3, 2/4, 2/5, 4/6: a tie
      // between flagging {0.9} and flagging all. The higher threshold wins.
      {"equal F1 keeps higher threshold",
       {0.9, 0.8, 0.7, 0.6},
       {1, 0, 0, 1},
       2.0 / 3.0,
       0.8},
      // No positive: F1 is 0 everywhere; nothing flagged (threshold = top).
      {"no positive", {0.1, 0.3, 0.2}, {0, 0, 0}, 0.0, 0.3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const BestF1 best = BestF1Score(c.scores, c.labels);
    EXPECT_NEAR(c.f1, best.f1, kTol);
    EXPECT_EQ(c.threshold, best.threshold);
    // The reported threshold reproduces the reported F1 under the
    // daemon's rule.
    EXPECT_NEAR(best.f1, ConfusionAt(c.scores, c.labels, best.threshold).f1(),
                kTol);
  }
}

TEST(MetricsTest, BestF1EmptyFlagsNothing) {
  const BestF1 best = BestF1Score({}, {});
  EXPECT_EQ(0.0, best.f1);
  EXPECT_EQ(std::numeric_limits<double>::infinity(), best.threshold);
}

TEST(MetricsTest, BestF1IsTheMaximumOverAllCuts) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 30; ++trial) {
    const int n = 10 + trial;
    std::vector<double> s(n);
    std::vector<int> l(n);
    for (int i = 0; i < n; ++i) {
      l[i] = rng() % 3 == 0;
      s[i] = static_cast<double>(rng() % 9) + 2.0 * l[i];
    }
    l[0] = 1;
    SCOPED_TRACE(trial);
    double brute = 0;
    for (double t : s) {
      brute = std::max(brute, ConfusionAt(s, l, t).f1());
      brute = std::max(brute, ConfusionAt(s, l, t - 0.5).f1());
    }
    const BestF1 best = BestF1Score(s, l);
    EXPECT_NEAR(brute, best.f1, kTol);
    EXPECT_NEAR(best.f1, ConfusionAt(s, l, best.threshold).f1(), kTol);
  }
}

}  // namespace
}  // namespace anomalyd
