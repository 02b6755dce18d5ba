// Model::Impl and the scoring core shared by training (holdout scores),
// serving and bundles. Private to the model library; includes LibTorch.
#ifndef ANOMALYD_MODEL_MODEL_IMPL_H_
#define ANOMALYD_MODEL_MODEL_IMPL_H_

#include <torch/torch.h>

#include <vector>

#include "model/fused.h"
#include "model/model.h"
#include "model/normaliser.h"
#include "model/vae.h"

namespace anomalyd {

// One member's latent kernel density, on the model's device: for centres
// k with mean m_k and variance v_k, log N(mu; m_k, v_k) =
// -0.5 * mu^2 . inv_var_k + mu . a_k - c_k.
struct LatentDensity {
  torch::Tensor inv_var, a;  // [K, L]
  torch::Tensor c;           // [K]
};
// Built from meta.latent_centres; empty when the density weight is 0.
std::vector<LatentDensity> BuildDensities(const pb::BundleMeta& meta,
                                          const torch::Device& device);

struct Model::Impl {
  pb::BundleMeta meta;
  Normaliser normaliser;
  std::vector<Vae> members;  // >= 1; scores are averaged over members
  torch::Device device{torch::kCPU};
  // The CPU fast path for latent-mean scoring; null on other devices.
  std::unique_ptr<FusedScorer> fused;
  // On a GPU: the normaliser (double) and the sorted holdout scores, kept
  // on the device so a batch needs one copy in and one out.
  torch::Tensor device_offset, device_scale, device_holdout;
  std::vector<LatentDensity> densities;  // per member, when weighted
};

// The fused CPU scorer holding copies of `impl`'s weights.
std::unique_ptr<FusedScorer> BuildFusedScorer(const Model::Impl& impl);

struct ModelAccess {
  static std::unique_ptr<Model> Make(std::unique_ptr<Model::Impl> impl) {
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  }
  static Model::Impl& impl(Model& m) { return *m.impl_; }
};

// Per-record terms of a batch of *normalised* records, averaged over the
// ensemble. `x` is [N, d] on the members' device. `samples` <= 1 decodes
// the latent mean; L > 1 averages L reparameterised draws from `gen`.
struct BatchTerms {
  torch::Tensor reconstruction;  // [N]
  torch::Tensor kl;              // [N]
  torch::Tensor density;         // [N], only with densities
  torch::Tensor contributions;   // [N, d], only when asked for
};
BatchTerms ScoreBatch(const std::vector<Vae>& members, const torch::Tensor& x,
                      uint32_t samples, bool contributions,
                      c10::optional<at::Generator> gen,
                      const std::vector<LatentDensity>& densities = {});
// reconstruction + beta * kl (+ density_weight * density).
torch::Tensor CombinedScore(const BatchTerms& t, const pb::Architecture& arch);
// The density term of one member: the KL's posterior-variance part plus
// -log of the kernel density at mu. [N].
torch::Tensor DensityTerm(const LatentDensity& d, const torch::Tensor& mu,
                          const torch::Tensor& logvar);

// Resolves "auto" | "cpu" | "cuda" | "cuda:K". INVALID_ARGUMENT for
// anything else or a CUDA device that is not available.
Status ParseDevice(const std::string& spec, torch::Device* device);

// Sets LibTorch's (and OpenBLAS's) threads for a scope, then restores them.
class ScopedTorchThreads {
 public:
  explicit ScopedTorchThreads(int n);
  ~ScopedTorchThreads();
  ScopedTorchThreads(const ScopedTorchThreads&) = delete;
  ScopedTorchThreads& operator=(const ScopedTorchThreads&) = delete;

 private:
  int previous_;
};

// Fills the architecture message from resolved options.
pb::Architecture ToArchitecture(const ModelOptions& resolved, size_t d);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_MODEL_IMPL_H_
