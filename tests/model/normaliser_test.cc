#include "model/normaliser.h"

#include <cmath>
#include <limits>

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
  for (auto kind : {pb::STANDARD, pb::MINMAX, pb::ROBUST}) {
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
