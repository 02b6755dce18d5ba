// The public API of the model library: train a VAE (or a small ensemble of
// them) on a baseline, score records, save and load bundles, generate
// synthetic normal records. No LibTorch in this header.
//
//   TrainOptions opts;                       // defaults documented below
//   std::unique_ptr<Model> m;
//   Status s = Model::Train(opts, baseline, names, progress, &m);
//   // or, stoppable from another thread within one mini-batch:
//   std::atomic<bool> cancel{false};
//   s = Model::Train(opts, baseline, names, progress, &m, &cancel);
//   s = m->Save("/var/lib/anomalyd/bundles/default/v1");
//   s = Model::Load("/var/lib/anomalyd/bundles/default/v1", "auto", &m);
//   ScoreOutput out;
//   s = m->Score(rows, n, ScoreOptions{}, &out);
#ifndef ANOMALYD_MODEL_MODEL_H_
#define ANOMALYD_MODEL_MODEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/matrix.h"
#include "model/threshold.h"
#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

// Architecture and scoring. A zero or empty field is derived from the data
// by the rules in ResolveArchitecture (model/model.cc).
// Training rows whose latent posteriors make the kernel density of the
// score's density term (ModelOptions::density_weight).
constexpr size_t kDensityCentres = 256;

struct ModelOptions {
  std::vector<uint32_t> hidden;  // encoder widths; empty = derived from d
  uint32_t latent = 0;           // latent dims; 0 = derived from d
  pb::Activation activation = pb::RELU;
  pb::Likelihood likelihood = pb::GAUSSIAN;
  float beta = 1.0f;             // KL weight in the training loss
  // KL weight in the score (stored in the bundle as Architecture.beta).
  // Negative = derived (ResolveArchitecture): 2 * beta for GAUSSIAN, whose
  // reconstruction term is the squared error, i.e. twice the unit-variance
  // Gaussian negative log-likelihood, so the score is twice the negative
  // ELBO; beta for the other likelihoods (their terms are proper NLLs).
  float score_beta = -1.0f;
  // Weight of the latent density term in the score (0 = off): the KL's
  // posterior-variance part plus -log of a kernel density of the latent
  // mean over kDensityCentres training rows (bench/RESULTS.md, detection
  // quality, rounds 3 and 4).
  float density_weight = 2.0f;
  pb::NormaliserKind normaliser = pb::AUTO_QUANTILE;
  uint32_t ensemble = 1;         // VAEs trained with seeds seed, seed+1, ...
  uint32_t samples = 1;          // scoring: 1 = latent mean, L > 1 = MC draws
  // Encoder log-variance clamp: exp(10) and exp(-10) keep every score finite
  // for any finite input while leaving the useful range untouched.
  float logvar_min = -10.0f;
  float logvar_max = 10.0f;
};

struct TrainOptions {
  ModelOptions model;
  uint32_t max_epochs = 0;       // 0 = derived from the row count
  uint32_t batch_size = 128;
  double learning_rate = 1e-3;   // Adam
  double weight_decay = 0.0;     // Adam's L2 term
  double validation_split = 0.1; // share of rows for early stopping
  double holdout_split = 0.2;    // share of rows for threshold and p-values
  uint32_t patience = 10;        // epochs without val improvement, then stop
  uint32_t kl_warmup_epochs = 0; // beta ramps from 0 over this many epochs
  uint64_t seed = 42;            // same seed + data => same bundle (CPU)
  std::string device = "auto";   // auto | cpu | cuda | cuda:K
  ThresholdOptions threshold;    // applied to the holdout scores
  uint32_t version = 1;          // recorded in the bundle metadata
  std::string stream = "default";
};

// One training report per epoch; return false to cancel training (seen at
// the end of the epoch; Model::Train's `cancel` flag is seen sooner).
struct TrainProgress {
  uint32_t member = 0;           // ensemble member being trained
  uint32_t members = 1;
  uint32_t epoch = 0;            // 1-based
  uint32_t max_epochs = 0;
  double train_loss = 0;
  double val_loss = 0;
  double seconds = 0;            // since training started
};
using ProgressFn = std::function<bool(const TrainProgress&)>;

struct ScoreOptions {
  bool contributions = false;    // fill ScoreOutput::contributions
  uint32_t samples = 0;          // 0 = the bundle's default
  uint64_t seed = 0;             // for MC draws; same seed => same scores
  // Score through LibTorch even where the fused CPU path applies (tests
  // and benchmarks compare the two).
  bool libtorch = false;
  // The caller has checked that every value is finite (the daemon validates
  // each request): the fused CPU path skips its own pass over the rows.
  bool finite_checked = false;
};

// Per-record results of Model::Score, each vector of length n.
struct ScoreOutput {
  std::vector<float> reconstruction;
  std::vector<float> kl;
  // reconstruction + score_beta * kl + density_weight * density, where
  // score_beta is Architecture.beta and density_weight
  // Architecture.density_weight of meta().architecture(): CombineScore in
  // model/score_formula.h, the one definition both scoring paths use.
  std::vector<float> score;
  std::vector<double> p_value;       // share of holdout scores >= score
  // The latent density term (averaged over the ensemble, as the other
  // terms are) when Architecture.density_weight > 0; empty when the weight
  // is 0 (the term is then not computed and adds nothing to the score).
  std::vector<float> density;
  // n x d row-major when requested: each feature's non-negative part of the
  // reconstruction term (squared error; for the learned-variance Gaussian
  // the variance-weighted squared error; for Bernoulli the cross-entropy).
  std::vector<float> contributions;
};

// A trained model in memory: normaliser, VAE ensemble, metadata.
// Thread-safe: const methods may be called from many threads at once.
class Model {
 public:
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Trains on `baseline` (raw values, rows x d) whose columns are named
  // `feature_names`. Splits off validation and holdout rows (seeded),
  // fits the normaliser on the training rows, trains each ensemble member
  // with early stopping, scores the holdout and sets the threshold from it.
  // `progress` may be null. `cancel`, when non-null, may be set from any
  // thread; training checks it before every mini-batch and between the
  // other long steps, so it stops within one mini-batch (the flag is not
  // owned and must outlive the call). Same seed, data and options give the
  // same bundle whether or not a flag is passed.
  // CANCELLED when progress returns false or *cancel is set (the message
  // says where: member, epoch and batches done), TRAINING_FAILED when too
  // few rows or the loss diverges, INVALID_ARGUMENT for bad options or data
  // (a feature name or options.stream that is not valid UTF-8 included: both
  // are stored as protobuf strings). On failure *model is untouched.
  static Status Train(const TrainOptions& options, const Matrix& baseline,
                      const std::vector<std::string>& feature_names,
                      const ProgressFn& progress, std::unique_ptr<Model>* model,
                      const std::atomic<bool>* cancel = nullptr);

  // Loads the bundle directory `dir` onto `device` (auto|cpu|cuda[:K]).
  // NOT_FOUND when missing, CORRUPT for a truncated, damaged or foreign
  // bundle, INVALID_ARGUMENT for a bad device. Never throws.
  static Status Load(const std::string& dir, const std::string& device,
                     std::unique_ptr<Model>* model);

  // Writes the bundle to `dir` atomically: into a temporary sibling, then
  // renamed into place (an existing bundle there is replaced whole).
  Status Save(const std::string& dir) const;

  // Scores n records of dim() raw values each. NON_FINITE names the first
  // record with a NaN/Inf. n == 0 yields empty outputs.
  Status Score(const float* rows, size_t n, const ScoreOptions& options,
               ScoreOutput* out) const;

  // n synthetic normal records in raw units: z ~ N(0, I) decoded (the
  // decoder mean), using ensemble member 0. For a BERNOULLI model the
  // decoder mean is each feature's probability of being at the top of its
  // baseline range (MINMAX maps it back to min + p * (max - min)), not a
  // record that could occur; with `draws` each feature is instead drawn
  // from that Bernoulli (seeded by `seed` too), giving the baseline's min
  // or max. INVALID_ARGUMENT for `draws` on any other likelihood.
  Status Sample(size_t n, uint64_t seed, Matrix* out, bool draws = false) const;

  // Latent means of n raw records (n x latent), ensemble member 0, and
  // when `logvar` is not null the encoder's clamped log-variances (same
  // shape). NON_FINITE as Score.
  Status Encode(const float* rows, size_t n, Matrix* out,
                Matrix* logvar = nullptr) const;

  // p-value of a score against the holdout scores.
  double PValue(float score) const;

  // Recomputes the threshold from the stored holdout scores with other
  // options (no retraining); updates metadata on success.
  Status Recalibrate(const ThresholdOptions& options);

  const pb::BundleMeta& meta() const;
  size_t dim() const;
  float threshold() const;
  std::string device() const;  // e.g. "cpu", "cuda:0"
  bool on_cpu() const;

  struct Impl;  // model/model_impl.h; LibTorch lives there

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  void FillPValues(ScoreOutput* out) const;
  void FillPValues(ScoreOutput* out, size_t begin, size_t end) const;  // p_value sized
  std::unique_ptr<Impl> impl_;
  friend struct ModelAccess;
};

// Architecture actually used for `d` features given `options` (derivation
// rules for empty hidden / zero latent). Exposed for tests and docs.
ModelOptions ResolveArchitecture(const ModelOptions& options, size_t d);

// Sizes LibTorch's intra-op thread pool and, when LibTorch runs on OpenBLAS,
// OpenBLAS's own pool, which at::set_num_threads does not reach (two
// busy-waiting pools on the same cores wreck large batches). n = 0 uses
// the number of online cores.
void ConfigureThreads(int n);

// Parses names used in config files and on command lines.
Status ParseActivation(const std::string& s, pb::Activation* out);
Status ParseLikelihood(const std::string& s, pb::Likelihood* out);
Status ParseNormaliserKind(const std::string& s, pb::NormaliserKind* out);
Status ParseThresholdMethod(const std::string& s, pb::ThresholdMethod* out);

}  // namespace anomalyd

#endif  // ANOMALYD_MODEL_MODEL_H_
