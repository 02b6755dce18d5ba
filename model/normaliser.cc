#include "model/normaliser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// Which features "auto" gives the quantile map (bench/RESULTS.md, rounds 5
// and 6). It evens out columns whose standard deviation misdescribes the
// normal rows; it is avoided elsewhere because it squeezes the sparse
// stretches between common values, and in a bounded, skewed column (pixel
// intensities, proportions) anomalies sit in those stretches.
//
// Heavy tails: excess kurtosis above that of a Laplace distribution (3),
// where a few values would dominate a standard-scaled squared error.
constexpr double kHeavyTailKurtosis = 3.0;
// A point mass: more than half the rows share one value (a counter that is
// usually 0). The standard deviation then measures how often the feature
// leaves that value, not how far, and the spread of the other values is
// lost; the map ranks them among themselves. (Not for a two-valued feature:
// on its two values both maps give the same standardised numbers.)
constexpr double kPointMassShare = 0.5;

bool WantsQuantileMap(const std::vector<double>& sorted, double mean,
                      double sd) {
  if (!(sd > 0)) return false;
  double m4 = 0;
  for (double v : sorted) {
    const double t = (v - mean) / sd;
    m4 += t * t * t * t;
  }
  const double rows = static_cast<double>(sorted.size());
  if (m4 / rows - 3.0 > kHeavyTailKurtosis) return true;
  size_t distinct = 0, largest = 0;
  for (size_t first = 0; first < sorted.size(); ++distinct) {
    size_t end = first;
    while (end < sorted.size() && sorted[end] == sorted[first]) ++end;
    largest = std::max(largest, end - first);
    first = end;
  }
  return distinct > 2 && static_cast<double>(largest) > kPointMassShare * rows;
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
  if (HasKnots(kind)) n.knot_begin_.push_back(0);
  bool any_mapped = false;
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
    if (HasKnots(kind)) {
      std::sort(col.begin(), col.end());
      if (kind == pb::QUANTILE_NORMAL || WantsQuantileMap(col, mean, sd)) {
        any_mapped = true;
        n.FitKnots(col);
      } else {
        n.FitLinearKnots(col.front(), col.back(), mean);
      }
    }
  }
  if (kind == pb::AUTO_QUANTILE && !any_mapped) {
    // No feature mapped: plain standard scaling, which scores on a GPU
    // without the host-side knot search.
    n.kind_ = pb::STANDARD;
    n.knot_begin_.clear();
    n.knot_value_.clear();
    n.knot_z_.clear();
  }
  if (HasKnots(n.kind_)) n.DeriveSlopes();
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

namespace {

// Block of rows whose values of one feature are searched together.
constexpr size_t kBlock = 64;

// One feature's knots: values xs and normal quantiles zs (m >= 1, both
// strictly increasing) and slope[i] from knot i to i + 1, the last being
// the tail's (also used below the first knot).
struct Knots {
  const float* xs;
  const float* zs;
  const float* slope;
  size_t m;
  float tail;
};

// z[r] for kBlock values x[r]: the last knot i with xs[i] <= x (0 when
// none), then linear from it. Every lane takes the same ceil(log2 m) masked
// steps: written with branches, the search mispredicted half the time.
// Float arithmetic in the same order as the AVX2 version, so both give the
// same bits.
void MapPortable(const Knots& k, const float* x, float* z) {
  uint32_t at[kBlock] = {};
  for (size_t len = k.m; len > 1; len -= len / 2) {
    const uint32_t half = static_cast<uint32_t>(len / 2);
    for (size_t r = 0; r < kBlock; ++r) {
      const uint32_t go = static_cast<uint32_t>(k.xs[at[r] + half] <= x[r]);
      at[r] += half & (0u - go);
    }
  }
  for (size_t r = 0; r < kBlock; ++r) {
    const float slope = x[r] < k.xs[0] ? k.tail : k.slope[at[r]];
    const float v = k.zs[at[r]] + (x[r] - k.xs[at[r]]) * slope;
    z[r] = std::min(std::max(v, -Normaliser::kClip), Normaliser::kClip);
  }
}

#if defined(__x86_64__)
// The same for the first n values (rounded up to 8), 8 lanes a gather; four
// independent chains in flight hide the gather's latency. No FMA: the
// portable version's rounding.
__attribute__((target("avx2"))) void MapAvx2(const Knots& k, const float* x,
                                             size_t n, float* z) {
  const __m256 first = _mm256_set1_ps(k.xs[0]), tail = _mm256_set1_ps(k.tail);
  const __m256 hi = _mm256_set1_ps(Normaliser::kClip);
  const __m256 lo = _mm256_set1_ps(-Normaliser::kClip);
  for (size_t r0 = 0; r0 < n; r0 += 32) {
    const int chains = static_cast<int>(std::min<size_t>(4, (n - r0 + 7) / 8));
    __m256 v[4];
    __m256i a[4];
    for (int c = 0; c < chains; ++c) {
      v[c] = _mm256_loadu_ps(x + r0 + 8 * c);
      a[c] = _mm256_setzero_si256();
    }
    for (size_t len = k.m; len > 1; len -= len / 2) {
      const __m256i half = _mm256_set1_epi32(static_cast<int>(len / 2));
      for (int c = 0; c < chains; ++c) {
        const __m256 g = _mm256_i32gather_ps(k.xs, _mm256_add_epi32(a[c], half), 4);
        const __m256i go = _mm256_castps_si256(_mm256_cmp_ps(g, v[c], _CMP_LE_OQ));
        a[c] = _mm256_add_epi32(a[c], _mm256_and_si256(go, half));
      }
    }
    for (int c = 0; c < chains; ++c) {
      const __m256 below = _mm256_cmp_ps(v[c], first, _CMP_LT_OQ);
      const __m256 slope =
          _mm256_blendv_ps(_mm256_i32gather_ps(k.slope, a[c], 4), tail, below);
      const __m256 d = _mm256_sub_ps(v[c], _mm256_i32gather_ps(k.xs, a[c], 4));
      const __m256 out =
          _mm256_add_ps(_mm256_i32gather_ps(k.zs, a[c], 4), _mm256_mul_ps(d, slope));
      _mm256_storeu_ps(z + r0 + 8 * c, _mm256_min_ps(_mm256_max_ps(out, lo), hi));
    }
  }
}

bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

}  // namespace

void Normaliser::ApplyQuantile(const float* in, float* out, size_t rows,
                               size_t out_stride) const {
  // Feature by feature over blocks of rows, so that one feature's knots stay
  // in L1 while every row of the block searches them (row by row, 38
  // features' tables of up to 12 KB each did not fit, and most of the time
  // went to waiting on loads).
  const size_t d = dim();
  float x[kBlock], z[kBlock];
  for (size_t i0 = 0; i0 < rows; i0 += kBlock) {
    const size_t n = std::min(kBlock, rows - i0);
    for (size_t j = 0; j < d; ++j) {
      const size_t b = knot_begin_[j];
      const Knots k{knot_value_.data() + b, knot_z_.data() + b,
                    knot_slope_.data() + b, knot_begin_[j + 1] - b,
                    knot_slope_[knot_begin_[j + 1] - 1]};
      for (size_t r = 0; r < kBlock; ++r) x[r] = r < n ? in[(i0 + r) * d + j] : k.xs[0];
#if defined(__x86_64__)
      if (!portable_search_ && CpuHasAvx2()) {
        MapAvx2(k, x, n, z);
      } else {
        MapPortable(k, x, z);
      }
#else
      MapPortable(k, x, z);
#endif
      for (size_t r = 0; r < n; ++r) out[(i0 + r) * out_stride + j] = z[r];
    }
  }
}

void Normaliser::FitLinearKnots(double lo, double hi, double mean) {
  // Standard scaling as knots: the training extremes, in between and beyond
  // them slope 1 / scale.
  const double scale = scale_[knot_begin_.size() - 1];
  for (double v : {lo, hi}) {
    const float x = static_cast<float>(v);
    const float z = static_cast<float>((v - mean) / scale);
    if (knot_value_.size() > knot_begin_.back() &&
        !(x > knot_value_.back() && z > knot_z_.back())) {
      continue;
    }
    knot_value_.push_back(x);
    knot_z_.push_back(z);
  }
  knot_begin_.push_back(static_cast<uint32_t>(knot_value_.size()));
}

void Normaliser::DeriveSlopes() {
  knot_slope_.assign(knot_value_.size(), 0.0f);
  for (size_t j = 0; j + 1 < knot_begin_.size(); ++j) {
    const size_t b = knot_begin_[j], e = knot_begin_[j + 1];
    for (size_t i = b; i + 1 < e; ++i) {
      // Capped at the largest float: knots a denormal apart would give an
      // infinite slope, and 0 * inf at the knot itself a NaN.
      knot_slope_[i] = static_cast<float>(std::min<double>(
          (static_cast<double>(knot_z_[i + 1]) - knot_z_[i]) /
              (static_cast<double>(knot_value_[i + 1]) - knot_value_[i]),
          std::numeric_limits<float>::max()));
    }
    knot_slope_[e - 1] = static_cast<float>(1.0 / scale_[j]);
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
  if (HasKnots(n.kind_)) {
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
    n.DeriveSlopes();
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

void Normaliser::Apply(const float* in, float* out, size_t rows,
                       size_t out_stride) const {
  const size_t d = dim();
  if (out_stride == 0) out_stride = d;
  if (!affine()) {
    ApplyQuantile(in, out, rows, out_stride);
    return;
  }
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < d; ++j) {
      // Divide in double: (1e38 - (-1e38)) overflows float before the clip.
      const double z =
          (static_cast<double>(in[i * d + j]) - offset_[j]) / scale_[j];
      out[i * out_stride + j] =
          static_cast<float>(std::clamp<double>(z, -kClip, kClip));
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
