// Scoring: Model::Score, Sample, Encode and the batch core they share.
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "model/finite.h"
#include "model/model_impl.h"
#include "model/parallel.h"
#include "model/score_formula.h"

namespace anomalyd {

torch::Tensor DensityTerm(const LatentDensity& d, const torch::Tensor& mu,
                          const torch::Tensor& logvar) {
  const double k = static_cast<double>(d.c.size(0));
  auto q = -0.5 * (mu * mu).mm(d.inv_var.t()) + mu.mm(d.a.t()) - d.c.unsqueeze(0);
  auto var = 0.5 * (logvar.exp() - 1.0 - logvar).sum(1);
  return var + (std::log(k) - torch::logsumexp(q, 1));
}

std::vector<LatentDensity> BuildDensities(const pb::BundleMeta& meta, const torch::Device& device) {
  std::vector<LatentDensity> out;
  if (!(meta.architecture().density_weight() > 0)) return out;
  const int64_t l = meta.architecture().latent_dim();
  for (const pb::LatentCentres& c : meta.latent_centres()) {
    const int64_t k = c.mean_size() / l;
    auto mean = torch::tensor(std::vector<float>(c.mean().begin(), c.mean().end())).view({k, l});
    auto lv =
        torch::tensor(std::vector<float>(c.log_var().begin(), c.log_var().end())).view({k, l});
    LatentDensity d;
    d.inv_var = (-lv).exp();
    d.a = mean * d.inv_var;
    d.c = 0.5 * (mean * mean * d.inv_var + lv).sum(1) +
          0.5 * static_cast<double>(l) * std::log(2 * M_PI);
    d.inv_var = d.inv_var.to(device);
    d.a = d.a.to(device);
    d.c = d.c.to(device);
    out.push_back(std::move(d));
  }
  return out;
}

torch::Tensor CombinedScore(const BatchTerms& t, const pb::Architecture& arch) {
  const ScoreWeights w = ScoreWeights::Of(arch);
  if (t.density.defined()) return CombineScore(t.reconstruction, t.kl, t.density, w);
  return CombineScore(t.reconstruction, t.kl, w);
}

BatchTerms ScoreBatch(const std::vector<Vae>& members, const torch::Tensor& x, uint32_t samples,
                      bool contributions, c10::optional<at::Generator> gen,
                      const std::vector<LatentDensity>& densities) {
  BatchTerms out;
  for (size_t i = 0; i < members.size(); ++i) {
    Vae vae = members[i];  // a copy of the holder: forward() is non-const
    auto [mu, logvar] = vae->Encode(x);
    if (!densities.empty()) {
      auto dens = DensityTerm(densities[i], mu, logvar);
      out.density = out.density.defined() ? out.density + dens : dens;
    }
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
        auto eps = torch::randn(mu.sizes(), gen, torch::kFloat32).to(mu.device());
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
    out.reconstruction = out.reconstruction.defined() ? out.reconstruction + rec : rec;
    out.kl = out.kl.defined() ? out.kl + kl : kl;
    if (contributions) {
      out.contributions = out.contributions.defined() ? out.contributions + contrib : contrib;
    }
  }
  const double k = static_cast<double>(members.size());
  if (members.size() > 1) {
    out.reconstruction = out.reconstruction / k;
    out.kl = out.kl / k;
    if (out.density.defined()) out.density = out.density / k;
    if (contributions) out.contributions = out.contributions / k;
  }
  return out;
}

namespace {

FusedLayer FromLinear(const torch::nn::LinearImpl& lin, bool activation) {
  auto w = lin.weight.detach().to(torch::kCPU).contiguous();
  auto b = lin.bias.detach().to(torch::kCPU).contiguous();
  return MakeFusedLayer(w.data_ptr<float>(), b.data_ptr<float>(), static_cast<size_t>(w.size(1)),
                        static_cast<size_t>(w.size(0)), activation);
}

// The Linear layers of a Sequential, in order; each is followed by an
// activation except the decoder's output layer.
void AppendLinears(const torch::nn::Sequential& seq, std::vector<FusedLayer>* out) {
  for (const auto& m : seq->children()) {
    if (const auto* lin = m->as<torch::nn::Linear>()) {
      out->push_back(FromLinear(*lin, true));
    }
  }
}

}  // namespace

std::unique_ptr<FusedScorer> BuildFusedScorer(const Model::Impl& impl) {
  std::vector<FusedMember> members;
  for (const Vae& vae : impl.members) {
    FusedMember m;
    AppendLinears(vae->encoder, &m.encoder);
    m.encoder.push_back(FromLinear(*vae->encoder_head, false));
    AppendLinears(vae->decoder, &m.decoder);
    m.decoder.back().activation = false;
    if (vae->decoder_logvar.defined()) {
      auto lv = vae->decoder_logvar.detach()
                    .to(torch::kCPU)
                    .clamp(kDecoderLogvarMin, kDecoderLogvarMax)
                    .contiguous();
      m.SetDecoderLogvar(lv.data_ptr<float>(), static_cast<size_t>(lv.numel()));
    }
    if (members.size() < impl.densities.size()) {
      const LatentDensity& d = impl.densities[members.size()];
      auto iv = d.inv_var.to(torch::kCPU).t().contiguous();  // [L, K]
      auto a = d.a.to(torch::kCPU).t().contiguous();
      auto c = d.c.to(torch::kCPU).contiguous();
      m.centres = static_cast<size_t>(c.numel());
      m.density_inv_var.assign(iv.data_ptr<float>(), iv.data_ptr<float>() + iv.numel());
      m.density_a.assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
      m.density_c.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
    members.push_back(std::move(m));
  }
  return std::make_unique<FusedScorer>(impl.meta.architecture(), impl.normaliser,
                                       std::move(members));
}

namespace {

// Copies a [N] or [N, d] float tensor into a vector.
void ToVector(const torch::Tensor& t, std::vector<float>* v) {
  auto c = t.to(torch::kCPU).contiguous();
  v->resize(static_cast<size_t>(c.numel()));
  std::memcpy(v->data(), c.data_ptr<float>(), v->size() * sizeof(float));
}

// NON_FINITE naming the first record with a NaN or Inf; the culprit is
// looked for only when the scan found one.
Status NonFiniteError(const pb::BundleMeta& meta, const float* rows, size_t n) {
  const size_t d = meta.dim();
  for (size_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(rows[i])) {
      return Status(pb::NON_FINITE, "record " + std::to_string(i / d) + ", feature '" +
                                        meta.feature_names(static_cast<int>(i % d)) +
                                        "' is not a finite number");
    }
  }
  return Status::OK();
}

Status CheckFinite(const pb::BundleMeta& meta, const float* rows, size_t n) {
  if (AllFinite(rows, n * meta.dim())) return Status::OK();
  return NonFiniteError(meta, rows, n);
}

// Copies floats with the worker pool's threads, checking on the way that
// they are finite (a GPU batch of 64k records is 10 MB: one thread would
// take longer than the transfer and the forward pass together).
bool CopyFinite(const float* from, float* to, size_t count) {
  constexpr size_t kChunk = 64 * 1024;
  const size_t chunks = (count + kChunk - 1) / kChunk;
  std::atomic<bool> finite{true};
  WorkerPool::Instance().Run(chunks, [&](size_t c) {
    const size_t begin = c * kChunk;
    const size_t len = std::min(kChunk, count - begin);
    std::memcpy(to + begin, from + begin, len * sizeof(float));
    if (!AllFinite(to + begin, len)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// Normaliser::Apply over n rows with the worker pool's threads: a quantile
// map costs about 0.5 us a 38-feature row, which one thread would spend
// serially on a 64k-record GPU batch.
void ApplyParallel(const Normaliser& normaliser, const float* rows, size_t n, float* out) {
  constexpr size_t kRows = 2048;
  const size_t d = normaliser.dim();
  WorkerPool::Instance().Run((n + kRows - 1) / kRows, [&](size_t c) {
    const size_t begin = c * kRows;
    normaliser.Apply(rows + begin * d, out + begin * d, std::min(kRows, n - begin));
  });
}

// The normalised records as an [n, d] tensor on the model's device, or
// NON_FINITE. For a GPU the raw rows are staged in pinned host memory a
// slice at a time, each slice's asynchronous copy overlapping the staging
// of the next, and normalised there, in double as Normaliser::Apply does.
Status Normalised(const Model::Impl& impl, const float* rows, size_t n, torch::Tensor* x) {
  const int64_t d = static_cast<int64_t>(impl.meta.dim());
  const std::vector<int64_t> shape = {static_cast<int64_t>(n), d};
  // A quantile normaliser (knots and a search per value) runs on the host
  // for a GPU too.
  if (impl.device.is_cpu() || !impl.normaliser.affine()) {
    ANOMALYD_RETURN_IF_ERROR(CheckFinite(impl.meta, rows, n));
    auto host = torch::empty(
        shape, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(!impl.device.is_cpu()));
    ApplyParallel(impl.normaliser, rows, n, host.data_ptr<float>());
    *x = impl.device.is_cpu() ? host : host.to(impl.device, /*non_blocking=*/false);
    return Status::OK();
  }
  constexpr size_t kSliceRows = 16 * 1024;
  auto raw = torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat32).device(impl.device));
  bool finite = true;
  for (size_t begin = 0; begin < n; begin += kSliceRows) {
    const int64_t len = static_cast<int64_t>(std::min(kSliceRows, n - begin));
    // The caching host allocator keeps a freed slice until its copy is done.
    auto host =
        torch::empty({len, d}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
    finite &= CopyFinite(rows + begin * static_cast<size_t>(d), host.data_ptr<float>(),
                         static_cast<size_t>(host.numel()));
    raw.narrow(0, static_cast<int64_t>(begin), len).copy_(host, /*non_blocking=*/true);
  }
  if (!finite) return NonFiniteError(impl.meta, rows, n);
  *x = raw.to(torch::kFloat64)
           .sub_(impl.device_offset)
           .div_(impl.device_scale)
           .clamp_(-Normaliser::kClip, Normaliser::kClip)
           .to(torch::kFloat32);
  return Status::OK();
}

// Device results to the host in one copy: rec, kl, score and each score's
// lower-bound position in the holdout (for the p-value), then the density
// term when the model has one, then the contributions when asked for.
void CollectFromDevice(const Model::Impl& impl, const BatchTerms& terms, const torch::Tensor& score,
                       bool contributions, ScoreOutput* out) {
  const int64_t n = score.size(0);
  const int64_t holdout = impl.device_holdout.numel();
  auto below = holdout > 0 ? torch::searchsorted(impl.device_holdout, score).to(torch::kFloat32)
                           : torch::zeros_like(score);
  std::vector<torch::Tensor> parts = {terms.reconstruction, terms.kl, score, below};
  const bool density = terms.density.defined();
  if (density) parts.push_back(terms.density);
  if (contributions) parts.push_back(terms.contributions.reshape({-1}));
  auto packed = torch::cat(parts);
  auto host = torch::empty(packed.sizes(),
                           torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
  host.copy_(packed);
  const float* h = host.data_ptr<float>();
  out->reconstruction.assign(h, h + n);
  out->kl.assign(h + n, h + 2 * n);
  out->score.assign(h + 2 * n, h + 3 * n);
  out->p_value.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    out->p_value[static_cast<size_t>(i)] =
        holdout > 0 ? static_cast<double>(holdout - static_cast<int64_t>(h[3 * n + i])) /
                          static_cast<double>(holdout)
                    : std::nan("");
  }
  const int64_t after = density ? 5 * n : 4 * n;
  if (density) out->density.assign(h + 4 * n, h + after);
  if (contributions) {
    out->contributions.assign(h + after, h + host.numel());
  }
}

}  // namespace

Status Model::Score(const float* rows, size_t n, const ScoreOptions& options,
                    ScoreOutput* out) const {
  *out = ScoreOutput();
  if (n == 0) return Status::OK();
  const uint32_t samples = options.samples ? options.samples : impl_->meta.score_samples();
  if (impl_->fused && samples <= 1 && !options.libtorch) {
    if (!options.finite_checked) {
      ANOMALYD_RETURN_IF_ERROR(CheckFinite(impl_->meta, rows, n));
    }
    out->reconstruction.resize(n);
    out->kl.resize(n);
    out->score.resize(n);
    out->p_value.resize(n);
    if (options.contributions) out->contributions.resize(n * dim());
    const bool density = impl_->meta.architecture().density_weight() > 0;
    if (density) out->density.resize(n);
    impl_->fused->Score(
        rows, n, out->reconstruction.data(), out->kl.data(), out->score.data(),
        options.contributions ? out->contributions.data() : nullptr,
        [&](size_t begin, size_t end) { FillPValues(out, begin, end); },
        density ? out->density.data() : nullptr);
    return Status::OK();
  }
  try {
    c10::InferenceMode guard;
    torch::Tensor x;
    ANOMALYD_RETURN_IF_ERROR(Normalised(*impl_, rows, n, &x));
    c10::optional<at::Generator> gen;
    if (samples > 1) gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
    BatchTerms terms =
        ScoreBatch(impl_->members, x, samples, options.contributions, gen, impl_->densities);
    auto score = CombinedScore(terms, impl_->meta.architecture());
    if (!impl_->device.is_cpu()) {
      CollectFromDevice(*impl_, terms, score, options.contributions, out);
      return Status::OK();
    }
    ToVector(terms.reconstruction, &out->reconstruction);
    ToVector(terms.kl, &out->kl);
    ToVector(score, &out->score);
    if (terms.density.defined()) ToVector(terms.density, &out->density);
    if (options.contributions) ToVector(terms.contributions, &out->contributions);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("scoring failed: ") + e.what());
  }
  FillPValues(out);
  return Status::OK();
}

namespace {

// p-values of m <= kLanes scores against the ascending holdout h: the
// share of h at or above each score. Lower bounds in lockstep, so the
// lanes' cache misses overlap instead of queueing (the daemon asks this for
// every record it scores). The step is masked arithmetic: written as a
// conditional, GCC emitted a compare and branch per lane and level that
// mispredicted half the time (105 ns a record against 21 ns now, over
// 20,000 holdout scores).
constexpr size_t kLanes = 8;
void PValues(const float* h, size_t size, const float* score, size_t m, double* p) {
  size_t at[kLanes];
  float s[kLanes];
  for (size_t k = 0; k < kLanes; ++k) {
    at[k] = 0;
    s[k] = score[k < m ? k : 0];
  }
  for (size_t len = size; len > 1;) {
    const size_t half = len / 2;
    for (size_t k = 0; k < kLanes; ++k) {
      const size_t go = static_cast<size_t>(h[at[k] + half - 1] < s[k]);
      at[k] += half & (size_t{0} - go);
    }
    len -= half;
  }
  for (size_t k = 0; k < m; ++k) {
    const size_t below = at[k] + (h[at[k]] < s[k] ? 1 : 0);
    p[k] = static_cast<double>(size - below) / static_cast<double>(size);
  }
}

}  // namespace

double Model::PValue(float score) const {
  const auto& h = impl_->meta.holdout_scores();
  if (h.empty()) return std::nan("");
  double p;
  PValues(h.data(), static_cast<size_t>(h.size()), &score, 1, &p);
  return p;
}

void Model::FillPValues(ScoreOutput* out) const {
  out->p_value.resize(out->score.size());
  FillPValues(out, 0, out->score.size());
}

void Model::FillPValues(ScoreOutput* out, size_t begin, size_t end) const {
  const auto& h = impl_->meta.holdout_scores();
  if (h.empty()) {
    std::fill(out->p_value.begin() + begin, out->p_value.begin() + end, std::nan(""));
    return;
  }
  for (size_t i = begin; i < end; i += kLanes) {
    PValues(h.data(), static_cast<size_t>(h.size()), out->score.data() + i,
            std::min(kLanes, end - i), out->p_value.data() + i);
  }
}

Status Model::Sample(size_t n, uint64_t seed, Matrix* out, bool draws) const {
  const bool bernoulli = impl_->meta.architecture().likelihood() == pb::BERNOULLI;
  if (draws && !bernoulli) {
    return Status::InvalidArgument("draws need a BERNOULLI model; this one's likelihood is " +
                                   pb::Likelihood_Name(impl_->meta.architecture().likelihood()));
  }
  try {
    c10::InferenceMode guard;
    Vae vae = impl_->members.front();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto z = torch::randn({static_cast<int64_t>(n),
                           static_cast<int64_t>(impl_->meta.architecture().latent_dim())},
                          gen, torch::kFloat32)
                 .to(impl_->device);
    auto decoded = vae->Decode(z);
    if (bernoulli) decoded = decoded.sigmoid();
    if (draws) {
      // On the CPU, after the latent draws from the same generator, so a
      // seed gives the same records on any device.
      auto u = torch::rand(decoded.sizes(), gen, torch::kFloat32);
      decoded = (u < decoded.to(torch::kCPU)).to(torch::kFloat32);
    }
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

Status Model::Encode(const float* rows, size_t n, Matrix* out, Matrix* logvar) const {
  try {
    c10::InferenceMode guard;
    torch::Tensor x;
    ANOMALYD_RETURN_IF_ERROR(Normalised(*impl_, rows, n, &x));
    Vae vae = impl_->members.front();
    auto [mu, lv] = vae->Encode(x);
    Matrix m(n, static_cast<size_t>(mu.size(1)));
    ToVector(mu, &m.data);
    if (logvar) {
      Matrix v(n, static_cast<size_t>(lv.size(1)));
      ToVector(lv, &v.data);
      *logvar = std::move(v);
    }
    *out = std::move(m);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("encoding failed: ") + e.what());
  }
  return Status::OK();
}

}  // namespace anomalyd
