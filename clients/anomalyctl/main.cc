// anomalyctl: the command line of anomalyd. Offline commands work on CSV
// files and bundles; the others talk to a running daemon.
#include <CLI/CLI.hpp>
#include <iostream>

#include "clients/anomalyctl/offline.h"
#include "clients/anomalyctl/online.h"
#include "model/model.h"

int main(int argc, char** argv) {
  using namespace anomalyd;
  CLI::App app{"anomalyctl: train, score and evaluate anomalyd models; talk to anomalyd"};
  app.require_subcommand(1);
  // Options of the whole command (--endpoint, --timeout-ms, keys, ...) go
  // before or after the subcommand; subcommands inherit this.
  app.fallthrough();

  ctl::Endpoints ep;
  app.add_option("--endpoint", ep.score, "anomalyd score endpoint")->capture_default_str();
  app.add_option("--control", ep.control, "anomalyd control endpoint")->capture_default_str();
  app.add_option("--alerts", ep.alerts, "anomalyd alerts endpoint")->capture_default_str();
  app.add_option("--timeout-ms", ep.timeout_ms, "Reply timeout")->capture_default_str();
  std::string server_key, client_key;
  app.add_option("--server-key", server_key,
                 "The daemon's public key file (NAME.key), for endpoints with CURVE")
      ->envname("ANOMALYCTL_SERVER_KEY");
  app.add_option("--client-key", client_key,
                 "This client's secret key file (NAME.key_secret, mode 0600)")
      ->envname("ANOMALYCTL_CLIENT_KEY");

  ctl::TrainArgs train;
  auto* t = app.add_subcommand("train", "Train a model bundle on a baseline CSV (offline)");
  t->add_option("--data", train.data, "Baseline CSV (normal records only)")->required();
  t->add_option("--out", train.out, "Bundle directory to write")->required();
  t->add_option("--config", train.config, "anomalyd.toml ([model], [training], [threshold])");
  t->add_option("--seed", train.seed, "Seed (overrides training.seed)");
  t->add_option("--device", train.device, "auto | cpu | cuda[:K] (overrides training.device)");
  t->add_flag("--quiet,-q", train.quiet, "No progress or summary");

  ctl::ScoreArgs score;
  ctl::OnlineScoreArgs oscore;
  auto* s =
      app.add_subcommand("score", "Score a CSV: with --model offline, else by the running daemon");
  s->add_option("--model", score.model, "Bundle directory (offline scoring)");
  s->add_option("--data", score.data,
                "Records CSV ('-' for stdin); a 'timestamp' column is the event time in "
                "microseconds since the Unix epoch")
      ->required();
  s->add_option("--out", score.out, "Output CSV ('-' for stdout)")->capture_default_str();
  auto* score_device =
      s->add_option("--device", score.device, "auto | cpu | cuda[:K] (offline only)")
          ->capture_default_str();
  s->add_option("--stream", oscore.stream, "Stream (daemon)")->capture_default_str();
  s->add_option("--batch", oscore.batch, "Records per request (daemon)")->capture_default_str();
  s->add_flag("--contributions", score.contributions,
              "Add each feature's contribution to the reconstruction term");

  ctl::EvalArgs eval;
  auto* e = app.add_subcommand("eval", "Evaluate a bundle on a labelled CSV (offline)");
  e->add_option("--model", eval.model, "Bundle directory")->required();
  e->add_option("--data", eval.data, "CSV with a 'label' column (1 = anomaly)")->required();
  e->add_option("--device", eval.device, "auto | cpu | cuda[:K]")->capture_default_str();
  e->add_flag("--json", eval.json, "Print JSON instead of a table");

  ctl::SampleArgs sample;
  auto* m = app.add_subcommand("sample", "Generate synthetic normal records (offline)");
  m->add_option("--model", sample.model, "Bundle directory")->required();
  m->add_option("-n", sample.n, "Number of records")->capture_default_str();
  m->add_option("--seed", sample.seed, "Seed")->capture_default_str();
  m->add_option("--out", sample.out, "Output CSV ('-' for stdout)")->capture_default_str();
  m->add_flag("--draws", sample.draws,
              "Bernoulli models: 0/1 draws (seeded) instead of probabilities");

  ctl::EncodeArgs encode;
  auto* en = app.add_subcommand("encode", "Print each record's latent mean (offline)");
  en->add_option("--model", encode.model, "Bundle directory")->required();
  en->add_option("--data", encode.data, "Records CSV ('-' for stdin)")->required();
  en->add_option("--out", encode.out, "Output CSV ('-' for stdout)")->capture_default_str();
  en->add_option("--device", encode.device, "auto | cpu | cuda[:K]")->capture_default_str();
  en->add_flag("--logvar", encode.logvar, "Add the encoder's log-variances");

  bool json = false;
  auto* st = app.add_subcommand("status", "Streams, models, thresholds, training, storage");
  st->add_flag("--json", json, "Print JSON");

  ctl::QueryArgs query;
  auto* q = app.add_subcommand("query", "Query flagged anomalies");
  q->add_option("--since", query.since,
                "-1h, 30m, 2d; RFC 3339 (2026-11-25T10:00:00.250Z, +02:00 offsets; UTC "
                "without one); Unix seconds");
  q->add_option("--until", query.until, "Same forms as --since");
  q->add_flag("--event-time", query.event_time, "Filter on event time (default: scored time)");
  q->add_option("--stream", query.stream, "Only this stream");
  auto* min_score = q->add_option("--min-score", query.min_score, "Only scores >= this");
  q->add_option("--limit", query.limit, "Rows per page (default: the daemon's)");
  q->add_option("--cursor", query.cursor, "Continue after a previous page");
  q->add_option("--order", query.order, "time (newest first) | score | oldest")
      ->capture_default_str();
  q->add_option("--format", query.format, "table | json | csv")->capture_default_str();
  q->add_flag("--all", query.all, "Follow the cursor to the last page");

  ctl::RetrainArgs retrain;
  auto* r = app.add_subcommand("retrain", "Train a new model version while serving");
  r->add_option("--stream", retrain.stream, "Stream")->capture_default_str();
  r->add_option("--csv", retrain.csv, "Baseline CSV (read by the daemon)");
  r->add_flag("--from-reservoir", retrain.from_reservoir,
              "Use the stored sample of normal records");
  r->add_flag("--wait", retrain.wait, "Show progress until the new version serves");

  std::string models_stream;
  uint32_t rollback_to = 0;
  auto* ms = app.add_subcommand("models", "List model versions; 'models rollback --to N'");
  ms->add_option("--stream", models_stream, "Only this stream");
  ms->add_flag("--json", json, "Print JSON");
  auto* rb = ms->add_subcommand("rollback", "Serve an earlier version again");
  rb->add_option("--to", rollback_to, "Version")->required();

  ctl::CalibrateArgs cal;
  auto* c =
      app.add_subcommand("calibrate", "Recompute a stream's threshold from its holdout scores");
  c->add_option("--stream", cal.stream, "Stream")->capture_default_str();
  c->add_option("--method", cal.method, "pot | quantile | fixed")->capture_default_str();
  c->add_option("--contamination", cal.contamination, "quantile: share of anomalies");
  c->add_option("--risk", cal.risk, "pot: false-flag probability");
  c->add_option("--value", cal.value, "fixed: the threshold");
  c->add_flag("--force", cal.force,
              "fixed: apply a value even if it flags most of the model's normal holdout records");

  auto* rl = app.add_subcommand(
      "reload", "Make the daemon re-read its config (as SIGHUP) and print the outcome");

  std::string cancel_stream = "default";
  bool cancel_wait = false;
  auto* cn = app.add_subcommand("cancel", "Cancel a stream's running training (retrain)");
  cn->add_option("--stream", cancel_stream, "Stream")->capture_default_str();
  cn->add_flag("--wait", cancel_wait, "Return once the training has stopped");

  std::string tail_stream, tail_since;
  int64_t tail_count = 0;
  auto* tl = app.add_subcommand("tail", "Print alerts as they are published");
  tl->add_option("--stream", tail_stream, "Only this stream");
  tl->add_option("-n", tail_count, "Stop after this many (0: never)");
  tl->add_option("--since", tail_since,
                 "First print the stored anomalies scored since this time (as query --since)");

  std::string keygen_dir, keygen_name;
  auto* kg =
      app.add_subcommand("keygen", "Make a CURVE key pair: DIR/NAME.key, DIR/NAME.key_secret");
  kg->add_option("--out", keygen_dir, "Folder for the two files (made 0700 if missing)")
      ->required();
  kg->add_option("--name", keygen_name, "File name without extension (e.g. the host)")->required();

  CLI11_PARSE(app, argc, argv);

  Status result = LoadClientKeys(server_key, client_key, &ep.curve);
  if (!result.ok()) {
    std::cerr << "anomalyctl: " << result.ToString() << "\n";
    return 1;
  }
  if (*kg) {
    result = ctl::RunKeygen(keygen_dir, keygen_name);
  } else if (*t) {
    ConfigureThreads(0);
    result = ctl::RunTrain(train);
  } else if (*s && !score.model.empty()) {
    ConfigureThreads(0);
    result = ctl::RunScore(score);
  } else if (*s && score_device->count() > 0) {
    // The daemon scores on the device its config names: a client cannot
    // move it, and ignoring the option would mislead.
    result = Status::InvalidArgument(
        "score: --device applies to offline scoring (--model); the daemon scores on its "
        "own device ([training] device in its config, shown by 'anomalyctl status')");
  } else if (*s) {
    oscore.data = score.data;
    oscore.out = score.out;
    oscore.contributions = score.contributions;
    result = ctl::RunOnlineScore(ep, oscore);
  } else if (*e) {
    ConfigureThreads(0);
    result = ctl::RunEval(eval);
  } else if (*m) {
    result = ctl::RunSample(sample);
  } else if (*en) {
    ConfigureThreads(0);
    result = ctl::RunEncode(encode);
  } else if (*st) {
    result = ctl::RunStatus(ep, json);
  } else if (*q) {
    query.has_min_score = min_score->count() > 0;
    result = ctl::RunQuery(ep, query);
  } else if (*r) {
    result = ctl::RunRetrain(ep, retrain);
  } else if (*rb) {
    result = ctl::RunRollback(ep, models_stream.empty() ? "default" : models_stream, rollback_to);
  } else if (*ms) {
    result = ctl::RunModels(ep, models_stream, json);
  } else if (*c) {
    result = ctl::RunCalibrate(ep, cal);
  } else if (*rl) {
    result = ctl::RunReload(ep);
  } else if (*cn) {
    result = ctl::RunCancel(ep, cancel_stream, cancel_wait);
  } else if (*tl) {
    result = ctl::RunTail(ep, tail_stream, tail_since, tail_count);
  }
  if (!result.ok()) {
    std::cerr << "anomalyctl: " << result.ToString() << "\n";
    return 1;
  }
  return 0;
}
