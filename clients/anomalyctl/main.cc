// anomalyctl: the command line of anomalyd.
#include <CLI/CLI.hpp>

#include <iostream>

#include "clients/anomalyctl/offline.h"
#include "model/model.h"

int main(int argc, char** argv) {
  using namespace anomalyd;
  CLI::App app{"anomalyctl: train, score and evaluate anomalyd models"};
  app.require_subcommand(1);

  ctl::TrainArgs train;
  auto* t = app.add_subcommand("train", "Train a model bundle on a baseline CSV");
  t->add_option("--data", train.data, "Baseline CSV (normal records only)")->required();
  t->add_option("--out", train.out, "Bundle directory to write")->required();
  t->add_option("--config", train.config, "anomalyd.toml ([model], [training], [threshold])");
  t->add_option("--seed", train.seed, "Seed (overrides training.seed)");
  t->add_option("--device", train.device, "auto | cpu | cuda[:K] (overrides training.device)");
  t->add_flag("--quiet,-q", train.quiet, "No progress or summary");

  ctl::ScoreArgs score;
  auto* s = app.add_subcommand("score", "Score a CSV of records with a bundle");
  s->add_option("--model", score.model, "Bundle directory")->required();
  s->add_option("--data", score.data, "Records CSV ('-' for stdin)")->required();
  s->add_option("--out", score.out, "Output CSV ('-' for stdout)")->capture_default_str();
  s->add_option("--device", score.device, "auto | cpu | cuda[:K]")->capture_default_str();
  s->add_flag("--contributions", score.contributions,
              "Add each feature's contribution to the reconstruction term");

  ctl::EvalArgs eval;
  auto* e = app.add_subcommand("eval", "Evaluate a bundle on a labelled CSV");
  e->add_option("--model", eval.model, "Bundle directory")->required();
  e->add_option("--data", eval.data, "CSV with a 'label' column (1 = anomaly)")->required();
  e->add_option("--device", eval.device, "auto | cpu | cuda[:K]")->capture_default_str();
  e->add_flag("--json", eval.json, "Print JSON instead of a table");

  ctl::SampleArgs sample;
  auto* m = app.add_subcommand("sample", "Generate synthetic normal records");
  m->add_option("--model", sample.model, "Bundle directory")->required();
  m->add_option("-n", sample.n, "Number of records")->capture_default_str();
  m->add_option("--seed", sample.seed, "Seed")->capture_default_str();
  m->add_option("--out", sample.out, "Output CSV ('-' for stdout)")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  ConfigureThreads(0);

  Status st;
  if (*t) st = ctl::RunTrain(train);
  else if (*s) st = ctl::RunScore(score);
  else if (*e) st = ctl::RunEval(eval);
  else if (*m) st = ctl::RunSample(sample);
  if (!st.ok()) {
    std::cerr << "anomalyctl: " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}
