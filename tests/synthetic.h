// The synthetic records of the tests: four features with a = N(0, 1),
// b = 2a + noise, c = N(10, 3), d = c - a + noise (noise N(0, 0.1^2)), so
// normal records lie near a 2-D surface and breaking b = 2a is an anomaly.
// The same distribution as scripts/synthetic.awk (the README's examples and
// scripts/soak.py); this is the one C++ copy, for tests that draw rows in
// process.
#ifndef ANOMALYD_TESTS_SYNTHETIC_H_
#define ANOMALYD_TESTS_SYNTHETIC_H_

#include <array>
#include <random>

namespace anomalyd::testing {

// One row {a, b, c, d}, drawn from `g` (a standard normal) in the order
// a, c, b's noise, d's noise: a given generator state gives a given row.
template <typename T, typename Rng>
std::array<T, 4> SyntheticRow(Rng& rng, std::normal_distribution<T>& g) {
  const T a = g(rng);
  const T c = 10 + 3 * g(rng);
  const T b = 2 * a + T(0.1) * g(rng);
  const T d = c - a + T(0.1) * g(rng);
  return {a, b, c, d};
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_SYNTHETIC_H_
