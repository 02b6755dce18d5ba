// Matrix: a dense row-major float matrix, the currency between the CSV
// reader, the normaliser and the model. Plain value type; not thread-safe.
#ifndef ANOMALYD_MODEL_MATRIX_H_
#define ANOMALYD_MODEL_MATRIX_H_

#include <cstddef>
#include <vector>

namespace anomalyd {

struct Matrix {
  Matrix() = default;
  Matrix(size_t r, size_t c) : rows(r), cols(c), data(r * c) {}

  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> data;  // rows * cols values, row-major

  float* row(size_t i) { return data.data() + i * cols; }
  const float* row(size_t i) const { return data.data() + i * cols; }
  float& at(size_t i, size_t j) { return data[i * cols + j]; }
  float at(size_t i, size_t j) const { return data[i * cols + j]; }
};

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_MATRIX_H_
