// Model::Train: splits the baseline, fits the normaliser, trains each VAE of
// the ensemble with early stopping, and sets the threshold from holdout
// scores.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <string>

#include "common/clock.h"
#include "model/model_impl.h"
#include "proto/utf8.h"

namespace anomalyd {
namespace {

// Fewer baseline rows than this cannot give a train, validation and
// holdout split that mean anything.
constexpr size_t kMinBaselineRows = 20;

// Derived epoch count: enough epochs for about kTargetSteps optimiser steps,
// within [kMinEpochs, kMaxEpochs]; early stopping usually ends sooner.
constexpr double kTargetSteps = 6000;
constexpr uint32_t kMinEpochs = 20;
constexpr uint32_t kMaxEpochs = 200;

// A validation loss must improve by this relative amount to reset patience.
constexpr double kMinRelativeImprovement = 1e-4;
// ... and, with the learned-variance Gaussian, by at least this many nats
// per feature: its loss (a full negative log-likelihood) can sit near zero
// or below, where a relative tolerance means nothing. (On its own this did
// not end satimage-2's 200 epochs; the closed-form variance step in
// TrainMember did: 101 epochs, 13.6 s -> 8.6 s.)
constexpr double kMinLearnedImprovementPerFeature = 1e-3;

// Holdout scores kept in the bundle: more than enough for any quantile a
// threshold needs, small enough to keep bundles light.
constexpr size_t kMaxStoredHoldoutScores = 20000;

Status ValidateOptions(const TrainOptions& o) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (o.batch_size == 0) return bad("training.batch_size must be >= 1");
  if (!(o.learning_rate > 0)) return bad("training.learning_rate must be > 0");
  if (!(o.weight_decay >= 0)) return bad("training.weight_decay must be >= 0");
  if (!(o.validation_split >= 0 && o.validation_split < 0.5)) {
    return bad("training.validation_split must be in [0, 0.5)");
  }
  if (!(o.holdout_split > 0 && o.holdout_split < 0.5)) {
    return bad("training.holdout_split must be in (0, 0.5)");
  }
  const ModelOptions& m = o.model;
  if (m.ensemble < 1 || m.ensemble > 16) {
    return bad("model.ensemble must be in [1, 16]");
  }
  if (m.samples < 1 || m.samples > 1000) {
    return bad("model.samples must be in [1, 1000]");
  }
  if (!(m.beta >= 0) || !std::isfinite(m.beta)) {
    return bad("model.beta must be >= 0");
  }
  if (!std::isfinite(m.score_beta)) {
    return bad("model.score_beta must be finite (negative = derived)");
  }
  if (m.latent > 1024) return bad("model.latent must be <= 1024");
  for (uint32_t h : m.hidden) {
    if (h == 0 || h > 65536) return bad("model.hidden sizes must be in [1, 65536]");
  }
  if (m.likelihood == pb::BERNOULLI && m.normaliser != pb::MINMAX) {
    return bad("model.likelihood = \"bernoulli\" needs model.normaliser = "
               "\"minmax\" (it models values in [0, 1])");
  }
  if (!(m.logvar_min < m.logvar_max)) {
    return bad("model.logvar_min must be < model.logvar_max");
  }
  if (!IsValidUtf8(o.stream)) {
    return bad("training stream name is not valid UTF-8");
  }
  return Status::OK();
}

// Every name goes into BundleMeta.feature_names, a protobuf string: one
// that is not UTF-8 would make the bundle's metadata, and every status
// reply listing the names, fail to parse. Checked here whatever the names'
// source (a CSV header, a request, the reservoir).
Status ValidateFeatureNames(const std::vector<std::string>& names) {
  for (size_t j = 0; j < names.size(); ++j) {
    if (!IsValidUtf8(names[j])) {
      return Status::InvalidArgument("feature_names[" + std::to_string(j) +
                                     "] is not valid UTF-8");
    }
  }
  return Status::OK();
}

bool IsSet(const std::atomic<bool>* flag) {
  // Relaxed: the flag publishes no data, it only asks training to stop.
  return flag != nullptr && flag->load(std::memory_order_relaxed);
}

Status CancelledAt(uint32_t member, uint32_t epoch, int64_t batches_done,
                   int64_t batches) {
  return Status(pb::CANCELLED, "training cancelled in epoch " +
                                   std::to_string(epoch) + " of member " +
                                   std::to_string(member) + " after " +
                                   std::to_string(batches_done) + " of " +
                                   std::to_string(batches) + " batches");
}

// Seeded Fisher-Yates: std::shuffle's algorithm is unspecified, so a
// standard-library change could silently change every trained bundle.
void Shuffle(std::vector<int64_t>* v, std::mt19937_64* rng) {
  for (size_t i = v->size(); i > 1; --i) {
    const size_t j = static_cast<size_t>((*rng)() % i);
    std::swap((*v)[i - 1], (*v)[j]);
  }
}

torch::Tensor Rows(const Matrix& normalised, const std::vector<int64_t>& idx,
                   const torch::Device& device) {
  auto all = torch::from_blob(const_cast<float*>(normalised.data.data()),
                              {static_cast<int64_t>(normalised.rows),
                               static_cast<int64_t>(normalised.cols)},
                              torch::kFloat32);
  auto index = torch::tensor(idx, torch::kInt64);
  return all.index_select(0, index).to(device);
}

// Mean of reconstruction + beta * kl with the latent mean (deterministic).
double MeanLoss(Vae vae, const torch::Tensor& x, float beta) {
  torch::NoGradGuard no_grad;
  BatchTerms t = ScoreBatch({vae}, x, /*samples=*/1, false, c10::nullopt);
  return (t.reconstruction + beta * t.kl).mean().item<double>();
}

std::vector<torch::Tensor> CloneParameters(Vae vae) {
  std::vector<torch::Tensor> out;
  for (const auto& p : vae->parameters()) out.push_back(p.detach().clone());
  return out;
}

void RestoreParameters(Vae vae, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  auto params = vae->parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
}

struct Split {
  torch::Tensor train, val, holdout;
};

// The latent means and log-variances of kDensityCentres training rows
// (a seeded sample, the same for every member), per member, into meta.
Status AddLatentCentres(const std::vector<Vae>& members, const torch::Tensor& train,
                        uint64_t seed, pb::BundleMeta* meta) {
  c10::InferenceMode guard;
  const int64_t n = train.size(0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(seed ^ 0x6b6465ULL);
  Shuffle(&order, &rng);
  order.resize(std::min<size_t>(order.size(), kDensityCentres));
  auto rows = train.index_select(0, torch::tensor(order, torch::kInt64).to(train.device()));
  for (Vae vae : members) {
    auto [mu, logvar] = vae->Encode(rows);
    auto m = mu.to(torch::kCPU).contiguous(), lv = logvar.to(torch::kCPU).contiguous();
    pb::LatentCentres* c = meta->add_latent_centres();
    c->mutable_mean()->Assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
    c->mutable_log_var()->Assign(lv.data_ptr<float>(), lv.data_ptr<float>() + lv.numel());
    for (float v : c->mean()) {
      if (!std::isfinite(v)) return Status(pb::TRAINING_FAILED, "latent centres are not finite");
    }
  }
  return Status::OK();
}

// Trains one ensemble member. Fills *summary with its per-epoch losses.
// Looks at `cancel` before every mini-batch: an epoch over a large baseline
// takes seconds (8.6 s seen), too long for a shutdown to wait on.
Status TrainMember(const TrainOptions& o, const pb::Architecture& arch,
                   const Split& data, uint32_t member, uint32_t epochs,
                   torch::Device device, const ProgressFn& progress,
                   const std::atomic<bool>* cancel,
                   std::chrono::steady_clock::time_point start, Vae* out,
                   pb::TrainingSummary* summary) {
  const uint64_t seed = o.seed + member;
  torch::manual_seed(seed);
  Vae vae(arch);
  vae->to(device);
  torch::optim::Adam opt(vae->parameters(),
                         torch::optim::AdamOptions(o.learning_rate)
                             .weight_decay(o.weight_decay));
  std::mt19937_64 rng(seed);
  const int64_t n = data.train.size(0);
  const int64_t batches_per_epoch = (n + o.batch_size - 1) / o.batch_size;
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  const bool has_val = data.val.size(0) > 0;
  const torch::Tensor& val = has_val ? data.val : data.train;

  const double min_abs_improvement =
      arch.likelihood() == pb::GAUSSIAN_LEARNED
          ? kMinLearnedImprovementPerFeature * arch.input_dim()
          : 0.0;
  double best = INFINITY;
  uint32_t best_epoch = 0, since_best = 0;
  std::vector<torch::Tensor> best_params = CloneParameters(vae);
  for (uint32_t epoch = 1; epoch <= epochs; ++epoch) {
    const float beta =
        o.kl_warmup_epochs == 0
            ? o.model.beta
            : o.model.beta * std::min(1.0f, static_cast<float>(epoch) /
                                                static_cast<float>(o.kl_warmup_epochs));
    vae->train();
    Shuffle(&order, &rng);
    auto perm = torch::tensor(order, torch::kInt64).to(device);
    double sum = 0;
    int64_t batches = 0;
    for (int64_t b = 0; b < n; b += o.batch_size) {
      if (IsSet(cancel)) {
        return CancelledAt(member, epoch, batches, batches_per_epoch);
      }
      auto idx = perm.slice(0, b, std::min<int64_t>(n, b + o.batch_size));
      auto x = data.train.index_select(0, idx);
      auto [mu, logvar] = vae->Encode(x);
      auto z = mu + torch::randn_like(mu) * (0.5 * logvar).exp();
      auto rec = ReconstructionTerms(*vae, x, vae->Decode(z), /*full=*/true)
                     .sum(1);
      auto loss = (rec + beta * KlTerm(mu, logvar)).mean();
      opt.zero_grad();
      loss.backward();
      opt.step();
      sum += loss.item<double>();
      ++batches;
    }
    // The passes below go over the whole training or validation set.
    if (IsSet(cancel)) {
      return CancelledAt(member, epoch, batches, batches_per_epoch);
    }
    vae->eval();
    if (arch.likelihood() == pb::GAUSSIAN_LEARNED) {
      // Closed-form step for the decoder variances: given the decoder, the
      // maximum-likelihood variance of feature j is its mean squared
      // residual. Adam moves the log-variance by at most about the learning
      // rate per step; with this step satimage-2 stopped after 101 epochs
      // instead of running all 200.
      torch::NoGradGuard no_grad;
      auto residual = data.train - vae->Decode(vae->Encode(data.train).first);
      vae->decoder_logvar.copy_(residual.pow(2).mean(0).clamp_min(1e-12).log());
    }
    const double train_loss = sum / static_cast<double>(batches);
    const double val_loss = MeanLoss(vae, val, o.model.beta);
    if (!std::isfinite(train_loss) || !std::isfinite(val_loss)) {
      return Status(pb::TRAINING_FAILED,
                    "loss diverged at epoch " + std::to_string(epoch) +
                        " of member " + std::to_string(member) +
                        "; try a lower training.learning_rate");
    }
    summary->add_train_loss(static_cast<float>(train_loss));
    summary->add_val_loss(static_cast<float>(val_loss));
    summary->set_epochs_run(epoch);
    // Warm-up epochs use a smaller beta, so their losses are not comparable
    // with later ones: early stopping starts once beta is at full weight.
    const bool warm = epoch >= o.kl_warmup_epochs;
    if (warm && (best_epoch == 0 ||
                 val_loss < best - std::max(kMinRelativeImprovement * std::fabs(best),
                                        min_abs_improvement))) {
      best = val_loss;
      best_epoch = epoch;
      since_best = 0;
      best_params = CloneParameters(vae);
    } else if (warm) {
      ++since_best;
    }
    if (progress) {
      TrainProgress p;
      p.member = member;
      p.members = o.model.ensemble;
      p.epoch = epoch;
      p.max_epochs = epochs;
      p.train_loss = train_loss;
      p.val_loss = val_loss;
      p.seconds = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - start)
                      .count();
      if (!progress(p)) return Status(pb::CANCELLED, "training cancelled");
    }
    if (o.patience > 0 && since_best >= o.patience) break;
  }
  if (best_epoch > 0) RestoreParameters(vae, best_params);
  summary->set_best_epoch(best_epoch);
  *out = vae;
  return Status::OK();
}

}  // namespace

Status Model::Train(const TrainOptions& o, const Matrix& baseline,
                    const std::vector<std::string>& feature_names,
                    const ProgressFn& progress, std::unique_ptr<Model>* model,
                    const std::atomic<bool>* cancel) {
  ANOMALYD_RETURN_IF_ERROR(ValidateOptions(o));
  const size_t d = baseline.cols;
  if (d == 0 || feature_names.size() != d) {
    return Status::InvalidArgument("baseline has " + std::to_string(d) +
                                   " columns but " +
                                   std::to_string(feature_names.size()) +
                                   " feature names");
  }
  ANOMALYD_RETURN_IF_ERROR(ValidateFeatureNames(feature_names));
  if (baseline.rows < kMinBaselineRows) {
    return Status(pb::TRAINING_FAILED,
                  "baseline has " + std::to_string(baseline.rows) +
                      " rows; at least " + std::to_string(kMinBaselineRows) +
                      " are needed");
  }
  auto impl = std::make_unique<Impl>();
  ANOMALYD_RETURN_IF_ERROR(ParseDevice(o.device, &impl->device));
  // Minibatches of these small networks train faster on one CPU thread:
  // split over two, the threads wait on each other more than they work
  // (reference model, 100,000 x 38, 2 epochs: 1.75 s on one thread,
  // 11.7 s on two, on the 2-core VM). Restored when training ends.
  std::optional<ScopedTorchThreads> one_thread;
  if (impl->device.is_cpu()) one_thread.emplace(1);
  const auto start = std::chrono::steady_clock::now();
  try {
    // Split: holdout first, then validation, the rest trains.
    std::vector<int64_t> order(baseline.rows);
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    std::mt19937_64 split_rng(o.seed);
    Shuffle(&order, &split_rng);
    const size_t rows = baseline.rows;
    const size_t n_hold = std::max<size_t>(1, std::llround(rows * o.holdout_split));
    const size_t n_val = static_cast<size_t>(std::llround(rows * o.validation_split));
    std::vector<int64_t> hold(order.begin(), order.begin() + n_hold);
    std::vector<int64_t> val(order.begin() + n_hold, order.begin() + n_hold + n_val);
    std::vector<int64_t> train(order.begin() + n_hold + n_val, order.end());

    Matrix train_raw(train.size(), d);
    for (size_t i = 0; i < train.size(); ++i) {
      std::copy_n(baseline.row(static_cast<size_t>(train[i])), d, train_raw.row(i));
    }
    ANOMALYD_RETURN_IF_ERROR(
        Normaliser::Fit(train_raw, o.model.normaliser, &impl->normaliser));
    if (IsSet(cancel)) {
      return Status(pb::CANCELLED, "training cancelled before the first epoch");
    }
    Matrix normalised(rows, d);
    impl->normaliser.Apply(baseline.data.data(), normalised.data.data(), rows);
    Split split{Rows(normalised, train, impl->device),
                Rows(normalised, val, impl->device),
                Rows(normalised, hold, impl->device)};

    const ModelOptions resolved = ResolveArchitecture(o.model, d);
    const pb::Architecture arch = ToArchitecture(resolved, d);
    uint32_t epochs = o.max_epochs;
    if (epochs == 0) {
      const double steps = std::ceil(static_cast<double>(train.size()) /
                                     static_cast<double>(o.batch_size));
      epochs = static_cast<uint32_t>(std::clamp<double>(
          std::ceil(kTargetSteps / steps), kMinEpochs, kMaxEpochs));
    }

    pb::BundleMeta& meta = impl->meta;
    for (uint32_t m = 0; m < o.model.ensemble; ++m) {
      Vae vae{nullptr};
      pb::TrainingSummary summary;
      ANOMALYD_RETURN_IF_ERROR(TrainMember(o, arch, split, m, epochs,
                                           impl->device, progress, cancel,
                                           start, &vae, &summary));
      impl->members.push_back(vae);
      if (m == 0) *meta.mutable_training() = summary;  // member 0's curve
    }

    *meta.mutable_architecture() = arch;  // before the centres: BuildDensities reads it
    if (arch.density_weight() > 0) {
      ANOMALYD_RETURN_IF_ERROR(AddLatentCentres(impl->members, split.train, o.seed, &meta));
      impl->densities = BuildDensities(meta, impl->device);
    }

    // Scoring the holdout is one more pass over a share of the baseline.
    if (IsSet(cancel)) {
      return Status(pb::CANCELLED,
                    "training cancelled before scoring the holdout");
    }
    // Holdout scores: the baseline's own idea of "normal" scores.
    std::vector<float> holdout;
    {
      c10::InferenceMode guard;
      BatchTerms t = ScoreBatch(impl->members, split.holdout, resolved.samples,
                                false, at::make_generator<at::CPUGeneratorImpl>(o.seed),
                                impl->densities);
      auto s = CombinedScore(t, arch).to(torch::kCPU).contiguous();
      holdout.assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
    }
    std::sort(holdout.begin(), holdout.end());
    std::vector<double> hold_d(holdout.begin(), holdout.end());
    ANOMALYD_RETURN_IF_ERROR(
        ComputeThreshold(o.threshold, hold_d, meta.mutable_threshold()));
    if (holdout.size() > kMaxStoredHoldoutScores) {
      std::vector<float> thin(kMaxStoredHoldoutScores);
      for (size_t i = 0; i < thin.size(); ++i) {
        thin[i] = holdout[i * (holdout.size() - 1) / (thin.size() - 1)];
      }
      holdout.swap(thin);
    }

    meta.set_format_version(1);
    meta.set_version(o.version);
    meta.set_stream(o.stream);
    meta.set_dim(static_cast<uint32_t>(d));
    for (const auto& name : feature_names) meta.add_feature_names(name);
    impl->normaliser.ToProto(meta.mutable_normaliser());
    meta.set_seed(o.seed);
    meta.set_baseline_rows(rows);
    meta.set_created_us(WallMicros());
    (*meta.mutable_library_versions())["libtorch"] = TORCH_VERSION;
    (*meta.mutable_library_versions())["protobuf"] =
        std::to_string(GOOGLE_PROTOBUF_VERSION);
    meta.mutable_holdout_scores()->Assign(holdout.begin(), holdout.end());
    meta.set_score_samples(resolved.samples);
    meta.set_ensemble_size(o.model.ensemble);
    pb::TrainingSummary* ts = meta.mutable_training();
    ts->set_train_rows(train.size());
    ts->set_val_rows(val.size());
    ts->set_holdout_rows(hold.size());
    ts->set_seconds(std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count());
  } catch (const std::exception& e) {
    return Status(pb::TRAINING_FAILED, std::string("training failed: ") + e.what());
  }
  for (Vae vae : impl->members) vae->eval();
  *model = ModelAccess::Make(std::move(impl));
  return Status::OK();
}

}  // namespace anomalyd
