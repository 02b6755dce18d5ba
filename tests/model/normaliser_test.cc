#include "model/normaliser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

Matrix Column(std::vector<float> v) {
  Matrix m(v.size(), 1);
  m.data = std::move(v);
  return m;
}

TEST(NormaliserTest, StandardUsesMeanAndStd) {
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({1, 2, 3, 4}), pb::STANDARD, &n));
  EXPECT_FLOAT_EQ(n.offset()[0], 2.5f);
  EXPECT_FLOAT_EQ(n.scale()[0], std::sqrt(1.25f));  // population std
  float x = 4, y;
  n.Apply(&x, &y, 1);
  EXPECT_NEAR(y, 1.5 / std::sqrt(1.25), 1e-6);
}

TEST(NormaliserTest, MinMaxMapsRangeToUnitInterval) {
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({-2, 0, 6}), pb::MINMAX, &n));
  float in[3] = {-2, 6, 2}, out[3];
  for (int i = 0; i < 3; ++i) n.Apply(&in[i], &out[i], 1);
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
  EXPECT_FLOAT_EQ(out[2], 0.5f);
}

TEST(NormaliserTest, RobustIgnoresOutliers) {
  // Median 3, IQR (q75 - q25) = 4 - 2 = 2 on 1..5; one huge outlier barely
  // moves it, while the standard deviation would explode.
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({1, 2, 3, 4, 5, 2, 3, 4, 1e6}), pb::ROBUST, &n));
  EXPECT_FLOAT_EQ(n.offset()[0], 3.0f);
  EXPECT_NEAR(n.scale()[0], 2.0 / 1.349, 1e-5);
}

TEST(NormaliserTest, ConstantFeatureGetsUnitScale) {
  for (auto kind : {pb::STANDARD, pb::MINMAX, pb::ROBUST, pb::QUANTILE_NORMAL, pb::AUTO_QUANTILE}) {
    Normaliser n;
    ASSERT_OK(Normaliser::Fit(Column({7, 7, 7}), kind, &n));
    EXPECT_EQ(n.scale()[0], 1.0f) << pb::NormaliserKind_Name(kind);
    float x = 8, y;
    n.Apply(&x, &y, 1);
    EXPECT_TRUE(std::isfinite(y));
  }
}

TEST(NormaliserTest, HugeValuesAreClippedNotInfinite) {
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({0, 1, 2}), pb::STANDARD, &n));
  float in[2] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()};
  float out[2];
  n.Apply(in, out, 2);
  EXPECT_EQ(out[0], Normaliser::kClip);
  EXPECT_EQ(out[1], -Normaliser::kClip);
}

TEST(NormaliserTest, ProtoRoundTripAndInvert) {
  Matrix m(3, 2);
  m.data = {1, 10, 2, 20, 4, 40};
  Normaliser n, back;
  ASSERT_OK(Normaliser::Fit(m, pb::STANDARD, &n));
  pb::NormaliserParams p;
  n.ToProto(&p);
  ASSERT_OK(Normaliser::FromProto(p, 2, &back));
  std::vector<float> z(6), raw(6);
  back.Apply(m.data.data(), z.data(), 3);
  back.Invert(z.data(), raw.data(), 3);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(raw[i], m.data[i], 1e-4);
}

// Mid-ranks of 1..4 are 1/8, 3/8, 5/8, 7/8; their normal quantiles (to
// double precision, from R's qnorm), standardised over the training rows,
// are the knots.
constexpr double kQ18 = -1.1503493803760083, kQ38 = -0.3186393639643752;

TEST(NormaliserTest, QuantileMapsTheTrainingCdfToNormalQuantiles) {
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({4, 1, 3, 2}), pb::QUANTILE_NORMAL, &n));
  EXPECT_FALSE(n.affine());
  const double sd = std::sqrt((kQ18 * kQ18 + kQ38 * kQ38) / 2);  // mean 0
  float in[6] = {1, 2, 3, 4, 2.5f, 1.5f}, out[6];
  n.Apply(in, out, 6);
  EXPECT_NEAR(out[0], kQ18 / sd, 1e-6);
  EXPECT_NEAR(out[1], kQ38 / sd, 1e-6);
  EXPECT_NEAR(out[2], -kQ38 / sd, 1e-6);
  EXPECT_NEAR(out[3], -kQ18 / sd, 1e-6);
  EXPECT_NEAR(out[4], 0.0, 1e-6);  // halfway between knots
  EXPECT_NEAR(out[5], (kQ18 + kQ38) / 2 / sd, 1e-6);
  // Beyond the training range: slope 1 / (population std (sqrt 1.25) x sd).
  float far[2] = {6, -1}, z[2];
  n.Apply(far, z, 2);
  EXPECT_NEAR(z[0], -kQ18 / sd + 2 / (std::sqrt(1.25) * sd), 1e-5);
  EXPECT_NEAR(z[1], kQ18 / sd - 2 / (std::sqrt(1.25) * sd), 1e-5);
}

TEST(NormaliserTest, QuantileTiesShareOneMidRank) {
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({0, 0, 0, 1}), pb::QUANTILE_NORMAL, &n));
  // Mid-ranks 1.5 / 4 (three rows) and 3.5 / 4 (one row).
  const double lo = kQ38, hi = -kQ18;
  const double mean = (3 * lo + hi) / 4;
  const double sd = std::sqrt((3 * (lo - mean) * (lo - mean) + (hi - mean) * (hi - mean)) / 4);
  float in[2] = {0, 1}, out[2];
  n.Apply(in, out, 2);
  EXPECT_NEAR(out[0], (lo - mean) / sd, 1e-6);
  EXPECT_NEAR(out[1], (hi - mean) / sd, 1e-6);
}

TEST(NormaliserTest, QuantileThinsKnotsAndStaysMonotone) {
  std::vector<float> v(5000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::exp(0.002f * static_cast<float>(i));
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column(v), pb::QUANTILE_NORMAL, &n));
  pb::NormaliserParams p;
  n.ToProto(&p);
  ASSERT_EQ(p.knot_count_size(), 1);
  EXPECT_LE(p.knot_count(0), Normaliser::kMaxKnots);
  EXPECT_EQ(p.knot_value(0), v.front());
  EXPECT_EQ(p.knot_value(p.knot_value_size() - 1), v.back());
  float prev = -1e9f;
  for (float x = 0; x < 25000; x += 3.7f) {
    float z;
    n.Apply(&x, &z, 1);
    ASSERT_GE(z, prev) << x;
    prev = z;
  }
  // The median of the training values lands near 0; the training rows have
  // mean 0 and standard deviation 1.
  float mid = v[2500], zmid;
  n.Apply(&mid, &zmid, 1);
  EXPECT_NEAR(zmid, 0.0, 0.01);
  std::vector<float> z(v.size());
  n.Apply(v.data(), z.data(), v.size());
  double sum = 0, ss = 0;
  for (float x : z) sum += x;
  for (float x : z) ss += (x - sum / z.size()) * (x - sum / z.size());
  EXPECT_NEAR(sum / z.size(), 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(ss / z.size()), 1.0, 1e-3);
}

// Apply against the plain definition (std::upper_bound and interpolation)
// at random values and at every knot, for knot counts around powers of two,
// one value at a time and all at once (blocks of rows, the last partial),
// with the AVX2 search where the CPU has it and without: the two must give
// the same bits.
TEST(NormaliserTest, QuantileSearchMatchesThePlainDefinition) {
  std::mt19937 rng(7);
  for (size_t distinct : {1u, 2u, 31u, 32u, 33u, 257u, 1023u, 1024u, 5000u}) {
    std::vector<float> v;
    for (size_t i = 0; i < distinct; ++i)
      v.push_back(std::ldexp(1.0f + i % 7, static_cast<int>(i / 97)) + 0.001f * i);
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    Normaliser n;
    ASSERT_OK(Normaliser::Fit(Column(v), pb::QUANTILE_NORMAL, &n));
    pb::NormaliserParams p;
    n.ToProto(&p);
    const float* xs = p.knot_value().data();
    const float* zs = p.knot_z().data();
    const size_t m = static_cast<size_t>(p.knot_value_size());
    std::uniform_real_distribution<float> u(v.front() - 1, v.back() + 1);
    std::vector<float> probes(xs, xs + m);
    for (int i = 0; i < 2000; ++i) probes.push_back(u(rng));
    std::vector<float> all(probes.size()), portable(probes.size());
    n.Apply(probes.data(), all.data(), probes.size());
    n.set_portable_search(true);
    n.Apply(probes.data(), portable.data(), probes.size());
    ASSERT_EQ(all, portable) << distinct;
    for (size_t p_i = 0; p_i < probes.size(); ++p_i) {
      const float x = probes[p_i];
      float got;
      n.Apply(&x, &got, 1);
      ASSERT_EQ(got, all[p_i]) << distinct << " " << x;
      double want;
      if (m == 1 || x <= xs[0]) {
        want = zs[0] + (x - static_cast<double>(xs[0])) / p.scale(0);
      } else if (x >= xs[m - 1]) {
        want = zs[m - 1] + (x - static_cast<double>(xs[m - 1])) / p.scale(0);
      } else {
        const size_t i = static_cast<size_t>(std::upper_bound(xs, xs + m, x) - xs) - 1;
        want = zs[i] + (x - static_cast<double>(xs[i])) * (zs[i + 1] - zs[i]) / (xs[i + 1] - xs[i]);
      }
      ASSERT_NEAR(got, want, 1e-5 * std::max(1.0, std::fabs(want))) << distinct << " " << x;
    }
  }
}

// Several features, written at a row stride wider than the feature count
// (the fused scorer's padded rows), and in place: the same values as packed
// into a separate buffer.
TEST(NormaliserTest, QuantileApplyStridedAndInPlace) {
  std::mt19937 rng(3);
  std::lognormal_distribution<float> heavy(0, 2);
  std::uniform_real_distribution<float> flat(-5, 5);
  Matrix train(500, 3), rows(100, 3);
  for (Matrix* m : {&train, &rows}) {
    for (size_t i = 0; i < m->rows; ++i) {
      m->data[i * 3] = heavy(rng);
      m->data[i * 3 + 1] = flat(rng);
      m->data[i * 3 + 2] = std::round(flat(rng));  // ties
    }
  }
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(train, pb::QUANTILE_NORMAL, &n));
  std::vector<float> packed(300), wide(100 * 5, -7.0f), inplace(rows.data);
  n.Apply(rows.data.data(), packed.data(), 100);
  n.Apply(rows.data.data(), wide.data(), 100, 5);
  n.Apply(inplace.data(), inplace.data(), 100);
  for (size_t i = 0; i < 100; ++i) {
    for (size_t j = 0; j < 3; ++j) ASSERT_EQ(wide[i * 5 + j], packed[i * 3 + j]);
    ASSERT_EQ(wide[i * 5 + 3], -7.0f);  // padding untouched
    ASSERT_EQ(wide[i * 5 + 4], -7.0f);
  }
  EXPECT_EQ(inplace, packed);
}

// AUTO_QUANTILE: a heavy-tailed feature (lognormal, excess kurtosis far
// above 3) gets the quantile map, a light-tailed one (uniform, -1.2) and a
// bounded skewed one (a square of a uniform, about -0.9) standard scaling,
// stored as two knots: the same values as STANDARD, inside the training
// range and beyond it.
TEST(NormaliserTest, AutoQuantileMapsOnlyHeavyTailedFeatures) {
  std::mt19937 rng(11);
  std::lognormal_distribution<float> heavy(0, 1.5);
  std::uniform_real_distribution<float> flat(0, 10);
  Matrix train(2000, 3);
  for (size_t i = 0; i < train.rows; ++i) {
    const float u = flat(rng);
    train.data[i * 3] = heavy(rng);
    train.data[i * 3 + 1] = flat(rng);
    train.data[i * 3 + 2] = u * u;
  }
  Normaliser autoq, quant, standard;
  ASSERT_OK(Normaliser::Fit(train, pb::AUTO_QUANTILE, &autoq));
  ASSERT_OK(Normaliser::Fit(train, pb::QUANTILE_NORMAL, &quant));
  ASSERT_OK(Normaliser::Fit(train, pb::STANDARD, &standard));
  EXPECT_FALSE(autoq.affine());
  pb::NormaliserParams p;
  autoq.ToProto(&p);
  ASSERT_EQ(p.knot_count_size(), 3);
  EXPECT_GT(p.knot_count(0), 100u);
  EXPECT_EQ(p.knot_count(1), 2u);
  EXPECT_EQ(p.knot_count(2), 2u);
  const std::vector<float> rows = {0.5f, 5, 50, 30, -3, 120, 2, 11, 0};
  std::vector<float> a(9), q(9), s(9);
  autoq.Apply(rows.data(), a.data(), 3);
  quant.Apply(rows.data(), q.data(), 3);
  standard.Apply(rows.data(), s.data(), 3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a[i * 3], q[i * 3]) << i;
    for (size_t j = 1; j < 3; ++j) EXPECT_NEAR(a[i * 3 + j], s[i * 3 + j], 1e-5) << i << " " << j;
  }
  // Saved and loaded, the kind and the map survive.
  Normaliser back;
  ASSERT_OK(Normaliser::FromProto(p, 3, &back));
  EXPECT_EQ(back.kind(), pb::AUTO_QUANTILE);
  std::vector<float> b(9);
  back.Apply(rows.data(), b.data(), 3);
  EXPECT_EQ(a, b);
}

// Knots a denormal apart: the slope between them overflows float; a value at
// a knot still maps to that knot's quantile, and every value to a finite one,
// with and without AVX2.
TEST(NormaliserTest, QuantileKnotsADenormalApartStayFinite) {
  const float tiny = std::numeric_limits<float>::denorm_min();
  Normaliser n;
  ASSERT_OK(Normaliser::Fit(Column({0, tiny, 1, 2}), pb::QUANTILE_NORMAL, &n));
  pb::NormaliserParams p;
  n.ToProto(&p);
  ASSERT_EQ(p.knot_value_size(), 4);
  for (bool portable : {false, true}) {
    n.set_portable_search(portable);
    for (int i = 0; i < 4; ++i) {
      const float x = p.knot_value(i);
      float z;
      n.Apply(&x, &z, 1);
      EXPECT_EQ(z, p.knot_z(i)) << portable << " " << i;
    }
    for (float x : {0.5f, -1.0f, 3.0f}) {
      float z;
      n.Apply(&x, &z, 1);
      EXPECT_TRUE(std::isfinite(z)) << portable << " " << x;
    }
  }
}

// A feature that is usually one value (a counter that is mostly 0) gets the
// map even with light tails: more than half the rows at one value. Below
// half it stays standard-scaled, and so do a constant feature and a
// two-valued one (both maps agree on its two values).
TEST(NormaliserTest, AutoQuantileMapsMostlyOneValueFeatures) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> flat(1, 10), unit(0, 1);
  Matrix train(1000, 4);
  for (size_t i = 0; i < train.rows; ++i) {
    const float u = unit(rng);
    train.data[i * 4] = u < 0.6f ? 0.0f : flat(rng);
    train.data[i * 4 + 1] = u < 0.4f ? 0.0f : flat(rng);
    train.data[i * 4 + 2] = 5;
    train.data[i * 4 + 3] = u < 0.7f ? 0.0f : 1.0f;
  }
  Normaliser autoq;
  ASSERT_OK(Normaliser::Fit(train, pb::AUTO_QUANTILE, &autoq));
  EXPECT_EQ(autoq.kind(), pb::AUTO_QUANTILE);
  pb::NormaliserParams p;
  autoq.ToProto(&p);
  const std::vector<uint32_t> knots(p.knot_count().begin(), p.knot_count().end());
  ASSERT_EQ(knots.size(), 4u);
  EXPECT_GT(knots[0], 100u);
  // Standard scaling's two knots; one for the constant feature.
  EXPECT_EQ(std::vector<uint32_t>(knots.begin() + 1, knots.end()),
            (std::vector<uint32_t>{2, 1, 2}));
  // Without the first feature nothing qualifies: plain standard scaling.
  Matrix rest(train.rows, 3);
  for (size_t i = 0; i < train.rows; ++i) {
    for (size_t j = 0; j < 3; ++j) rest.data[i * 3 + j] = train.data[i * 4 + j + 1];
  }
  ASSERT_OK(Normaliser::Fit(rest, pb::AUTO_QUANTILE, &autoq));
  EXPECT_EQ(autoq.kind(), pb::STANDARD);
}

TEST(NormaliserTest, AutoQuantileWithoutHeavyTailsIsStandard) {
  Matrix train(4, 2);
  train.data = {1, 10, 2, 20, 3, 30, 4, 45};
  Normaliser autoq, standard;
  ASSERT_OK(Normaliser::Fit(train, pb::AUTO_QUANTILE, &autoq));
  ASSERT_OK(Normaliser::Fit(train, pb::STANDARD, &standard));
  EXPECT_EQ(autoq.kind(), pb::STANDARD);
  EXPECT_TRUE(autoq.affine());
  EXPECT_EQ(autoq.offset(), standard.offset());
  EXPECT_EQ(autoq.scale(), standard.scale());
}

TEST(NormaliserTest, QuantileProtoRoundTripAndInvert) {
  Matrix m(5, 2);
  m.data = {1, 10, 2, 20, 4, 40, 8, 40, 100, 50};
  Normaliser n, back;
  ASSERT_OK(Normaliser::Fit(m, pb::QUANTILE_NORMAL, &n));
  pb::NormaliserParams p;
  n.ToProto(&p);
  ASSERT_OK(Normaliser::FromProto(p, 2, &back));
  std::vector<float> rows = {1, 10, 3, 45, 500, -7}, z(6), z2(6), raw(6);
  n.Apply(rows.data(), z.data(), 3);
  back.Apply(rows.data(), z2.data(), 3);
  EXPECT_EQ(z, z2);
  back.Invert(z.data(), raw.data(), 3);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(raw[i], rows[i], 1e-3 * std::fabs(rows[i]) + 1e-4);
  // Knots out of order, a count that overruns, one left over: all CORRUPT.
  pb::NormaliserParams bad = p;
  bad.set_knot_value(1, bad.knot_value(0));
  EXPECT_EQ(Normaliser::FromProto(bad, 2, &back).code(), pb::CORRUPT);
  bad = p;
  bad.set_knot_count(1, bad.knot_count(1) + 1);
  EXPECT_EQ(Normaliser::FromProto(bad, 2, &back).code(), pb::CORRUPT);
  bad = p;
  bad.set_knot_count(1, bad.knot_count(1) - 1);
  EXPECT_EQ(Normaliser::FromProto(bad, 2, &back).code(), pb::CORRUPT);
  bad = p;
  bad.clear_knot_count();
  EXPECT_EQ(Normaliser::FromProto(bad, 2, &back).code(), pb::CORRUPT);
}

TEST(NormaliserTest, RejectsBadInput) {
  Normaliser n;
  EXPECT_EQ(Normaliser::Fit(Matrix(), pb::STANDARD, &n).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(Normaliser::Fit(Column({1, NAN}), pb::STANDARD, &n).code(), pb::NON_FINITE);
  pb::NormaliserParams p;
  p.add_offset(0);
  p.add_scale(0);  // a zero scale would divide by zero
  EXPECT_EQ(Normaliser::FromProto(p, 1, &n).code(), pb::CORRUPT);
  EXPECT_EQ(Normaliser::FromProto(p, 2, &n).code(), pb::CORRUPT);
}

}  // namespace
}  // namespace anomalyd
