// The VAE module and its loss terms. Private to the model library: this is
// one of the few headers that include <torch/torch.h>.
#ifndef ANOMALYD_MODEL_VAE_H_
#define ANOMALYD_MODEL_VAE_H_

#include <torch/torch.h>

#include <utility>

#include "proto/anomalyd.pb.h"

namespace anomalyd {

// Decoder log-variance bounds for GAUSSIAN_LEARNED: a feature the baseline
// holds constant must not get a variance so small that any change scores
// astronomically (exp(-6) ~ 0.0025 of the normalised unit variance).
constexpr float kDecoderLogvarMin = -6.0f;
constexpr float kDecoderLogvarMax = 4.0f;

// Encoder d -> hidden... -> (mu, logvar); decoder latent -> reversed
// hidden... -> d outputs (Gaussian mean or Bernoulli logits). With the
// GAUSSIAN_LEARNED likelihood a per-feature log-variance is a parameter too.
struct VaeImpl : torch::nn::Module {
  explicit VaeImpl(const pb::Architecture& arch);

  // mu and the clamped logvar of q(z|x), each [N, latent].
  std::pair<torch::Tensor, torch::Tensor> Encode(const torch::Tensor& x);
  // Decoder output [N, d]: the Gaussian mean or the Bernoulli logits.
  torch::Tensor Decode(const torch::Tensor& z);

  const pb::Architecture& arch() const { return arch_; }

  torch::nn::Sequential encoder{nullptr};
  torch::nn::Linear encoder_head{nullptr};  // -> 2 * latent
  torch::nn::Sequential decoder{nullptr};
  torch::Tensor decoder_logvar;             // [d], GAUSSIAN_LEARNED only

 private:
  pb::Architecture arch_;
};
TORCH_MODULE(Vae);

// KL(N(mu, exp(logvar)) || N(0, I)) per record: [N].
torch::Tensor KlTerm(const torch::Tensor& mu, const torch::Tensor& logvar);

// Per-record, per-feature reconstruction terms [N, d] of target x given the
// decoder output. `full` adds the likelihood's constant parts (the
// log-variance and log 2pi terms of GAUSSIAN_LEARNED), which the loss needs
// and the per-feature contributions leave out. For BERNOULLI, targets
// outside [0, 1] (values beyond the baseline's range) add their squared
// distance to the interval, so they cannot look normal.
torch::Tensor ReconstructionTerms(const VaeImpl& vae, const torch::Tensor& x,
                                  const torch::Tensor& decoded, bool full);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_VAE_H_
