#include "clients/anomalyctl/offline.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "clients/curve_keys.h"
#include "daemon/config.h"
#include "model/csv.h"
#include "model/metrics.h"
#include "model/model.h"

namespace anomalyd::ctl {
namespace {

// Records scored per call: large enough to amortise per-call overhead,
// small enough to keep memory flat on big files.
constexpr size_t kScoreChunk = 4096;

// Writes to a file or, for "-", to stdout.
class Output {
 public:
  Status Open(const std::string& path) {
    if (path == "-") {
      out_ = &std::cout;
      return Status::OK();
    }
    file_.open(path, std::ios::binary | std::ios::trunc);
    if (!file_) return Status::IoError("cannot write " + path);
    out_ = &file_;
    return Status::OK();
  }
  std::ostream& os() { return *out_; }
  Status Close(const std::string& path) {
    out_->flush();
    if (!*out_) return Status::IoError("error writing " + path);
    return Status::OK();
  }

 private:
  std::ofstream file_;
  std::ostream* out_ = nullptr;
};

Status LoadModelAndData(const std::string& model_dir, const std::string& device,
                        const std::string& data, std::unique_ptr<Model>* model,
                        CsvTable* table) {
  ANOMALYD_RETURN_IF_ERROR(Model::Load(model_dir, device, model));
  ANOMALYD_RETURN_IF_ERROR(ReadCsv(data, CsvOptions{}, table));
  std::vector<std::string> names((*model)->meta().feature_names().begin(),
                                 (*model)->meta().feature_names().end());
  return SelectFeatures(names, data, table);
}

Status ScoreAll(const Model& model, const Matrix& rows, bool contributions,
                ScoreOutput* all) {
  ScoreOptions opts;
  opts.contributions = contributions;
  *all = ScoreOutput();
  for (size_t begin = 0; begin < rows.rows; begin += kScoreChunk) {
    const size_t n = std::min(kScoreChunk, rows.rows - begin);
    ScoreOutput part;
    ANOMALYD_RETURN_IF_ERROR(model.Score(rows.row(begin), n, opts, &part)
                                 .WithContext("rows starting at " + std::to_string(begin + 1)));
    auto append = [](auto& to, const auto& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    append(all->reconstruction, part.reconstruction);
    append(all->kl, part.kl);
    append(all->score, part.score);
    append(all->p_value, part.p_value);
    append(all->contributions, part.contributions);
  }
  return Status::OK();
}

std::string Fmt(double v, int digits = 6) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

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
                   p.member + 1, p.members, p.epoch, p.max_epochs,
                   p.train_loss, p.val_loss, p.seconds);
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
    std::cerr << "trained " << args.out << ": " << m.baseline_rows() << " rows x "
              << m.dim() << " features (train " << t.train_rows() << ", val "
              << t.val_rows() << ", holdout " << t.holdout_rows() << ")\n"
              << "  epochs " << t.epochs_run() << " (best " << t.best_epoch()
              << "), val loss " << Fmt(t.val_loss_size() ? t.val_loss(t.best_epoch() ? t.best_epoch() - 1 : 0) : NAN)
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
  os << "id,reconstruction,kl,score,p_value,flagged";
  const size_t d = model->dim();
  if (args.contributions) {
    for (const auto& name : model->meta().feature_names()) os << ",contrib_" << name;
  }
  os << "\n";
  const float threshold = model->threshold();
  for (size_t i = 0; i < table.features.rows; ++i) {
    os << (table.ids.empty() ? std::to_string(i + 1) : table.ids[i]) << ","
       << Fmt(out.reconstruction[i]) << "," << Fmt(out.kl[i]) << ","
       << Fmt(out.score[i]) << "," << Fmt(out.p_value[i]) << ","
       << (out.score[i] > threshold ? 1 : 0);
    if (args.contributions) {
      for (size_t j = 0; j < d; ++j) os << "," << Fmt(out.contributions[i * d + j]);
    }
    os << "\n";
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
  if (args.json) {
    std::cout << "{\"rows\": " << scores.size() << ", \"anomalies\": " << positives
              << ", \"roc_auc\": " << Fmt(roc) << ", \"pr_auc\": " << Fmt(ap)
              << ", \"threshold\": " << Fmt(threshold)
              << ", \"flagged\": " << c.tp + c.fp << ", \"tp\": " << c.tp
              << ", \"fp\": " << c.fp << ", \"fn\": " << c.fn
              << ", \"precision\": " << Fmt(c.precision())
              << ", \"recall\": " << Fmt(c.recall()) << ", \"f1\": " << Fmt(c.f1())
              << ", \"best_f1\": " << Fmt(best.f1)
              << ", \"best_f1_threshold\": " << Fmt(best.threshold) << "}\n";
  } else {
    std::cout << "rows        " << scores.size() << " (" << positives << " anomalies)\n"
              << "ROC-AUC     " << Fmt(roc, 4) << "\n"
              << "PR-AUC      " << Fmt(ap, 4) << "\n"
              << "threshold   " << Fmt(threshold) << " ("
              << pb::ThresholdMethod_Name(model->meta().threshold().method()) << "): flagged "
              << c.tp + c.fp << ", precision " << Fmt(c.precision(), 4)
              << ", recall " << Fmt(c.recall(), 4) << ", F1 " << Fmt(c.f1(), 4) << "\n"
              << "best F1     " << Fmt(best.f1, 4) << " (score > " << Fmt(best.threshold) << ")\n";
  }
  return Status::OK();
}

Status RunSample(const SampleArgs& args) {
  std::unique_ptr<Model> model;
  ANOMALYD_RETURN_IF_ERROR(Model::Load(args.model, "cpu", &model));
  Matrix rows;
  ANOMALYD_RETURN_IF_ERROR(model->Sample(args.n, args.seed, &rows));
  std::vector<std::string> header(model->meta().feature_names().begin(),
                                  model->meta().feature_names().end());
  Output o;
  ANOMALYD_RETURN_IF_ERROR(o.Open(args.out));
  o.os() << FormatCsv(header, rows);
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
