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
  }
  *out = std::move(n);
  return Status::OK();
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
  *out = std::move(n);
  return Status::OK();
}

void Normaliser::ToProto(pb::NormaliserParams* params) const {
  params->set_kind(kind_);
  params->mutable_offset()->Assign(offset_.begin(), offset_.end());
  params->mutable_scale()->Assign(scale_.begin(), scale_.end());
}

void Normaliser::Apply(const float* in, float* out, size_t rows) const {
  const size_t d = dim();
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
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < d; ++j) {
      out[i * d + j] = in[i * d + j] * scale_[j] + offset_[j];
    }
  }
}

}  // namespace anomalyd
