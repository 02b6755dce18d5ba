// Detection metrics against labels (1 = anomaly), for `anomalyctl eval` and
// bench/quality. Higher score = more anomalous; a label other than 0 counts
// as an anomaly. Scores should be finite: a NaN score ranks with -inf (and
// ConfusionAt never flags it). Pure functions; thread-safe.
#ifndef ANOMALYD_MODEL_METRICS_H_
#define ANOMALYD_MODEL_METRICS_H_

#include <vector>

namespace anomalyd {

// Area under the ROC curve; tied scores count one half (Mann-Whitney with
// mid-ranks). Returns NaN when either class is absent.
// REQUIRES: scores.size() == labels.size().
double RocAuc(const std::vector<double>& scores,
              const std::vector<int>& labels);

// Average precision (area under the precision-recall curve as
// scikit-learn's average_precision_score computes it: sum over distinct
// thresholds of (R_k - R_{k-1}) * P_k, tied scores entering together).
// Returns NaN when there is no positive.
// REQUIRES: scores.size() == labels.size().
double AveragePrecision(const std::vector<double>& scores,
                        const std::vector<int>& labels);

struct Confusion {
  long tp = 0, fp = 0, tn = 0, fn = 0;
  double precision() const;  // 0 when nothing is flagged
  double recall() const;     // 0 when there is no positive
  double f1() const;         // 0 when precision + recall is 0
};

// Counts with flagged = score > threshold (the daemon's rule).
// REQUIRES: scores.size() == labels.size().
Confusion ConfusionAt(const std::vector<double>& scores,
                      const std::vector<int>& labels, double threshold);

struct BestF1 {
  double f1 = 0.0;
  double threshold = 0.0;  // flag when score > threshold
};

// The best F1 over every cut between distinct scores, flagging everything
// included. The threshold reproduces the chosen cut under ConfusionAt: it is
// the next lower distinct score, or the double just below the lowest score
// when everything is flagged. Ties in F1 go to the higher threshold. With no
// positive F1 is 0 and the threshold the highest score (nothing flagged);
// with no score, 0 and +inf. REQUIRES: scores.size() == labels.size().
BestF1 BestF1Score(const std::vector<double>& scores,
                   const std::vector<int>& labels);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_METRICS_H_
