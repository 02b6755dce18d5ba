#include "model/threshold.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>

namespace anomalyd {
namespace {

// Relative size |x| * mean(Y) below which a root of Grimshaw's equation is
// not searched for: there the equation's value is O(x^2) and drowns in
// rounding, and a root would give |gamma| of about this size, which the
// exponential candidate (gamma = 0) already represents.
constexpr double kMinRelativeRoot = 1e-4;
// Grid points per decade when bracketing roots: fine enough that two roots
// rarely share a cell, cheap enough for tens of thousands of excesses.
constexpr int kPointsPerDecade = 12;
// The search stops this close to the pole at x = -1/Y_max (as a fraction of
// 1/Y_max); beyond it gamma is so negative that the fit is meaningless.
constexpr double kPoleMargin = 1e-12;
// Cap on the decades the positive interval spans, whatever Y_min is.
constexpr double kMaxDecades = 30.0;

// The Grimshaw function w(x) = u(x) v(x) - 1 with u = 1 + mean(log(1 + xY)),
// v = mean(1 / (1 + xY)). The MLE of a GPD has x = gamma / sigma at a root.
double Grimshaw(const std::vector<double>& y, double x) {
  double sum_log = 0.0;
  double sum_inv = 0.0;
  for (double v : y) {
    const double s = x * v;
    sum_log += std::log1p(s);
    sum_inv += 1.0 / (1.0 + s);
  }
  const double n = static_cast<double>(y.size());
  return (1.0 + sum_log / n) * (sum_inv / n) - 1.0;
}

// Log-likelihood of a GPD(gamma, sigma) for the excesses `y`; -inf outside
// the support.
double LogLikelihood(const std::vector<double>& y, double gamma, double sigma) {
  const double n = static_cast<double>(y.size());
  if (!(sigma > 0.0)) return -std::numeric_limits<double>::infinity();
  if (gamma == 0.0) {
    double sum = 0.0;
    for (double v : y) sum += v;
    return -n * std::log(sigma) - sum / sigma;
  }
  double sum = 0.0;
  for (double v : y) {
    const double s = gamma * v / sigma;
    if (!(s > -1.0)) return -std::numeric_limits<double>::infinity();
    sum += std::log1p(s);
  }
  return -n * std::log(sigma) - (1.0 + 1.0 / gamma) * sum;
}

// Appends to *roots every root of w bracketed by consecutive `grid` points.
void FindRoots(const std::vector<double>& y, const std::vector<double>& grid,
               std::vector<double>* roots) {
  if (grid.empty()) return;
  double x0 = grid[0];
  double w0 = Grimshaw(y, x0);
  for (size_t i = 1; i < grid.size(); ++i) {
    const double x1 = grid[i];
    const double w1 = Grimshaw(y, x1);
    if (w0 == 0.0) {
      roots->push_back(x0);
    } else if (std::isfinite(w0) && std::isfinite(w1) &&
               (w0 < 0.0) != (w1 < 0.0) && w1 != 0.0) {
      // Bisection: w is smooth, but its scale varies over decades, so a
      // method that needs derivative estimates gains little here.
      double lo = x0, hi = x1, wlo = w0;
      for (int it = 0; it < 200 && std::fabs(hi - lo) > 1e-14 * std::fabs(lo);
           ++it) {
        const double mid = 0.5 * (lo + hi);
        const double wm = Grimshaw(y, mid);
        if (wm == 0.0) {
          lo = hi = mid;
          break;
        }
        if ((wm < 0.0) == (wlo < 0.0)) {
          lo = mid;
          wlo = wm;
        } else {
          hi = mid;
        }
      }
      roots->push_back(0.5 * (lo + hi));
    }
    x0 = x1;
    w0 = w1;
  }
}

// `count` points from a to b (both > 0), evenly spaced in log scale.
std::vector<double> LogSpace(double a, double b, int count) {
  std::vector<double> out;
  if (!(a > 0.0) || !(b > a) || count < 2) return out;
  const double la = std::log(a), lb = std::log(b);
  for (int i = 0; i < count; ++i) {
    out.push_back(std::exp(la + (lb - la) * i / (count - 1)));
  }
  return out;
}

int PointsFor(double a, double b) {
  const double decades = std::min(std::log10(b / a), kMaxDecades);
  return std::max(8, static_cast<int>(decades * kPointsPerDecade) + 2);
}

Status OptionError(const std::string& name, const std::string& rule,
                   double value) {
  return Status::InvalidArgument("threshold option '" + name + "' must be " +
                                 rule + ", got " + std::to_string(value));
}

bool InOpenUnit(double v) { return v > 0.0 && v < 1.0; }

}  // namespace

double Quantile(std::vector<double> values, double q) {
  assert(!values.empty());
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  const size_t n = values.size();
  // numpy's "linear" method: virtual index n*q + (1 - q) - 1 = (n - 1) q,
  // written as numpy writes it so that both round alike.
  const double h = static_cast<double>(n) * q + (1.0 - q) - 1.0;
  const double lo_d =
      std::clamp(std::floor(h), 0.0, static_cast<double>(n - 1));
  const size_t lo = static_cast<size_t>(lo_d);
  const double t = h - lo_d;
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double a = values[lo];
  if (lo + 1 >= n || t <= 0.0) return a;
  const double b = *std::min_element(values.begin() + lo + 1, values.end());
  // numpy's _lerp: interpolate from the nearer end, so t = 1 gives b exactly.
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

Status FitGpd(const std::vector<double>& excesses, GpdFit* fit) {
  if (excesses.size() < 2) {
    return Status::InvalidArgument("a GPD fit needs at least 2 excesses, got " +
                                   std::to_string(excesses.size()));
  }
  double ymin = std::numeric_limits<double>::infinity();
  double ymax = 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < excesses.size(); ++i) {
    const double v = excesses[i];
    if (!std::isfinite(v) || !(v > 0.0)) {
      return Status::InvalidArgument("excess " + std::to_string(i) + " (" +
                                     std::to_string(v) +
                                     ") is not positive and finite");
    }
    ymin = std::min(ymin, v);
    ymax = std::max(ymax, v);
    sum += v;
  }
  const double ymean = sum / static_cast<double>(excesses.size());

  // Grimshaw (1993): the roots other than x = 0 lie in (-1/Y_max, 0) and
  // (0, 2 (mean - Y_min) / Y_min^2].
  const double x_small = kMinRelativeRoot / ymean;
  std::vector<double> roots;
  {
    // Negative side, x = -t / Y_max for t in (t_small, 1): dense in log
    // scale both near 0 and near the pole at t = 1.
    const double t_small = x_small * ymax;
    std::vector<double> grid;
    if (t_small < 0.5) {
      for (double t : LogSpace(t_small, 0.5, PointsFor(t_small, 0.5))) {
        grid.push_back(-t / ymax);
      }
      std::vector<double> near_pole =
          LogSpace(kPoleMargin, 0.5, PointsFor(kPoleMargin, 0.5));
      for (size_t i = near_pole.size(); i-- > 1;) {  // 0.5 already in
        grid.push_back(-(1.0 - near_pole[i - 1]) / ymax);
      }
      std::reverse(grid.begin(), grid.end());  // ascending x
    }
    FindRoots(excesses, grid, &roots);
  }
  {
    double upper = 2.0 * (ymean - ymin) / (ymin * ymin);
    upper = std::min(upper, x_small * std::pow(10.0, kMaxDecades));
    FindRoots(excesses, LogSpace(x_small, upper, PointsFor(x_small, upper)),
              &roots);
  }

  // x = 0 is always a root: the exponential distribution, sigma = mean.
  GpdFit best{0.0, ymean};
  double best_ll = LogLikelihood(excesses, 0.0, ymean);
  const double n = static_cast<double>(excesses.size());
  for (double x : roots) {
    double sum_log = 0.0;
    for (double v : excesses) sum_log += std::log1p(x * v);
    const double gamma = sum_log / n;
    const double sigma = gamma / x;
    if (!std::isfinite(gamma) || !std::isfinite(sigma) || !(sigma > 0.0)) {
      continue;
    }
    const double ll = LogLikelihood(excesses, gamma, sigma);
    if (ll > best_ll) {
      best_ll = ll;
      best = GpdFit{gamma, sigma};
    }
  }
  *fit = best;
  return Status::OK();
}

Status ComputeThreshold(const ThresholdOptions& options,
                        const std::vector<double>& scores,
                        pb::ThresholdParams* params) {
  switch (options.method) {
    case pb::QUANTILE:
      if (!InOpenUnit(options.contamination)) {
        return OptionError("contamination", "in (0, 1)", options.contamination);
      }
      break;
    case pb::POT:
      if (!InOpenUnit(options.risk)) {
        return OptionError("risk", "in (0, 1)", options.risk);
      }
      if (!InOpenUnit(options.initial_quantile)) {
        return OptionError("initial_quantile", "in (0, 1)",
                           options.initial_quantile);
      }
      if (!(options.risk < 1.0 - options.initial_quantile)) {
        return OptionError("risk",
                           "below 1 - initial_quantile (" +
                               std::to_string(1.0 - options.initial_quantile) +
                               ")",
                           options.risk);
      }
      if (options.min_excesses < 2) {
        return OptionError("min_excesses", "at least 2", options.min_excesses);
      }
      break;
    case pb::FIXED:
      if (!std::isfinite(options.fixed_value)) {
        return OptionError("fixed_value", "finite", options.fixed_value);
      }
      break;
    default:
      return Status::InvalidArgument(
          "threshold option 'method' is unknown: " +
          std::to_string(static_cast<int>(options.method)));
  }

  if (options.method != pb::FIXED) {
    if (scores.empty()) {
      return Status::InvalidArgument("no scores to compute a threshold from");
    }
    for (size_t i = 0; i < scores.size(); ++i) {
      if (!std::isfinite(scores[i])) {
        return Status::InvalidArgument("score " + std::to_string(i) + " (" +
                                       std::to_string(scores[i]) +
                                       ") is not finite");
      }
    }
  }
  params->Clear();
  params->set_method(options.method);
  params->set_sample_count(scores.size());
  if (options.method == pb::FIXED) {
    params->set_value(options.fixed_value);
    return Status::OK();
  }
  if (options.method == pb::QUANTILE) {
    params->set_contamination(options.contamination);
    params->set_value(Quantile(scores, 1.0 - options.contamination));
    return Status::OK();
  }

  params->set_risk(options.risk);
  params->set_initial_quantile(options.initial_quantile);
  const double t = Quantile(scores, options.initial_quantile);
  std::vector<double> excesses;
  for (double s : scores) {
    if (s > t) excesses.push_back(s - t);
  }
  const double n = static_cast<double>(scores.size());
  const double n_t = static_cast<double>(excesses.size());
  // r < 1 is the tail probability beyond the threshold relative to the
  // probability beyond t; r >= 1 would put the threshold at or below t,
  // which the tail model says nothing about.
  const double r = options.risk * n / n_t;
  double value = std::numeric_limits<double>::quiet_NaN();
  GpdFit fit;
  if (excesses.size() >= static_cast<size_t>(options.min_excesses) && r < 1.0 &&
      FitGpd(excesses, &fit).ok()) {
    // sigma/gamma * (r^-gamma - 1), through expm1 so that it tends to
    // -sigma * log(r) smoothly as gamma -> 0.
    value =
        fit.gamma == 0.0
            ? t - fit.sigma * std::log(r)
            : t + fit.sigma * std::expm1(-fit.gamma * std::log(r)) / fit.gamma;
  }
  if (!std::isfinite(value)) value = Quantile(scores, 1.0 - options.risk);
  params->set_value(value);
  return Status::OK();
}

}  // namespace anomalyd
