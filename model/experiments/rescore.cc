// Rescoring experiment: other score formulas on already trained bundles.
//
//   anomalyd_model_rescore BUNDLE TRAIN.csv TEST.csv NAME
//
// BUNDLE is one kept by `bench/quality.sh --keep DIR` (DIR/NAME), trained
// on TRAIN.csv with the default holdout and validation shares; TEST.csv has
// a label column. The tool redoes Model::Train's seeded split of TRAIN.csv
// (holdout first, then validation, the rest trains: keep in step with
// model/trainer.cc), runs ensemble member 0 through LibTorch on the
// training, holdout and test rows, and computes per-record terms:
//
//   rec     squared reconstruction error of the latent mean (the score's)
//   kl      KL(q(z|x) || N(0, I)) (the score's; weight 2 by default)
//   var     its posterior-variance part, 0.5 sum(exp(lv) - 1 - lv)
//   maha    Mahalanobis distance of mu under a Gaussian fitted to the
//           training rows' aggregate posterior (mean of mu; covariance
//           Cov(mu) + mean posterior variance)
//   maha_r  the same with Cov(mu) + 1% of its mean variance as a ridge
//   klagg   KL(q(z|x) || that fitted Gaussian)
//   kde     -log of the aggregate posterior (1/N) sum_i q(z | x_i) at mu
//           over every training row (a kernel density of the latent means)
//   kde256  the same over 256 training rows (seeded subsample)
//   gmm32   -log of a 32-component full-covariance Gaussian mixture: k-means
//           of mu, each cluster's Cov(mu) + mean posterior variance
//   gmm64d  64 components, diagonal covariances
//   ecod    sum over features of -log of the smaller empirical tail
//           probability of the normalised value among the training rows
//           ((count + 1) / (N + 1)), as ECOD (Li et al., TKDE 2022) does
//   recs    squared residuals divided by each feature's mean squared
//           training residual
//
// and, for each formula below (a weighted sum of terms), prints one line
// "NAME<TAB>formula<TAB>ROC-AUC<TAB>PR-AUC<TAB>F1/best F1", the F1 at the
// 0.99 quantile of the holdout scores under that formula. Metrics from
// model/metrics.cc. Uses the model library's private header: this is a
// measuring tool, not an example of the API.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/csv.h"
#include "model/metrics.h"
#include "model/model_impl.h"
#include "model/threshold.h"

namespace anomalyd {
namespace {

// Model::Train's defaults (TrainOptions::holdout_split, validation_split).
constexpr double kHoldoutSplit = 0.2;
constexpr double kValidationSplit = 0.1;

void Shuffle(std::vector<int64_t>* v, std::mt19937_64* rng) {
  for (size_t i = v->size(); i > 1; --i) {
    const size_t j = static_cast<size_t>((*rng)() % i);
    std::swap((*v)[i - 1], (*v)[j]);
  }
}

// Member 0's view of some rows, in double.
struct Rows {
  torch::Tensor x, res2, kl, mu, lv;  // [N, d], [N, d], [N], [N, L], [N, L]
};

Rows Run(Model::Impl& impl, const Matrix& raw) {
  auto x = torch::empty(
      {static_cast<int64_t>(raw.rows), static_cast<int64_t>(raw.cols)},
      torch::kFloat32);
  impl.normaliser.Apply(raw.data.data(), x.data_ptr<float>(), raw.rows);
  Vae vae = impl.members.front();
  auto [mu, lv] = vae->Encode(x);
  Rows r;
  r.x = x.to(torch::kFloat64);
  r.res2 = (x - vae->Decode(mu)).pow(2).to(torch::kFloat64);
  r.kl = KlTerm(mu, lv).to(torch::kFloat64);
  r.mu = mu.to(torch::kFloat64);
  r.lv = lv.to(torch::kFloat64);
  return r;
}

// A Gaussian mixture in latent space: per component log weight, mean,
// precision and log determinant.
struct Mixture {
  std::vector<double> log_w, log_det;
  std::vector<torch::Tensor> mean, precision;

  void Add(double w, const torch::Tensor& m, const torch::Tensor& cov) {
    log_w.push_back(std::log(w));
    mean.push_back(m);
    precision.push_back(torch::linalg::inv(cov));
    log_det.push_back(torch::logdet(cov).item<double>());
  }
  // -log density at each row of mu.
  torch::Tensor Nll(const torch::Tensor& mu) const {
    const double l = static_cast<double>(mu.size(1));
    std::vector<torch::Tensor> comp;
    for (size_t k = 0; k < mean.size(); ++k) {
      auto d = mu - mean[k];
      comp.push_back(log_w[k] - 0.5 * ((d.mm(precision[k]) * d).sum(1) +
                                       log_det[k] + l * std::log(2 * M_PI)));
    }
    return -torch::logsumexp(torch::stack(comp, 1), 1);
  }
};

// K clusters of the training mu (k-means++ seeding, Lloyd until stable);
// each becomes a component with covariance Cov(mu) + mean posterior
// variance of its rows (diagonal only when !full).
Mixture FitMixture(const Rows& t, int k_max, bool full, uint64_t seed) {
  const int64_t n = t.mu.size(0);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> centres{static_cast<int64_t>(rng() % n)};
  auto nearest = (t.mu - t.mu[centres[0]]).pow(2).sum(1);
  for (int k = 1; k < k_max; ++k) {
    auto cum = nearest.cumsum(0);
    const double u =
        std::uniform_real_distribution<double>(0, cum[-1].item<double>())(rng);
    int64_t i = torch::searchsorted(cum, torch::tensor({u}, torch::kFloat64))
                    .item<int64_t>();
    i = std::min(i, n - 1);
    centres.push_back(i);
    nearest = torch::minimum(nearest, (t.mu - t.mu[i]).pow(2).sum(1));
  }
  auto c = t.mu.index_select(0, torch::tensor(centres));
  torch::Tensor assign;
  for (int it = 0; it < 100; ++it) {
    auto d2 = (t.mu * t.mu).sum(1, true) - 2 * t.mu.mm(c.t()) +
              (c * c).sum(1).unsqueeze(0);
    auto a = d2.argmin(1);
    if (assign.defined() && a.equal(assign)) break;
    assign = a;
    for (int k = 0; k < k_max; ++k) {
      auto in = assign == k;
      if (in.any().item<bool>()) c[k] = t.mu.index({in}).mean(0);
    }
  }
  Mixture m;
  auto var = t.lv.exp();
  for (int k = 0; k < k_max; ++k) {
    auto in = assign == k;
    const int64_t nk = in.sum().item<int64_t>();
    if (nk == 0) continue;
    auto mu_k = t.mu.index({in});
    auto mean = mu_k.mean(0);
    auto d = mu_k - mean;
    auto cov = d.t().mm(d) / static_cast<double>(nk) +
               torch::diag(var.index({in}).mean(0));
    if (!full) cov = torch::diag(torch::diagonal(cov));
    m.Add(static_cast<double>(nk) / static_cast<double>(n), mean, cov);
  }
  return m;
}

// -log (1/M) sum_i N(mu; mu_i, diag exp(lv_i)) over the given kernels,
// in blocks of rows.
torch::Tensor KernelNll(const torch::Tensor& mu, const torch::Tensor& k_mu,
                        const torch::Tensor& k_lv) {
  const double l = static_cast<double>(mu.size(1));
  auto inv_var = (-k_lv).exp();
  auto a = k_mu * inv_var;
  auto c = 0.5 * (k_mu * k_mu * inv_var + k_lv).sum(1) +
           0.5 * l * std::log(2 * M_PI);
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < mu.size(0); b += 1024) {
    auto m = mu.slice(0, b, std::min<int64_t>(mu.size(0), b + 1024));
    auto q = -0.5 * (m * m).mm(inv_var.t()) + m.mm(a.t()) - c.unsqueeze(0);
    parts.push_back(std::log(static_cast<double>(k_mu.size(0))) -
                    torch::logsumexp(q, 1));
  }
  return torch::cat(parts);
}

using Terms = std::map<std::string, torch::Tensor>;

// Every term of the header comment for `r`, given the training rows `t`.
Terms AllTerms(const Rows& t, const Rows& r, const Mixture& gmm32,
               const Mixture& gmm64d, const torch::Tensor& sub256) {
  const int64_t l = t.mu.size(1);
  const double n = static_cast<double>(t.mu.size(0));
  Terms out;
  out["rec"] = r.res2.sum(1);
  out["kl"] = r.kl;
  out["var"] = 0.5 * (r.lv.exp() - 1 - r.lv).sum(1);
  auto mean = t.mu.mean(0);
  auto c = t.mu - mean;
  auto cov_mu = c.t().mm(c) / (n - 1);
  auto cov_agg = cov_mu + torch::diag(t.lv.exp().mean(0));
  auto ridge = cov_mu + 0.01 * torch::trace(cov_mu).item<double>() /
                            static_cast<double>(l) *
                            torch::eye(l, torch::kFloat64);
  auto d = r.mu - mean;
  auto maha = [&](const torch::Tensor& cov) {
    return (d.mm(torch::linalg::inv(cov)) * d).sum(1);
  };
  out["maha"] = maha(cov_agg);
  out["maha_r"] = maha(ridge);
  out["klagg"] =
      0.5 *
      ((r.lv.exp() * torch::diagonal(torch::linalg::inv(cov_agg))).sum(1) +
       out["maha"] - static_cast<double>(l) +
       torch::logdet(cov_agg).item<double>() - r.lv.sum(1));
  out["kde"] = KernelNll(r.mu, t.mu, t.lv);
  out["kde256"] = KernelNll(r.mu, t.mu.index_select(0, sub256),
                            t.lv.index_select(0, sub256));
  out["gmm32"] = gmm32.Nll(r.mu);
  out["gmm64d"] = gmm64d.Nll(r.mu);
  // ECOD: tail probabilities against the sorted training columns.
  auto sorted = std::get<0>(t.x.sort(0)).t().contiguous();  // [d, N]
  auto xt = r.x.t().contiguous();                           // [d, M]
  auto at_most = torch::searchsorted(sorted, xt, false, /*right=*/true)
                     .to(torch::kFloat64);
  auto below = torch::searchsorted(sorted, xt).to(torch::kFloat64);
  auto left = (at_most + 1) / (n + 1), right = (n - below + 1) / (n + 1);
  out["ecod"] = -torch::minimum(left, right).log().sum(0);
  out["recs"] = (r.res2 / t.res2.mean(0)).sum(1);
  return out;
}

// A formula: a weighted sum of terms, each optionally divided by its
// holdout standard deviation.
struct Formula {
  const char* label;
  std::vector<std::pair<const char*, double>> weights;
  bool standardise = false;
};

const std::vector<Formula>& Formulas() {
  static const std::vector<Formula> f = {
      {"rec + 2 kl (default)", {{"rec", 1}, {"kl", 2}}},
      {"rec + 2 kl + 0.5 maha", {{"rec", 1}, {"kl", 2}, {"maha", 0.5}}},
      {"rec + 2 kl + 1 maha", {{"rec", 1}, {"kl", 2}, {"maha", 1}}},
      {"rec + 2 kl + 2 maha", {{"rec", 1}, {"kl", 2}, {"maha", 2}}},
      {"rec + 2 kl + maha_r", {{"rec", 1}, {"kl", 2}, {"maha_r", 1}}},
      {"rec + maha + 2 var", {{"rec", 1}, {"maha", 1}, {"var", 2}}},
      {"rec + maha_r + 2 var", {{"rec", 1}, {"maha_r", 1}, {"var", 2}}},
      {"rec + 1 klagg", {{"rec", 1}, {"klagg", 1}}},
      {"rec + 2 klagg", {{"rec", 1}, {"klagg", 2}}},
      {"rec + 4 klagg", {{"rec", 1}, {"klagg", 4}}},
      {"maha", {{"maha", 1}}},
      {"rec + 2 (var + kde)", {{"rec", 1}, {"var", 2}, {"kde", 2}}},
      {"rec + 4 (var + kde)", {{"rec", 1}, {"var", 4}, {"kde", 4}}},
      {"rec + 2 kl + 2 (var + kde)",
       {{"rec", 1}, {"kl", 2}, {"var", 2}, {"kde", 2}}},
      {"rec + 2 kl + 2 (var + kde256)",
       {{"rec", 1}, {"kl", 2}, {"var", 2}, {"kde256", 2}}},
      {"rec + 2 kl + 3 (var + kde256)",
       {{"rec", 1}, {"kl", 2}, {"var", 3}, {"kde256", 3}}},
      {"rec + 2 kl + 4 (var + kde256)",
       {{"rec", 1}, {"kl", 2}, {"var", 4}, {"kde256", 4}}},
      {"rec + 2 kl + 2 kde256", {{"rec", 1}, {"kl", 2}, {"kde256", 2}}},
      {"rec + 2 (var + gmm32)", {{"rec", 1}, {"var", 2}, {"gmm32", 2}}},
      {"rec + 2 (var + gmm64d)", {{"rec", 1}, {"var", 2}, {"gmm64d", 2}}},
      {"rec + 2 kl + 1 (var + gmm32)",
       {{"rec", 1}, {"kl", 2}, {"var", 1}, {"gmm32", 1}}},
      {"ecod", {{"ecod", 1}}},
      {"rec + 2 kl + 0.5 ecod", {{"rec", 1}, {"kl", 2}, {"ecod", 0.5}}},
      {"rec + 2 kl + ecod", {{"rec", 1}, {"kl", 2}, {"ecod", 1}}},
      {"rec + 2 kl + 2 ecod", {{"rec", 1}, {"kl", 2}, {"ecod", 2}}},
      {"rec + 2 (var + kde) + ecod",
       {{"rec", 1}, {"var", 2}, {"kde", 2}, {"ecod", 1}}},
      {"rec + 2 (var + kde256) + ecod",
       {{"rec", 1}, {"var", 2}, {"kde256", 2}, {"ecod", 1}}},
      {"rec + 2 (var + gmm32) + ecod",
       {{"rec", 1}, {"var", 2}, {"gmm32", 2}, {"ecod", 1}}},
      {"rec + 2 (var + gmm64d) + ecod",
       {{"rec", 1}, {"var", 2}, {"gmm64d", 2}, {"ecod", 1}}},
      {"recs + 2 kl", {{"recs", 1}, {"kl", 2}}},
      {"rec / sd + kl / sd (holdout)", {{"rec", 1}, {"kl", 1}}, true},
  };
  return f;
}

std::vector<double> ToDoubles(const torch::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<double>(c.data_ptr<double>(),
                             c.data_ptr<double>() + c.numel());
}

int Main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BUNDLE TRAIN.csv TEST.csv NAME\n", argv[0]);
    return 2;
  }
  std::unique_ptr<Model> model;
  CsvTable train_csv, test_csv;
  Status s = Model::Load(argv[1], "cpu", &model);
  if (s.ok()) s = ReadCsv(argv[2], {}, &train_csv);
  if (s.ok()) s = ReadCsv(argv[3], {}, &test_csv);
  if (s.ok() && test_csv.labels.empty())
    s = Status::InvalidArgument("no labels");
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  Model::Impl& impl = ModelAccess::impl(*model);
  torch::NoGradGuard no_grad;

  const Matrix& all = train_csv.features;
  std::vector<int64_t> order(all.rows);
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 split_rng(impl.meta.seed());
  Shuffle(&order, &split_rng);
  const size_t n_hold =
      std::max<size_t>(1, std::llround(all.rows * kHoldoutSplit));
  const size_t n_val =
      static_cast<size_t>(std::llround(all.rows * kValidationSplit));
  auto pick = [&](size_t begin, size_t end) {
    Matrix m(end - begin, all.cols);
    for (size_t i = begin; i < end; ++i) {
      std::copy_n(all.row(static_cast<size_t>(order[i])), all.cols,
                  m.row(i - begin));
    }
    return m;
  };
  const Rows train = Run(impl, pick(n_hold + n_val, all.rows));
  const Rows hold = Run(impl, pick(0, n_hold));
  const Rows test = Run(impl, test_csv.features);

  const Mixture gmm32 = FitMixture(train, 32, /*full=*/true, /*seed=*/42);
  const Mixture gmm64d = FitMixture(train, 64, /*full=*/false, /*seed=*/42);
  std::vector<int64_t> sub(static_cast<size_t>(train.mu.size(0)));
  for (size_t i = 0; i < sub.size(); ++i) sub[i] = static_cast<int64_t>(i);
  std::mt19937_64 sub_rng(7);
  Shuffle(&sub, &sub_rng);
  sub.resize(std::min<size_t>(256, sub.size()));
  const auto sub256 = torch::tensor(sub);
  const Terms th = AllTerms(train, hold, gmm32, gmm64d, sub256);
  const Terms tt = AllTerms(train, test, gmm32, gmm64d, sub256);

  for (const Formula& f : Formulas()) {
    torch::Tensor h, t;
    for (const auto& [term, w] : f.weights) {
      const double scale =
          f.standardise ? w / th.at(term).std().item<double>() : w;
      h = h.defined() ? h + scale * th.at(term) : scale * th.at(term);
      t = t.defined() ? t + scale * tt.at(term) : scale * tt.at(term);
    }
    std::vector<double> hs = ToDoubles(h), ts = ToDoubles(t);
    // RESCORE_DUMP=DIR: the kernel-density formula's holdout and test scores
    // (the test ones with their label), for combining models offline.
    if (const char* dump = std::getenv("RESCORE_DUMP");
        dump != nullptr && std::string(f.label) == "rec + 2 kl + 2 (var + kde256)") {
      const std::string base = std::string(dump) + "/" + argv[4];
      if (FILE* o = std::fopen((base + ".hold").c_str(), "w")) {
        for (double v : hs) std::fprintf(o, "%.9g\n", v);
        std::fclose(o);
      }
      if (FILE* o = std::fopen((base + ".test").c_str(), "w")) {
        for (size_t i = 0; i < ts.size(); ++i)
          std::fprintf(o, "%.9g,%d\n", ts[i], int(test_csv.labels[i]));
        std::fclose(o);
      }
    }
    pb::ThresholdParams threshold;
    if (!ComputeThreshold(ThresholdOptions{}, hs, &threshold).ok()) return 1;
    const double best = BestF1Score(ts, test_csv.labels).f1;
    const double f1 = ConfusionAt(ts, test_csv.labels, threshold.value()).f1();
    std::printf("%s\t%s\t%.4f\t%.4f\t%.4f\n", argv[4], f.label,
                RocAuc(ts, test_csv.labels),
                AveragePrecision(ts, test_csv.labels),
                best > 0 ? f1 / best : 0);
  }
  return 0;
}

}  // namespace
}  // namespace anomalyd

int main(int argc, char** argv) { return anomalyd::Main(argc, argv); }
