// Threshold calibrators: turn a sample of scores of (mostly) normal records
// into the score above which a record is flagged. Pure functions of their
// input; thread-safe.
//
//  - QUANTILE: the (1 - contamination) empirical quantile (linear
//    interpolation between order statistics, as numpy's default).
//  - POT: peaks over threshold, the SPOT method of Siffer et al. (KDD 2017):
//    t = the `initial_quantile` empirical quantile; a generalised Pareto
//    distribution is fitted to the excesses over t by maximum likelihood
//    (Grimshaw's procedure); the threshold is the score exceeded with
//    probability `risk`:  t + sigma/gamma * ((risk * n / n_t)^(-gamma) - 1),
//    or t - sigma * log(risk * n / n_t) when gamma is ~0.
//  - FIXED: `fixed_value`, whatever the scores.
#ifndef ANOMALYD_MODEL_THRESHOLD_H_
#define ANOMALYD_MODEL_THRESHOLD_H_

#include <vector>

#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

struct ThresholdOptions {
  pb::ThresholdMethod method = pb::POT;
  double contamination = 0.01;     // QUANTILE: expected share of anomalies
  double risk = 1e-3;              // POT: probability of a false flag
  double initial_quantile = 0.98;  // POT: start of the tail
  double fixed_value = 0.0;        // FIXED
  // POT needs this many excesses over t to fit a tail; with fewer it falls
  // back to the empirical (1 - risk) quantile.
  int min_excesses = 10;
};

// Result of fitting a generalised Pareto distribution.
struct GpdFit {
  double gamma = 0.0;   // shape (xi)
  double sigma = 0.0;   // scale, > 0
};

// Empirical quantile of `values` (need not be sorted) at q in [0, 1], with
// linear interpolation. REQUIRES: !values.empty().
double Quantile(std::vector<double> values, double q);

// Maximum-likelihood fit of a GPD to `excesses` (all > 0) by Grimshaw's
// method. INVALID_ARGUMENT when fewer than 2 or any is not positive/finite.
Status FitGpd(const std::vector<double>& excesses, GpdFit* fit);

// Computes the threshold from `scores`. INVALID_ARGUMENT for an empty
// sample (except FIXED), a non-finite score, or options out of range
// (contamination and risk in (0, 1), initial_quantile in (0, 1)).
// On success fills *params (method, value, options used, sample_count).
Status ComputeThreshold(const ThresholdOptions& options,
                        const std::vector<double>& scores,
                        pb::ThresholdParams* params);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_THRESHOLD_H_
