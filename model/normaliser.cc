#include "model/normaliser.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace anomalyd {
namespace {

// A spread below this, relative to the feature's magnitude, is treated as
// zero: float rounding alone produces spreads around 1e-7 of the value.
constexpr double kRelativeSpreadEpsilon = 1e-6;
constexpr double kAbsoluteSpreadEpsilon = 1e-12;

bool IsZeroSpread(double spread, double magnitude) {
  return !(spread > kAbsoluteSpreadEpsilon &&
           spread > kRelativeSpreadEpsilon * magnitude);
}

// Quantile with linear interpolation of a sorted column.
double SortedQuantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// The standard normal's quantile function: Acklam's rational approximation
// (relative error 1.2e-9), then one Halley step against erfc.
double InverseNormalCdf(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                             -2.759285104469687e+02, 1.383577518672690e+02,
                             -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                             -1.556989798598866e+02, 6.680131188771972e+01,
                             -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                             -2.400758277161838e+00, -2.549732539343734e+00,
                             4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                             2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  auto tail = [&](double q) {
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  };
  double x;
  if (p < kLow) {
    x = tail(std::sqrt(-2 * std::log(p)));
  } else if (p <= 1 - kLow) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    x = -tail(std::sqrt(-2 * std::log1p(-p)));
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

// Linear interpolation through knots (xs strictly increasing), and beyond
// the first and last knot with slope `slope`.
double Interpolate(const float* xs, const float* ys, size_t m, double x,
                   double slope) {
  if (m == 1 || x <= xs[0]) return ys[0] + (x - xs[0]) * slope;
  if (x >= xs[m - 1]) return ys[m - 1] + (x - xs[m - 1]) * slope;
  const size_t i = static_cast<size_t>(std::upper_bound(xs, xs + m, x) - xs);
  return ys[i - 1] + (x - xs[i - 1]) * (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1]);
}

bool StrictlyIncreasing(const float* v, size_t m) {
  for (size_t i = 0; i < m; ++i) {
    if (!std::isfinite(v[i]) || (i > 0 && !(v[i] > v[i - 1]))) return false;
  }
  return true;
}

void MeanStd(const std::vector<double>& col, double* mean, double* sd) {
  double sum = 0;
  for (double v : col) sum += v;
  *mean = sum / static_cast<double>(col.size());
  double ss = 0;
  for (double v : col) ss += (v - *mean) * (v - *mean);
  *sd = std::sqrt(ss / static_cast<double>(col.size()));
}

}  // namespace

Status Normaliser::Fit(const Matrix& data, pb::NormaliserKind kind,
                       Normaliser* out) {
  if (data.rows == 0 || data.cols == 0) {
    return Status::InvalidArgument("cannot fit a normaliser on no data");
  }
  Normaliser n;
  n.kind_ = kind;
  n.offset_.resize(data.cols);
  n.scale_.resize(data.cols);
  if (kind == pb::QUANTILE_NORMAL) n.knot_begin_.push_back(0);
  std::vector<double> col(data.rows);
  for (size_t j = 0; j < data.cols; ++j) {
    for (size_t i = 0; i < data.rows; ++i) {
      col[i] = data.at(i, j);
      if (!std::isfinite(col[i])) {
        return Status(pb::NON_FINITE, "row " + std::to_string(i) +
                                          ", feature " + std::to_string(j) +
                                          " is not finite");
      }
    }
    double offset = 0, spread = 0, mean = 0, sd = 0;
    MeanStd(col, &mean, &sd);
    switch (kind) {
      case pb::MINMAX: {
        auto [mn, mx] = std::minmax_element(col.begin(), col.end());
        offset = *mn;
        spread = *mx - *mn;
        break;
      }
      case pb::ROBUST: {
        std::sort(col.begin(), col.end());
        offset = SortedQuantile(col, 0.5);
        spread = (SortedQuantile(col, 0.75) - SortedQuantile(col, 0.25)) /
                 1.349;
        if (IsZeroSpread(spread, std::fabs(offset))) spread = sd;
        break;
      }
      default:
        offset = mean;
        spread = sd;
        break;
    }
    const double magnitude = std::max(std::fabs(offset), std::fabs(mean));
    n.offset_[j] = static_cast<float>(offset);
    n.scale_[j] = IsZeroSpread(spread, magnitude) ? 1.0f
                                                  : static_cast<float>(spread);
    if (kind == pb::QUANTILE_NORMAL) {
      std::sort(col.begin(), col.end());
      n.FitKnots(col);
    }
  }
  *out = std::move(n);
  return Status::OK();
}

void Normaliser::FitKnots(std::vector<double>& sorted) {
  const double rows = static_cast<double>(sorted.size());
  std::vector<double> value, z, count;
  for (size_t first = 0; first < sorted.size();) {
    size_t end = first;
    while (end < sorted.size() && sorted[end] == sorted[first]) ++end;
    count.push_back(static_cast<double>(end - first));
    const double mid = (static_cast<double>(first) + 0.5 * count.back()) / rows;
    value.push_back(sorted[first]);
    z.push_back(InverseNormalCdf(mid));
    first = end;
  }
  // Then standardised over the training rows: with ties (a column of few
  // distinct values) the quantiles' spread is far from 1, and every feature
  // should weigh alike in the squared error. The tail slope follows.
  double mean = 0, var = 0;
  for (size_t k = 0; k < z.size(); ++k) mean += count[k] * z[k] / rows;
  for (size_t k = 0; k < z.size(); ++k) var += count[k] * (z[k] - mean) * (z[k] - mean) / rows;
  const double sd = var > 1e-12 ? std::sqrt(var) : 1.0;
  for (double& v : z) v = (v - mean) / sd;
  scale_[knot_begin_.size() - 1] *= static_cast<float>(sd);
  // Thin to kMaxKnots evenly spaced knots, the extremes kept; drop any that
  // float rounding made equal to its predecessor.
  const size_t m = value.size();
  const size_t keep = std::min(m, kMaxKnots);
  for (size_t k = 0; k < keep; ++k) {
    const size_t i = keep == 1 ? 0 : k * (m - 1) / (keep - 1);
    const float v = static_cast<float>(value[i]), q = static_cast<float>(z[i]);
    if (k > 0 && !(v > knot_value_.back() && q > knot_z_.back())) continue;
    knot_value_.push_back(v);
    knot_z_.push_back(q);
  }
  knot_begin_.push_back(static_cast<uint32_t>(knot_value_.size()));
}

void Normaliser::ApplyQuantileRow(const float* in, float* out) const {
  // The last knot at or below each value, found for up to kLanes features
  // at once with masked steps: written with branches, the search
  // mispredicted half the time, and one feature at a time it waited on
  // each load (3.3 us, then 2.2 us a 38-feature row).
  constexpr size_t kLanes = 8;
  const size_t d = dim();
  for (size_t j0 = 0; j0 < d; j0 += kLanes) {
    const size_t lanes = std::min(kLanes, d - j0);
    const float* xs[kLanes];
    size_t len[kLanes], at[kLanes], longest = 0;
    for (size_t k = 0; k < lanes; ++k) {
      xs[k] = knot_value_.data() + knot_begin_[j0 + k];
      len[k] = knot_begin_[j0 + k + 1] - knot_begin_[j0 + k];
      at[k] = 0;
      longest = std::max(longest, len[k]);
    }
    for (size_t span = longest; span > 1; span -= span / 2) {
      for (size_t k = 0; k < lanes; ++k) {
        const size_t half = len[k] / 2;
        const size_t go = static_cast<size_t>(xs[k][at[k] + half] <= in[j0 + k]);
        at[k] += half & (size_t{0} - go);
        len[k] -= half;
      }
    }
    for (size_t k = 0; k < lanes; ++k) {
      const size_t j = j0 + k, b = knot_begin_[j], m = knot_begin_[j + 1] - b;
      const float* zs = knot_z_.data() + b;
      const double x = in[j];
      double z;
      if (m == 1 || x <= xs[k][0]) {
        z = zs[0] + (x - xs[k][0]) / scale_[j];
      } else if (x >= xs[k][m - 1]) {
        z = zs[m - 1] + (x - xs[k][m - 1]) / scale_[j];
      } else {
        const size_t i = at[k];
        z = zs[i] + (x - xs[k][i]) * (zs[i + 1] - zs[i]) / (xs[k][i + 1] - xs[k][i]);
      }
      out[j] = static_cast<float>(std::clamp<double>(z, -kClip, kClip));
    }
  }
}

double Normaliser::Backward(size_t j, double z) const {
  const size_t b = knot_begin_[j], m = knot_begin_[j + 1] - b;
  return Interpolate(knot_z_.data() + b, knot_value_.data() + b, m, z,
                     scale_[j]);
}

Status Normaliser::FromProto(const pb::NormaliserParams& params, size_t dim,
                             Normaliser* out) {
  if (static_cast<size_t>(params.offset_size()) != dim ||
      static_cast<size_t>(params.scale_size()) != dim) {
    return Status::Corrupt("normaliser has " +
                           std::to_string(params.offset_size()) + "/" +
                           std::to_string(params.scale_size()) +
                           " parameters for " + std::to_string(dim) +
                           " features");
  }
  Normaliser n;
  n.kind_ = params.kind();
  n.offset_.assign(params.offset().begin(), params.offset().end());
  n.scale_.assign(params.scale().begin(), params.scale().end());
  for (size_t j = 0; j < dim; ++j) {
    if (!std::isfinite(n.offset_[j]) || !std::isfinite(n.scale_[j]) ||
        !(n.scale_[j] > 0)) {
      return Status::Corrupt("normaliser parameter " + std::to_string(j) +
                             " is not usable");
    }
  }
  if (n.kind_ == pb::QUANTILE_NORMAL) {
    if (static_cast<size_t>(params.knot_count_size()) != dim ||
        params.knot_value_size() != params.knot_z_size()) {
      return Status::Corrupt("quantile normaliser knots do not match " +
                             std::to_string(dim) + " features");
    }
    n.knot_begin_.push_back(0);
    for (size_t j = 0; j < dim; ++j) {
      const uint64_t begin = n.knot_begin_.back();
      const uint64_t count = params.knot_count(static_cast<int>(j));
      if (count == 0 || begin + count > static_cast<uint64_t>(params.knot_value_size()) ||
          !StrictlyIncreasing(params.knot_value().data() + begin, count) ||
          !StrictlyIncreasing(params.knot_z().data() + begin, count)) {
        return Status::Corrupt("quantile knots of feature " + std::to_string(j) +
                               " are not usable");
      }
      n.knot_begin_.push_back(static_cast<uint32_t>(begin + count));
    }
    if (n.knot_begin_.back() != static_cast<uint32_t>(params.knot_value_size())) {
      return Status::Corrupt("quantile normaliser has knots left over");
    }
    n.knot_value_.assign(params.knot_value().begin(), params.knot_value().end());
    n.knot_z_.assign(params.knot_z().begin(), params.knot_z().end());
  }
  *out = std::move(n);
  return Status::OK();
}

void Normaliser::ToProto(pb::NormaliserParams* params) const {
  params->set_kind(kind_);
  params->mutable_offset()->Assign(offset_.begin(), offset_.end());
  params->mutable_scale()->Assign(scale_.begin(), scale_.end());
  params->clear_knot_count();
  for (size_t j = 0; j + 1 < knot_begin_.size(); ++j) {
    params->add_knot_count(knot_begin_[j + 1] - knot_begin_[j]);
  }
  params->mutable_knot_value()->Assign(knot_value_.begin(), knot_value_.end());
  params->mutable_knot_z()->Assign(knot_z_.begin(), knot_z_.end());
}

void Normaliser::Apply(const float* in, float* out, size_t rows) const {
  const size_t d = dim();
  if (!affine()) {
    // `in` and `out` may alias: then row by row through a copy.
    std::vector<float> row(in == out ? d : 0);
    for (size_t i = 0; i < rows; ++i) {
      const float* from = in + i * d;
      if (in == out) from = std::copy_n(from, d, row.data()) - d;
      ApplyQuantileRow(from, out + i * d);
    }
    return;
  }
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < d; ++j) {
      // Divide in double: (1e38 - (-1e38)) overflows float before the clip.
      const double z =
          (static_cast<double>(in[i * d + j]) - offset_[j]) / scale_[j];
      out[i * d + j] = static_cast<float>(std::clamp<double>(z, -kClip, kClip));
    }
  }
}

void Normaliser::Invert(const float* in, float* out, size_t rows) const {
  const size_t d = dim();
  if (!affine()) {
    for (size_t i = 0; i < rows * d; ++i) {
      out[i] = static_cast<float>(Backward(i % d, in[i]));
    }
    return;
  }
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < d; ++j) {
      out[i * d + j] = in[i * d + j] * scale_[j] + offset_[j];
    }
  }
}

}  // namespace anomalyd
