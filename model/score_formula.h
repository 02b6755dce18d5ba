// The anomaly score from its terms: the one definition, used by the
// LibTorch path (scorer.cc, on tensors), the fused CPU path (fused.cc, on
// floats) and the tests that hold both to it (score_terms_test.cc).
//
//   score = reconstruction + beta * kl + density_weight * density
//
// beta and density_weight are Architecture.beta and
// Architecture.density_weight of the bundle; every term is averaged over
// the ensemble before it is combined.
#ifndef ANOMALYD_MODEL_SCORE_FORMULA_H_
#define ANOMALYD_MODEL_SCORE_FORMULA_H_

#include "proto/anomalyd.pb.h"

namespace anomalyd {

struct ScoreWeights {
  float kl = 1.0f;       // Architecture.beta
  float density = 0.0f;  // Architecture.density_weight; 0: no density term

  static ScoreWeights Of(const pb::Architecture& a) {
    return ScoreWeights{a.beta(), a.density_weight()};
  }
  bool has_density() const { return density > 0; }
};

// The score without a density term (T: float, double or torch::Tensor).
template <typename T>
T CombineScore(const T& reconstruction, const T& kl, const ScoreWeights& w) {
  return reconstruction + w.kl * kl;
}

// The score with the density term.
template <typename T>
T CombineScore(const T& reconstruction, const T& kl, const T& density,
               const ScoreWeights& w) {
  return CombineScore(reconstruction, kl, w) + w.density * density;
}

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_SCORE_FORMULA_H_
