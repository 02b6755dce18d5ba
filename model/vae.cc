#include "model/vae.h"

#include <cmath>

namespace anomalyd {
namespace {

void AddActivation(torch::nn::Sequential& seq, pb::Activation a) {
  switch (a) {
    case pb::TANH: seq->push_back(torch::nn::Tanh()); break;
    case pb::ELU: seq->push_back(torch::nn::ELU()); break;
    case pb::LEAKY_RELU: seq->push_back(torch::nn::LeakyReLU()); break;
    case pb::SILU: seq->push_back(torch::nn::SiLU()); break;
    default: seq->push_back(torch::nn::ReLU()); break;
  }
}

}  // namespace

VaeImpl::VaeImpl(const pb::Architecture& arch) : arch_(arch) {
  const int64_t d = arch.input_dim();
  const int64_t latent = arch.latent_dim();
  encoder = torch::nn::Sequential();
  int64_t in = d;
  for (uint32_t h : arch.hidden()) {
    encoder->push_back(torch::nn::Linear(in, h));
    AddActivation(encoder, arch.activation());
    in = h;
  }
  encoder_head = torch::nn::Linear(in, 2 * latent);
  decoder = torch::nn::Sequential();
  in = latent;
  for (int i = arch.hidden_size() - 1; i >= 0; --i) {
    decoder->push_back(torch::nn::Linear(in, arch.hidden(i)));
    AddActivation(decoder, arch.activation());
    in = arch.hidden(i);
  }
  decoder->push_back(torch::nn::Linear(in, d));
  register_module("encoder", encoder);
  register_module("encoder_head", encoder_head);
  register_module("decoder", decoder);
  if (arch.likelihood() == pb::GAUSSIAN_LEARNED) {
    decoder_logvar = register_parameter("decoder_logvar", torch::zeros({d}));
  }
}

std::pair<torch::Tensor, torch::Tensor> VaeImpl::Encode(
    const torch::Tensor& x) {
  auto h = encoder_head->forward(encoder->forward(x));
  auto parts = h.chunk(2, /*dim=*/1);
  auto logvar = parts[1].clamp(arch_.logvar_min(), arch_.logvar_max());
  return {parts[0], logvar};
}

torch::Tensor VaeImpl::Decode(const torch::Tensor& z) {
  return decoder->forward(z);
}

torch::Tensor KlTerm(const torch::Tensor& mu, const torch::Tensor& logvar) {
  return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1);
}

torch::Tensor ReconstructionTerms(const VaeImpl& vae, const torch::Tensor& x,
                                  const torch::Tensor& decoded, bool full) {
  switch (vae.arch().likelihood()) {
    case pb::BERNOULLI: {
      auto target = x.clamp(0.0, 1.0);
      auto outside = (x - target).pow(2);
      auto bce = torch::binary_cross_entropy_with_logits(
          decoded, target, /*weight=*/{}, /*pos_weight=*/{},
          at::Reduction::None);
      return bce + outside;
    }
    case pb::GAUSSIAN_LEARNED: {
      auto lv = vae.decoder_logvar.clamp(kDecoderLogvarMin, kDecoderLogvarMax);
      auto t = 0.5 * (x - decoded).pow(2) * (-lv).exp();
      if (full) t = t + 0.5 * (lv + std::log(2.0 * M_PI));
      return t;
    }
    default:
      return (x - decoded).pow(2);
  }
}

}  // namespace anomalyd
