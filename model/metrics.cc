#include "model/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace anomalyd {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// NaN scores rank with -inf (least anomalous): std::sort needs a strict weak
// order, which raw NaN comparisons are not.
double Key(double s) { return std::isnan(s) ? -kInf : s; }

// Indices of `scores` ordered by descending score.
std::vector<size_t> OrderDescending(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&scores](size_t a, size_t b) {
    return Key(scores[a]) > Key(scores[b]);
  });
  return order;
}

long CountPositives(const std::vector<int>& labels) {
  return static_cast<long>(std::count_if(labels.begin(), labels.end(),
                                         [](int l) { return l != 0; }));
}

}  // namespace

double RocAuc(const std::vector<double>& scores,
              const std::vector<int>& labels) {
  assert(scores.size() == labels.size());
  const long n = static_cast<long>(scores.size());
  const long pos = CountPositives(labels);
  const long neg = n - pos;
  if (pos == 0 || neg == 0) return kNaN;
  // Mann-Whitney U: sum of the positives' ascending mid-ranks, less the
  // smallest possible sum. Walking the descending order, a tie group
  // occupying descending positions [i, j) has ascending ranks n-j+1 .. n-i,
  // whose mean is n - (i + j - 1) / 2.
  const std::vector<size_t> order = OrderDescending(scores);
  double rank_sum = 0.0;
  for (long i = 0; i < n;) {
    long j = i;
    long group_pos = 0;
    while (j < n && Key(scores[order[j]]) == Key(scores[order[i]])) {
      if (labels[order[j]] != 0) ++group_pos;
      ++j;
    }
    const double mid_rank = static_cast<double>(n) - (i + j - 1) / 2.0;
    rank_sum += group_pos * mid_rank;
    i = j;
  }
  const double u = rank_sum - static_cast<double>(pos) * (pos + 1) / 2.0;
  return u / (static_cast<double>(pos) * static_cast<double>(neg));
}

double AveragePrecision(const std::vector<double>& scores,
                        const std::vector<int>& labels) {
  assert(scores.size() == labels.size());
  const long n = static_cast<long>(scores.size());
  const long pos = CountPositives(labels);
  if (pos == 0) return kNaN;
  const std::vector<size_t> order = OrderDescending(scores);
  double ap = 0.0;
  long tp = 0;
  long prev_tp = 0;
  for (long i = 0; i < n;) {
    long j = i;
    while (j < n && Key(scores[order[j]]) == Key(scores[order[i]])) {
      if (labels[order[j]] != 0) ++tp;
      ++j;
    }
    // Threshold at this group: j records flagged, tp of them positive.
    const double precision = static_cast<double>(tp) / static_cast<double>(j);
    ap += static_cast<double>(tp - prev_tp) / static_cast<double>(pos) *
          precision;
    prev_tp = tp;
    i = j;
  }
  return ap;
}

double Confusion::precision() const {
  return tp + fp == 0 ? 0.0 : static_cast<double>(tp) / (tp + fp);
}

double Confusion::recall() const {
  return tp + fn == 0 ? 0.0 : static_cast<double>(tp) / (tp + fn);
}

double Confusion::f1() const {
  const double p = precision();
  const double r = recall();
  return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r);
}

Confusion ConfusionAt(const std::vector<double>& scores,
                      const std::vector<int>& labels, double threshold) {
  assert(scores.size() == labels.size());
  Confusion c;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool flagged = scores[i] > threshold;
    const bool positive = labels[i] != 0;
    if (flagged) {
      ++(positive ? c.tp : c.fp);
    } else {
      ++(positive ? c.fn : c.tn);
    }
  }
  return c;
}

BestF1 BestF1Score(const std::vector<double>& scores,
                   const std::vector<int>& labels) {
  assert(scores.size() == labels.size());
  BestF1 best;
  const long n = static_cast<long>(scores.size());
  if (n == 0) {
    best.threshold = kInf;
    return best;
  }
  const std::vector<size_t> order = OrderDescending(scores);
  // Flagging nothing: F1 is 0, the threshold the top score.
  best.threshold = Key(scores[order[0]]);
  const long pos = CountPositives(labels);
  if (pos == 0) return best;
  long tp = 0;
  for (long i = 0; i < n;) {
    long j = i;
    const double group_score = Key(scores[order[i]]);
    while (j < n && Key(scores[order[j]]) == group_score) {
      if (labels[order[j]] != 0) ++tp;
      ++j;
    }
    // Flag the j records with score >= group_score: F1 = 2tp / (flagged + P).
    const double f1 = 2.0 * tp / static_cast<double>(j + pos);
    if (f1 > best.f1) {
      best.f1 = f1;
      // score > next lower distinct score <=> score >= group_score.
      best.threshold =
          j < n ? Key(scores[order[j]]) : std::nextafter(group_score, -kInf);
    }
    i = j;
  }
  return best;
}

}  // namespace anomalyd
