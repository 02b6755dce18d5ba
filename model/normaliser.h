// Normaliser: per-feature scaling fitted on the baseline and stored in the
// bundle, so that clients send raw values and the model sees (x - offset) /
// scale, or for the quantile kinds a piecewise-linear map through per-feature
// knots. Immutable after Fit/FromProto; thread-safe to share.
#ifndef ANOMALYD_MODEL_NORMALISER_H_
#define ANOMALYD_MODEL_NORMALISER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/matrix.h"
#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

class Normaliser {
 public:
  // Normalised values are clipped to +-kClip: a finite but absurd raw value
  // (1e38) must not overflow float arithmetic downstream and turn a score
  // into Inf. 1e6 standard deviations is far beyond anything "normal".
  static constexpr float kClip = 1e6f;

  Normaliser() = default;

  // Fits per-feature parameters on `data` (rows x d, rows >= 1):
  //  STANDARD: mean / standard deviation;
  //  MINMAX:   min / (max - min);
  //  ROBUST:   median / (interquartile range / 1.349), the IQR of a normal
  //            distribution being 1.349 sigma, so it matches STANDARD on
  //            Gaussian data while ignoring heavy tails.
  //  QUANTILE_NORMAL ("quantile" in the config): the training CDF
  //            (mid-ranks, ties sharing one) mapped to the standard
  //            normal's quantiles, standardised over the training rows
  //            (ties shrink their spread), at up to kMaxKnots knots per
  //            feature; linear between knots, and beyond the training range
  //            linear with the slope of standard scaling (times the same
  //            standardisation), so a value far out still lands far out.
  //            Evens out heavy-tailed columns that would otherwise dominate
  //            the squared error.
  //  AUTO_QUANTILE ("auto"): QUANTILE_NORMAL for the features whose excess
  //            kurtosis is above 3 or where more than half the rows share
  //            one value (three values or more; on two values both maps
  //            agree), STANDARD (as two knots, the training extremes)
  //            for the rest; plain STANDARD (kind() says so) when no
  //            feature qualifies.
  // A constant feature (zero spread) gets scale 1, so it passes through
  // centred instead of dividing by zero; ROBUST falls back to the standard
  // deviation when the IQR is zero (e.g. a mostly-constant column).
  // INVALID_ARGUMENT for an empty matrix or a non-finite value.
  static Status Fit(const Matrix& data, pb::NormaliserKind kind,
                    Normaliser* out);

  // Restores a normaliser saved by ToProto. CORRUPT when the sizes do not
  // match `dim` or a scale is not a positive finite number.
  static Status FromProto(const pb::NormaliserParams& params, size_t dim,
                          Normaliser* out);
  void ToProto(pb::NormaliserParams* params) const;

  static constexpr size_t kMaxKnots = 1024;

  // out[i] = clip((in[i] - offset) / scale) for `rows` rows of dim() values
  // (kinds with knots: clip of the interpolated normal quantile); output row
  // i starts at out + i * out_stride (0: dim(), i.e. packed). `in` and `out`
  // may alias when packed: each value is read before it is written.
  void Apply(const float* in, float* out, size_t rows,
             size_t out_stride = 0) const;
  // The inverse (without the clip): normalised values back to raw units.
  void Invert(const float* in, float* out, size_t rows) const;

  // Tests: search the quantile knots without AVX2 even where the CPU has it.
  void set_portable_search(bool portable) { portable_search_ = portable; }

  size_t dim() const { return offset_.size(); }
  pb::NormaliserKind kind() const { return kind_; }
  const std::vector<float>& offset() const { return offset_; }
  const std::vector<float>& scale() const { return scale_; }
  // Kinds that map through per-feature knots.
  static bool HasKnots(pb::NormaliserKind kind) {
    return kind == pb::QUANTILE_NORMAL || kind == pb::AUTO_QUANTILE;
  }
  // True when Apply is (x - offset) / scale (every kind without knots).
  bool affine() const { return !HasKnots(kind_); }

 private:
  pb::NormaliserKind kind_ = pb::STANDARD;
  std::vector<float> offset_;
  std::vector<float> scale_;
  // With knots: feature j's are [knot_begin_[j], knot_begin_[j + 1]).
  std::vector<uint32_t> knot_begin_;
  std::vector<float> knot_value_, knot_z_;
  std::vector<float> knot_slope_;  // derived: see DeriveSlopes
  bool portable_search_ = false;

  void ApplyQuantile(const float* in, float* out, size_t rows,
                     size_t out_stride) const;
  double Backward(size_t j, double z) const;
  void FitKnots(std::vector<double>& sorted_col);
  void FitLinearKnots(double lo, double hi, double mean);
  // knot_slope_[i]: z's slope from knot i to i + 1; a feature's last one is
  // the tail's, 1 / scale.
  void DeriveSlopes();
};

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_NORMALISER_H_
