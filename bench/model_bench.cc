// Model benchmark: scoring throughput without sockets and training time.
//
//   anomalyd_bench_model [--arch reference|default|both] [--engine
//       fused|libtorch|both] [--batches 1,16,256,1024,4096] [--seconds 2]
//       [--threads N] [--device cpu|cuda] [--train-rows 100000]
//       [--epochs 20] [--no-train]
//
// Data: a synthetic baseline of 38 features driven by 8 latent factors
// plus noise (seeded), so the trained weights look like real ones. The
// reference model is the one the performance targets name (one hidden
// layer of 128, latent 8); "default" is what ResolveArchitecture derives
// for 38 features. Training time is measured on the reference model with
// early stopping off, so every epoch runs. Prints one line per figure and
// a final table; nothing here is a pass/fail test.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/model.h"

namespace anomalyd {
namespace {

constexpr size_t kDim = 38;
constexpr size_t kFactors = 8;

Matrix SyntheticBaseline(size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> mix(kDim * kFactors);
  for (float& m : mix) m = g(rng);
  Matrix m(rows, kDim);
  std::vector<float> z(kFactors);
  for (size_t i = 0; i < rows; ++i) {
    for (float& v : z) v = g(rng);
    for (size_t j = 0; j < kDim; ++j) {
      float x = 0.1f * g(rng) + 5.0f * static_cast<float>(j % 3);
      for (size_t f = 0; f < kFactors; ++f) x += mix[j * kFactors + f] * z[f];
      m.at(i, j) = x;
    }
  }
  return m;
}

std::vector<std::string> Names() {
  std::vector<std::string> n;
  for (size_t j = 0; j < kDim; ++j) n.push_back("f" + std::to_string(j));
  return n;
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Row {
  std::string what;
  double value;
  std::string unit;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app("anomalyd model benchmark");
  std::string arch = "both", engine = "both", device = "cpu";
  std::vector<size_t> batches = {1, 16, 256, 1024, 4096};
  double seconds = 2.0;
  int threads = 0;
  size_t train_rows = 100000;
  uint32_t epochs = 20;
  bool no_train = false;
  app.add_option("--arch", arch, "reference | default | both");
  app.add_option("--engine", engine, "fused | libtorch | both (CPU only)");
  app.add_option("--batches", batches, "records per Score call")->delimiter(',');
  app.add_option("--seconds", seconds, "time per figure");
  app.add_option("--threads", threads, "scoring threads (0 = cores)");
  app.add_option("--device", device, "cpu | cuda[:K]");
  app.add_option("--train-rows", train_rows, "rows of the training baseline");
  app.add_option("--epochs", epochs, "training epochs (early stopping off)");
  app.add_flag("--no-train", no_train, "skip the training-time figure");
  // Unset: the product's defaults (ModelOptions).
  std::string normaliser;
  float density_weight = -1;
  app.add_option("--normaliser", normaliser,
                 "model.normaliser (standard | quantile | auto | ...; default: the model's)");
  app.add_option("--density-weight", density_weight,
                 "model.density_weight (0 = off; default: the model's)");
  CLI11_PARSE(app, argc, argv);

  ConfigureThreads(threads);
  std::vector<Row> table;
  const Matrix baseline = SyntheticBaseline(train_rows, 1);

  auto train = [&](bool reference, uint32_t max_epochs,
                   std::unique_ptr<Model>* m) {
    TrainOptions o;
    if (reference) {
      o.model.hidden = {128};
      o.model.latent = 8;
    }
    o.max_epochs = max_epochs;
    o.patience = max_epochs + 1;
    if (density_weight >= 0) o.model.density_weight = density_weight;
    if (!normaliser.empty()) {
      Status parsed = ParseNormaliserKind(normaliser, &o.model.normaliser);
      if (!parsed.ok()) return parsed;
    }
    o.device = device;
    return Model::Train(o, baseline, Names(), nullptr, m);
  };

  std::vector<std::pair<std::string, std::unique_ptr<Model>>> models;
  if (arch == "reference" || arch == "both") {
    std::unique_ptr<Model> m;
    const double t0 = Now(), c0 = CpuSeconds();
    Status s = train(true, no_train ? 1 : epochs, &m);
    if (!s.ok()) return Fail(s);
    if (!no_train) {
      const double wall = Now() - t0, cpu = CpuSeconds() - c0;
      std::printf("train reference %zux%zu, %u epochs: %.2f s wall, %.2f s CPU\n",
                  train_rows, kDim, epochs, wall, cpu);
      table.push_back({"train " + std::to_string(train_rows) + "x38, " +
                           std::to_string(epochs) + " epochs", wall, "s"});
    }
    models.emplace_back("reference", std::move(m));
  }
  if (arch == "default" || arch == "both") {
    std::unique_ptr<Model> m;
    Status s = train(false, 1, &m);
    if (!s.ok()) return Fail(s);
    models.emplace_back("default", std::move(m));
  }

  // A pool of rows at least as large as the largest batch.
  size_t pool_rows = 65536;
  for (size_t b : batches) pool_rows = std::max(pool_rows, b);
  const Matrix data = SyntheticBaseline(pool_rows, 2);
  const size_t pool = data.rows;
  for (auto& [name, model] : models) {
    std::ostringstream a;
    for (int i = 0; i < model->meta().architecture().hidden_size(); ++i) {
      a << model->meta().architecture().hidden(i) << "-";
    }
    a << "z" << model->meta().architecture().latent_dim();
    for (bool libtorch : {false, true}) {
      if (engine == (libtorch ? "fused" : "libtorch")) continue;
      if (!libtorch && device != "cpu") continue;  // fused is the CPU path
      const std::string eng = libtorch ? "libtorch" : "fused";
      for (size_t b : batches) {
        ScoreOptions opts;
        opts.libtorch = libtorch;
        ScoreOutput out;
        size_t at = 0, records = 0, calls = 0;
        auto once = [&] {
          if (at + b > pool) at = 0;
          const size_t n = b;
          Status s = model->Score(data.row(at), n, opts, &out);
          if (!s.ok() || out.score.size() != n) std::abort();
          at += n;
          records += n;
          ++calls;
        };
        for (int i = 0; i < 3; ++i) once();  // warm-up
        records = calls = 0;
        const double t0 = Now(), c0 = CpuSeconds();
        double t = t0;
        while (t - t0 < seconds) {
          once();
          if (calls % 8 == 0 || b >= 1024) t = Now();
        }
        t = Now();
        const double rate = static_cast<double>(records) / (t - t0);
        const double cpu = (CpuSeconds() - c0) / (t - t0);
        std::printf("score %-9s %-12s %-8s batch %5zu: %12.0f records/s  "
                    "%9.1f us/call  cpu %.2f cores\n",
                    name.c_str(), a.str().c_str(), eng.c_str(), b, rate,
                    1e6 * (t - t0) / static_cast<double>(calls), cpu);
        table.push_back({"score " + name + " " + eng + " batch " + std::to_string(b),
                         rate, "records/s"});
      }
    }
    std::printf("model %s on %s\n", name.c_str(), model->device().c_str());
  }
  std::printf("\n%-44s %14s\n", "figure", "value");
  for (const Row& r : table) {
    std::printf("%-44s %14.2f %s\n", r.what.c_str(), r.value, r.unit.c_str());
  }
  return 0;
}

}  // namespace anomalyd

int main(int argc, char** argv) { return anomalyd::Main(argc, argv); }
