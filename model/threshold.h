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

// Default: QUANTILE at 1% of the holdout. Measured on the shared labelled
// sets (bench/quality.sh), the 0.99 holdout quantile reaches 88% of the best
// F1 on average, while POT at risk 1e-3 reached 62%: a few hundred holdout
// scores cannot support extrapolating that far into the tail, and a 1e-3
// false-flag rate misses most anomalies that sit just above the normal
// range. POT remains the choice for explicit small risks on large holdouts.
struct ThresholdOptions {
  pb::ThresholdMethod method = pb::QUANTILE;
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
  double gamma = 0.0;  // shape (xi)
  double sigma = 0.0;  // scale, > 0
};

// Empirical quantile of `values` (need not be sorted) at q in [0, 1], with
// linear interpolation. REQUIRES: !values.empty().
double Quantile(std::vector<double> values, double q);

// Maximum-likelihood fit of a GPD to `excesses` (all > 0) by Grimshaw's
// method, as in SPOT: the roots x = gamma/sigma of Grimshaw's equation are
// bracketed on a log-spaced grid over (-1/Y_max, 0) and
// (0, 2 (mean - Y_min) / Y_min^2] and refined by bisection; each gives
// gamma = mean(log(1 + x Y)), sigma = gamma / x, and the candidate with the
// highest log-likelihood wins, the exponential (gamma = 0, sigma = mean)
// included, so data with no root get the exponential fit. Roots with
// |gamma| below about 1e-4 are not searched for (the exponential stands in).
// Costs O(n) per grid point: some hundreds of passes over the excesses.
// INVALID_ARGUMENT when fewer than 2 or any is not positive/finite.
Status FitGpd(const std::vector<double>& excesses, GpdFit* fit);

// Computes the threshold from `scores`. INVALID_ARGUMENT, with a message
// naming the option, for options of the chosen method out of range:
// QUANTILE: contamination in (0, 1); POT: risk and initial_quantile in
// (0, 1), risk < 1 - initial_quantile, min_excesses >= 2; FIXED: a finite
// fixed_value; an unknown method. Options of other methods are not looked
// at. INVALID_ARGUMENT also for an empty sample or a non-finite score
// (QUANTILE and POT; FIXED ignores the scores). POT falls back to the
// empirical (1 - risk) quantile when there are fewer than min_excesses
// excesses over t (ties at t leave few), when risk * n / n_t >= 1, or when
// the extrapolated value is not finite. On success clears and fills
// *params: method, value, sample_count = scores.size(), and the options the
// method used (contamination, or risk and initial_quantile; others 0).
// On failure *params is untouched.
Status ComputeThreshold(const ThresholdOptions& options,
                        const std::vector<double>& scores,
                        pb::ThresholdParams* params);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_THRESHOLD_H_
