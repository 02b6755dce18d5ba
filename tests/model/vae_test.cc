// The VAE module and its loss terms (internal API, LibTorch).
#include "model/vae.h"

#include <cmath>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

pb::Architecture Arch(pb::Likelihood likelihood, uint32_t d = 3) {
  pb::Architecture a;
  a.set_input_dim(d);
  a.add_hidden(8);
  a.add_hidden(4);
  a.set_latent_dim(2);
  a.set_likelihood(likelihood);
  a.set_beta(1);
  a.set_logvar_min(-10);
  a.set_logvar_max(10);
  return a;
}

TEST(VaeTest, Shapes) {
  torch::manual_seed(1);
  Vae vae(Arch(pb::GAUSSIAN));
  auto x = torch::randn({5, 3});
  auto [mu, logvar] = vae->Encode(x);
  EXPECT_EQ(mu.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(logvar.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(vae->Decode(mu).sizes(), (std::vector<int64_t>{5, 3}));
}

TEST(VaeTest, KlMatchesHandComputedValue) {
  // KL = 0.5 * sum(mu^2 + exp(lv) - 1 - lv)
  // row: mu = (1, 0), lv = (0, log 2):
  //   0.5 * [(1 + 1 - 1 - 0) + (0 + 2 - 1 - log 2)] = 0.5 * (2 - log 2)
  auto mu = torch::tensor({{1.0f, 0.0f}});
  auto lv = torch::tensor({{0.0f, static_cast<float>(std::log(2.0))}});
  EXPECT_NEAR(KlTerm(mu, lv).item<float>(), 0.5 * (2 - std::log(2.0)), 1e-6);
  // The prior itself has zero divergence.
  EXPECT_NEAR(KlTerm(torch::zeros({1, 4}), torch::zeros({1, 4})).item<float>(), 0, 1e-7);
}

TEST(VaeTest, GaussianTermIsSquaredError) {
  Vae vae(Arch(pb::GAUSSIAN));
  auto x = torch::tensor({{1.0f, 2.0f, 3.0f}});
  auto dec = torch::tensor({{1.0f, 0.0f, 4.0f}});
  auto t = ReconstructionTerms(*vae, x, dec, true);
  EXPECT_FLOAT_EQ(t[0][0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(t[0][1].item<float>(), 4.0f);
  EXPECT_FLOAT_EQ(t[0][2].item<float>(), 1.0f);
}

TEST(VaeTest, LearnedVarianceAddsConstantOnlyWhenFull) {
  Vae vae(Arch(pb::GAUSSIAN_LEARNED));
  // decoder_logvar starts at 0 (unit variance): term = 0.5 (x - m)^2
  // (+ 0.5 log 2pi when full).
  auto x = torch::tensor({{2.0f, 0.0f, 0.0f}});
  auto dec = torch::zeros({1, 3});
  auto part = ReconstructionTerms(*vae, x, dec, false);
  auto full = ReconstructionTerms(*vae, x, dec, true);
  EXPECT_FLOAT_EQ(part[0][0].item<float>(), 2.0f);
  EXPECT_NEAR(full[0][0].item<float>(), 2.0 + 0.5 * std::log(2 * M_PI), 1e-5);
}

TEST(VaeTest, BernoulliPenalisesValuesOutsideUnitInterval) {
  Vae vae(Arch(pb::BERNOULLI));
  auto dec = torch::zeros({1, 3});  // logits 0: p = 0.5
  auto inside = ReconstructionTerms(*vae, torch::tensor({{1.0f, 1.0f, 1.0f}}), dec, true);
  auto outside = ReconstructionTerms(*vae, torch::tensor({{3.0f, 1.0f, 1.0f}}), dec, true);
  EXPECT_NEAR(inside[0][0].item<float>(), std::log(2.0), 1e-6);
  EXPECT_NEAR(outside[0][0].item<float>(), std::log(2.0) + 4.0, 1e-5);
}

TEST(VaeTest, LogvarIsClamped) {
  torch::manual_seed(2);
  Vae vae(Arch(pb::GAUSSIAN));
  auto [mu, logvar] = vae->Encode(torch::full({1, 3}, 1e6f));
  EXPECT_LE(logvar.max().item<float>(), 10.0f);
  EXPECT_GE(logvar.min().item<float>(), -10.0f);
}

}  // namespace
}  // namespace anomalyd
