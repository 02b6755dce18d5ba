// Synthetic data and a small trained model shared by the model tests.
#ifndef ANOMALYD_TESTS_MODEL_MODEL_FIXTURE_H_
#define ANOMALYD_TESTS_MODEL_MODEL_FIXTURE_H_

#include <array>
#include <random>
#include <string>
#include <vector>

#include "model/model.h"
#include "tests/synthetic.h"

namespace anomalyd::testing {

// n rows of the synthetic features (tests/synthetic.h): b = 2a, d = c - a
// plus noise. Normal data lie near a 2-D surface.
inline Matrix CorrelatedData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  Matrix m(n, 4);
  for (size_t i = 0; i < n; ++i) {
    const std::array<float, 4> r = SyntheticRow(rng, g);
    for (size_t j = 0; j < 4; ++j) m.at(i, j) = r[j];
  }
  return m;
}

inline std::vector<std::string> FeatureNames() { return {"a", "b", "c", "d"}; }

// Small and quick: CPU, tiny layers, few epochs.
inline TrainOptions SmallTrainOptions() {
  TrainOptions o;
  o.model.hidden = {16, 8};
  o.model.latent = 2;
  o.max_epochs = 150;
  o.batch_size = 64;
  o.device = "cpu";
  o.seed = 7;
  return o;
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_MODEL_MODEL_FIXTURE_H_
