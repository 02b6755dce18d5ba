// Scoring: Model::Score, Sample, Encode and the batch core they share.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "model/model_impl.h"

namespace anomalyd {

BatchTerms ScoreBatch(const std::vector<Vae>& members, const torch::Tensor& x,
                      uint32_t samples, bool contributions,
                      c10::optional<at::Generator> gen) {
  BatchTerms out;
  for (Vae vae : members) {  // a copy of the holder: forward() is non-const
    auto [mu, logvar] = vae->Encode(x);
    torch::Tensor rec, contrib;
    if (samples <= 1) {
      auto decoded = vae->Decode(mu);
      rec = ReconstructionTerms(*vae, x, decoded, /*full=*/true).sum(1);
      if (contributions) {
        contrib = ReconstructionTerms(*vae, x, decoded, /*full=*/false);
      }
    } else {
      auto stddev = (0.5 * logvar).exp();
      for (uint32_t l = 0; l < samples; ++l) {
        // Draw on the CPU generator so MC scores are reproducible on any
        // device, then move the noise to the model's device.
        auto eps = torch::randn(mu.sizes(), gen, torch::kFloat32)
                       .to(mu.device());
        auto decoded = vae->Decode(mu + eps * stddev);
        auto terms = ReconstructionTerms(*vae, x, decoded, /*full=*/true);
        rec = l == 0 ? terms.sum(1) : rec + terms.sum(1);
        if (contributions) {
          auto c = ReconstructionTerms(*vae, x, decoded, /*full=*/false);
          contrib = l == 0 ? c : contrib + c;
        }
      }
      rec = rec / static_cast<double>(samples);
      if (contributions) contrib = contrib / static_cast<double>(samples);
    }
    auto kl = KlTerm(mu, logvar);
    out.reconstruction =
        out.reconstruction.defined() ? out.reconstruction + rec : rec;
    out.kl = out.kl.defined() ? out.kl + kl : kl;
    if (contributions) {
      out.contributions =
          out.contributions.defined() ? out.contributions + contrib : contrib;
    }
  }
  const double k = static_cast<double>(members.size());
  if (members.size() > 1) {
    out.reconstruction = out.reconstruction / k;
    out.kl = out.kl / k;
    if (contributions) out.contributions = out.contributions / k;
  }
  return out;
}

namespace {

// Copies a [N] or [N, d] float tensor into a vector.
void ToVector(const torch::Tensor& t, std::vector<float>* v) {
  auto c = t.to(torch::kCPU).contiguous();
  v->resize(static_cast<size_t>(c.numel()));
  std::memcpy(v->data(), c.data_ptr<float>(), v->size() * sizeof(float));
}

// NON_FINITE naming the first record with a NaN or Inf.
Status CheckFinite(const pb::BundleMeta& meta, const float* rows, size_t n) {
  const size_t d = meta.dim();
  for (size_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(rows[i])) {
      return Status(pb::NON_FINITE,
                    "record " + std::to_string(i / d) + ", feature '" +
                        meta.feature_names(static_cast<int>(i % d)) +
                        "' is not a finite number");
    }
  }
  return Status::OK();
}

// The normalised records as an [n, d] tensor on the model's device.
torch::Tensor Normalised(const Model::Impl& impl, const float* rows, size_t n) {
  auto x = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(impl.meta.dim())},
                        torch::kFloat32);
  impl.normaliser.Apply(rows, x.data_ptr<float>(), n);
  return x.to(impl.device);
}

}  // namespace

Status Model::Score(const float* rows, size_t n, const ScoreOptions& options,
                    ScoreOutput* out) const {
  *out = ScoreOutput();
  if (n == 0) return Status::OK();
  ANOMALYD_RETURN_IF_ERROR(CheckFinite(impl_->meta, rows, n));
  try {
    c10::InferenceMode guard;
    auto x = Normalised(*impl_, rows, n);
    const uint32_t samples =
        options.samples ? options.samples : impl_->meta.score_samples();
    c10::optional<at::Generator> gen;
    if (samples > 1) gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    BatchTerms terms =
        ScoreBatch(impl_->members, x, samples, options.contributions, gen);
    auto score = terms.reconstruction +
                 impl_->meta.architecture().beta() * terms.kl;
    ToVector(terms.reconstruction, &out->reconstruction);
    ToVector(terms.kl, &out->kl);
    ToVector(score, &out->score);
    if (options.contributions) ToVector(terms.contributions, &out->contributions);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("scoring failed: ") + e.what());
  }
  out->p_value.resize(n);
  for (size_t i = 0; i < n; ++i) out->p_value[i] = PValue(out->score[i]);
  return Status::OK();
}

double Model::PValue(float score) const {
  const auto& h = impl_->meta.holdout_scores();
  if (h.empty()) return std::nan("");
  // Scores >= score: holdout is sorted ascending.
  auto it = std::lower_bound(h.begin(), h.end(), score);
  return static_cast<double>(h.end() - it) / static_cast<double>(h.size());
}

Status Model::Sample(size_t n, uint64_t seed, Matrix* out) const {
  try {
    c10::InferenceMode guard;
    Vae vae = impl_->members.front();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto z = torch::randn({static_cast<int64_t>(n),
                           static_cast<int64_t>(impl_->meta.architecture().latent_dim())},
                          gen, torch::kFloat32)
                 .to(impl_->device);
    auto decoded = vae->Decode(z);
    if (vae->arch().likelihood() == pb::BERNOULLI) decoded = decoded.sigmoid();
    std::vector<float> values;
    ToVector(decoded, &values);
    Matrix m(n, dim());
    impl_->normaliser.Invert(values.data(), m.data.data(), n);
    *out = std::move(m);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("sampling failed: ") + e.what());
  }
  return Status::OK();
}

Status Model::Encode(const float* rows, size_t n, Matrix* out) const {
  ANOMALYD_RETURN_IF_ERROR(CheckFinite(impl_->meta, rows, n));
  try {
    c10::InferenceMode guard;
    auto x = Normalised(*impl_, rows, n);
    Vae vae = impl_->members.front();
    auto mu = vae->Encode(x).first;
    Matrix m(n, static_cast<size_t>(mu.size(1)));
    ToVector(mu, &m.data);
    *out = std::move(m);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("encoding failed: ") + e.what());
  }
  return Status::OK();
}

}  // namespace anomalyd
