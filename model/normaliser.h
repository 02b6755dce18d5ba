// Normaliser: per-feature affine scaling fitted on the baseline and stored in
// the bundle, so that clients send raw values and the model sees
// (x - offset) / scale. Immutable after Fit/FromProto; thread-safe to share.
#ifndef ANOMALYD_MODEL_NORMALISER_H_
#define ANOMALYD_MODEL_NORMALISER_H_

#include <cstddef>
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

  // out[i] = clip((in[i] - offset) / scale) for `rows` rows of dim() values.
  // `in` and `out` may alias.
  void Apply(const float* in, float* out, size_t rows) const;
  // The inverse (without the clip): normalised values back to raw units.
  void Invert(const float* in, float* out, size_t rows) const;

  size_t dim() const { return offset_.size(); }
  pb::NormaliserKind kind() const { return kind_; }
  const std::vector<float>& offset() const { return offset_; }
  const std::vector<float>& scale() const { return scale_; }

 private:
  pb::NormaliserKind kind_ = pb::STANDARD;
  std::vector<float> offset_;
  std::vector<float> scale_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_NORMALISER_H_
