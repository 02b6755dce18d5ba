#include "clients/anomalyctl/offline.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "clients/anomalyctl/csv_out.h"
#include "common/config.h"
#include "common/curve_keys.h"
#include "model/csv.h"
#include "model/metrics.h"
#include "model/model.h"

namespace anomalyd::ctl {
namespace {

// Records scored per call: large enough to amortise per-call overhead,
// small enough to keep memory flat on big files.
constexpr size_t kScoreChunk = 4096;

Status LoadModelAndData(const std::string& model_dir, const std::string& device,
                        const std::string& data, std::unique_ptr<Model>* model, CsvTable* table) {
  ANOMALYD_RETURN_IF_ERROR(Model::Load(model_dir, device, model));
  ANOMALYD_RETURN_IF_ERROR(ReadCsv(data, CsvOptions{}, table));
  std::vector<std::string> names((*model)->meta().feature_names().begin(),
                                 (*model)->meta().feature_names().end());
  return SelectFeatures(names, data, table);
}

Status ScoreAll(const Model& model, const Matrix& rows, bool contributions, ScoreOutput* all) {
  ScoreOptions opts;
  opts.contributions = contributions;
  *all = ScoreOutput();
  for (size_t begin = 0; begin < rows.rows; begin += kScoreChunk) {
    const size_t n = std::min(kScoreChunk, rows.rows - begin);
    ScoreOutput part;
    ANOMALYD_RETURN_IF_ERROR(model.Score(rows.row(begin), n, opts, &part)
                                 .WithContext("rows starting at " + std::to_string(begin + 1)));
    auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    append(all->reconstruction, part.reconstruction);
    append(all->kl, part.kl);
    append(all->score, part.score);
    append(all->p_value, part.p_value);
    append(all->density, part.density);
    append(all->contributions, part.contributions);
  }
  return Status::OK();
}

std::string Fmt(double v, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// Writes JSON object members; a value that is not finite (JSON has no NaN)
// is written as null followed by "<key>_reason": why it is undefined.
class JsonObject {
 public:
  explicit JsonObject(std::ostream& os) : os_(os) { os_ << "{"; }
  void Int(const std::string& key, long v) {
    Key(key);
    os_ << v;
  }
  void Number(const std::string& key, double v, const std::string& reason) {
    Key(key);
    if (std::isfinite(v)) {
      os_ << Fmt(v);
      return;
    }
    os_ << "null";
    Key(key + "_reason");
    os_ << '"' << reason << '"';  // our own text: no escaping needed
  }
  void End() { os_ << "}\n"; }

 private:
  void Key(const std::string& key) {
    os_ << (first_ ? "" : ", ") << '"' << key << "\": ";
    first_ = false;
  }
  std::ostream& os_;
  bool first_ = true;
};

}  // namespace

Status RunTrain(const TrainArgs& args) {
  Config config;
  if (!args.config.empty()) ANOMALYD_RETURN_IF_ERROR(LoadConfig(args.config, &config));
  TrainOptions opts = config.train;
  if (args.seed >= 0) opts.seed = static_cast<uint64_t>(args.seed);
  if (!args.device.empty()) opts.device = args.device;
  CsvTable table;
  ANOMALYD_RETURN_IF_ERROR(ReadCsv(args.data, CsvOptions{}, &table));
  const bool tty = ::isatty(STDERR_FILENO) && !args.quiet;
  ProgressFn progress = [&](const TrainProgress& p) {
    if (tty) {
      std::fprintf(stderr, "\rmodel %u/%u  epoch %u/%u  train %.4f  val %.4f  %.1fs   ",
                   p.member + 1, p.members, p.epoch, p.max_epochs, p.train_loss, p.val_loss,
                   p.seconds);
    }
    return true;
  };
  std::unique_ptr<Model> model;
  Status st = Model::Train(opts, table.features, table.feature_names, progress, &model);
  if (tty) std::fputs("\n", stderr);
  ANOMALYD_RETURN_IF_ERROR(st);
  ANOMALYD_RETURN_IF_ERROR(model->Save(args.out));
  if (!args.quiet) {
    const pb::BundleMeta& m = model->meta();
    const pb::TrainingSummary& t = m.training();
    std::cerr << "trained " << args.out << ": " << m.baseline_rows() << " rows x " << m.dim()
              << " features (train " << t.train_rows() << ", val " << t.val_rows() << ", holdout "
              << t.holdout_rows() << ")\n"
              << "  epochs " << t.epochs_run() << " (best " << t.best_epoch() << "), val loss "
              << Fmt(t.val_loss_size() ? t.val_loss(t.best_epoch() ? t.best_epoch() - 1 : 0) : NAN)
              << ", " << Fmt(t.seconds(), 3) << " s on " << model->device() << "\n"
              << "  threshold " << Fmt(m.threshold().value()) << " ("
              << pb::ThresholdMethod_Name(m.threshold().method()) << ")\n";
  }
  return Status::OK();
}

Status RunScore(const ScoreArgs& args) {
  std::unique_ptr<Model> model;
  CsvTable table;
  ANOMALYD_RETURN_IF_ERROR(LoadModelAndData(args.model, args.device, args.data, &model, &table));
  ScoreOutput out;
  ANOMALYD_RETURN_IF_ERROR(ScoreAll(*model, table.features, args.contributions, &out));
  Output o;
  ANOMALYD_RETURN_IF_ERROR(o.Open(args.out));
  std::ostream& os = o.os();
  const pb::Architecture& arch = model->meta().architecture();
  std::cerr << "score = reconstruction + " << Fmt(arch.beta()) << " * kl + "
            << Fmt(arch.density_weight())
            << " * density (the model's score_beta and density_weight)\n";
  ScoreColumns columns;
  columns.contributions = args.contributions;
  columns.features.assign(model->meta().feature_names().begin(),
                          model->meta().feature_names().end());
  os << ScoreHeader(columns);
  const size_t d = model->dim();
  const float threshold = model->threshold();
  for (size_t i = 0; i < table.features.rows; ++i) {
    const std::string id = table.ids.empty() ? std::to_string(i + 1) : table.ids[i];
    ScoreLine line;
    line.id = id;
    line.reconstruction = out.reconstruction[i];
    line.kl = out.kl[i];
    line.density = out.density.empty() ? 0 : out.density[i];
    line.score = out.score[i];
    line.p_value = out.p_value[i];
    line.flagged = out.score[i] > threshold;
    if (args.contributions) line.contributions = out.contributions.data() + i * d;
    os << ScoreRow(columns, line);
  }
  return o.Close(args.out);
}

Status RunEval(const EvalArgs& args) {
  std::unique_ptr<Model> model;
  CsvTable table;
  ANOMALYD_RETURN_IF_ERROR(LoadModelAndData(args.model, args.device, args.data, &model, &table));
  if (table.labels.empty()) {
    return Status::InvalidArgument(args.data + ": no 'label' column to evaluate against");
  }
  ScoreOutput out;
  ANOMALYD_RETURN_IF_ERROR(ScoreAll(*model, table.features, false, &out));
  std::vector<double> scores(out.score.begin(), out.score.end());
  const double threshold = model->threshold();
  const double roc = RocAuc(scores, table.labels);
  const double ap = AveragePrecision(scores, table.labels);
  const Confusion c = ConfusionAt(scores, table.labels, threshold);
  const BestF1 best = BestF1Score(scores, table.labels);
  const long positives = c.tp + c.fn;
  const long negatives = static_cast<long>(scores.size()) - positives;
  if (args.json) {
    // RocAuc and AveragePrecision are NaN without both classes (metrics.h);
    // the rest is finite for finite scores but is checked all the same.
    const std::string one_class = positives == 0   ? "no positive labels"
                                  : negatives == 0 ? "no negative labels"
                                                   : "undefined";
    JsonObject j(std::cout);
    j.Int("rows", static_cast<long>(scores.size()));
    j.Int("anomalies", positives);
    j.Number("roc_auc", roc, one_class);
    j.Number("pr_auc", ap, "no positive labels");
    j.Number("threshold", threshold, "the model has no finite threshold");
    j.Int("flagged", c.tp + c.fp);
    j.Int("tp", c.tp);
    j.Int("fp", c.fp);
    j.Int("fn", c.fn);
    j.Number("precision", c.precision(), "not finite");
    j.Number("recall", c.recall(), "not finite");
    j.Number("f1", c.f1(), "not finite");
    j.Number("best_f1", best.f1, "not finite");
    j.Number("best_f1_threshold", best.threshold, scores.empty() ? "no rows" : "not finite");
    j.End();
  } else {
    std::cout << "rows        " << scores.size() << " (" << positives << " anomalies)\n"
              << "ROC-AUC     "
              << (std::isfinite(roc) ? Fmt(roc, 4)
                                     : std::string("undefined (") +
                                           (positives == 0 ? "no" : "only") + " anomalies)")
              << "\n"
              << "PR-AUC      "
              << (std::isfinite(ap) ? Fmt(ap, 4) : std::string("undefined (no anomalies)")) << "\n"
              << "threshold   " << Fmt(threshold) << " ("
              << pb::ThresholdMethod_Name(model->meta().threshold().method()) << "): flagged "
              << c.tp + c.fp << ", precision " << Fmt(c.precision(), 4) << ", recall "
              << Fmt(c.recall(), 4) << ", F1 " << Fmt(c.f1(), 4) << "\n"
              << "best F1     " << Fmt(best.f1, 4) << " (score > " << Fmt(best.threshold) << ")\n";
  }
  return Status::OK();
}

Status RunSample(const SampleArgs& args) {
  std::unique_ptr<Model> model;
  ANOMALYD_RETURN_IF_ERROR(Model::Load(args.model, "cpu", &model));
  Matrix rows;
  ANOMALYD_RETURN_IF_ERROR(model->Sample(args.n, args.seed, &rows, args.draws));
  if (model->meta().architecture().likelihood() == pb::BERNOULLI) {
    std::cerr << (args.draws ? "sample: BERNOULLI model: 0/1 draws from the decoded "
                               "probabilities (each feature's baseline min or max)\n"
                             : "sample: BERNOULLI model: printing probabilities (the "
                               "decoder mean, scaled to each feature's baseline "
                               "range), not records; --draws gives 0/1 draws\n");
  }
  std::vector<std::string> header(model->meta().feature_names().begin(),
                                  model->meta().feature_names().end());
  Output o;
  ANOMALYD_RETURN_IF_ERROR(o.Open(args.out));
  o.os() << FormatCsv(header, rows);
  return o.Close(args.out);
}

Status RunEncode(const EncodeArgs& args) {
  std::unique_ptr<Model> model;
  CsvTable table;
  ANOMALYD_RETURN_IF_ERROR(LoadModelAndData(args.model, args.device, args.data, &model, &table));
  Matrix mean, logvar;
  std::vector<float> means, logvars;
  size_t latent = 0;
  const Matrix& rows = table.features;
  for (size_t begin = 0; begin < rows.rows; begin += kScoreChunk) {
    const size_t n = std::min(kScoreChunk, rows.rows - begin);
    ANOMALYD_RETURN_IF_ERROR(
        model->Encode(rows.row(begin), n, &mean, args.logvar ? &logvar : nullptr)
            .WithContext("rows starting at " + std::to_string(begin + 1)));
    latent = mean.cols;
    means.insert(means.end(), mean.data.begin(), mean.data.end());
    logvars.insert(logvars.end(), logvar.data.begin(), logvar.data.end());
  }
  const size_t cols = args.logvar ? 2 * latent : latent;
  Matrix all(rows.rows, cols);
  std::vector<std::string> header;
  for (size_t k = 0; k < latent; ++k) header.push_back("z" + std::to_string(k));
  for (size_t i = 0; i < rows.rows; ++i) {
    std::copy_n(means.begin() + i * latent, latent, all.row(i));
    if (args.logvar) std::copy_n(logvars.begin() + i * latent, latent, all.row(i) + latent);
  }
  if (args.logvar) {
    for (size_t k = 0; k < latent; ++k) header.push_back("logvar" + std::to_string(k));
  }
  // FormatCsv writes the values (shortest round-trip form); the id column,
  // when the input has one, goes in front of each line.
  const std::string csv = FormatCsv(header, all);
  Output o;
  ANOMALYD_RETURN_IF_ERROR(o.Open(args.out));
  std::ostream& os = o.os();
  if (table.ids.empty()) {
    os << csv;
  } else {
    size_t at = 0;
    for (size_t line = 0; at < csv.size(); ++line) {
      const size_t end = csv.find('\n', at);
      os << (line == 0 ? std::string("id") : CsvField(table.ids[line - 1])) << ","
         << csv.substr(at, end - at + 1);
      at = end + 1;
    }
  }
  return o.Close(args.out);
}

Status RunKeygen(const std::string& dir, const std::string& name) {
  CurveKeyPair keys;
  ANOMALYD_RETURN_IF_ERROR(GenerateKeyPair(&keys));
  std::string pub;
  ANOMALYD_RETURN_IF_ERROR(WriteKeyFiles(dir, name, keys, &pub));
  std::cout << "public key  " << pub << "  (give it to the other side)\n"
            << "secret key  " << pub << "_secret  (mode 0600, keep it here)\n";
  return Status::OK();
}

}  // namespace anomalyd::ctl
