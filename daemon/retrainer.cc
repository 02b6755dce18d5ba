#include "daemon/retrainer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <system_error>

#include "common/clock.h"
#include "daemon/convert.h"
#include "model/csv.h"
#include "storage/open.h"
#include "storage/store.h"

namespace anomalyd {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Status OpenCsvForRetrain(const std::string& path, uint64_t max_bytes, UniqueFd* out) {
  if (path.empty()) return Status::InvalidArgument("retrain: empty csv_path");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    const int err = errno;
    const std::string why = "retrain: cannot open " + path + ": " + std::strerror(err);
    if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG) return Status::NotFound(why);
    if (err == EACCES || err == EPERM) return Status(pb::PERMISSION_DENIED, why);
    return Status::IoError(why);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Status::IoError("retrain: cannot stat " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("retrain: " + path + " is not a regular file");
  }
  if (max_bytes > 0 && static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status(pb::TOO_LARGE,
                  "retrain: " + path + " has " + std::to_string(st.st_size) +
                      " bytes, more than limits.max_csv_bytes = " + std::to_string(max_bytes));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Status::IoError("retrain: " + path + ": " + std::strerror(errno));
  }
  *out = std::move(fd);
  return Status::OK();
}

Retrainer::Retrainer(const RetrainerOptions& options, StreamRegistry* streams, Writer* writer)
    : options_(options), streams_(streams), writer_(writer) {}

Retrainer::~Retrainer() { Shutdown(); }

int Retrainer::RemoveUnfinishedBundles(const std::string& bundles_dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> stale;
  try {
    std::error_code ec;
    for (const auto& stream : fs::directory_iterator(bundles_dir, ec)) {
      if (!stream.is_directory()) continue;
      for (const auto& e : fs::directory_iterator(stream.path())) {
        const std::string name = e.path().filename().string();
        if (name.rfind(".v", 0) == 0 && name.find(".tmp-") != std::string::npos) {
          stale.push_back(e.path());
        }
      }
    }
  } catch (const fs::filesystem_error& e) {
    spdlog::warn("looking for unfinished bundles: {}", e.what());  // harmless
  }
  for (const fs::path& p : stale) {
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec)
      spdlog::warn("cannot remove unfinished bundle {}: {}", p.string(), ec.message());
    else
      spdlog::info("removed unfinished bundle {}", p.string());
  }
  return static_cast<int>(stale.size());
}

void Retrainer::ReapLocked() {
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second->done.load()) {
      // done is set as the thread's last act: this join is immediate.
      if (it->second->thread.joinable()) it->second->thread.join();
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Retrainer::CanStartLocked(const std::string& stream) const {
  if (stopped_) return Status(pb::SHUTTING_DOWN, "the daemon is stopping");
  if (runs_.count(stream)) {
    return Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' is already training");
  }
  if (runs_.size() >= options_.max_trainings) {
    return Status(pb::BUSY, std::to_string(runs_.size()) +
                                " trainings are running (daemon.max_trainings); retry later");
  }
  return Status::OK();
}

Status Retrainer::CanStart(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  if (stopped_) return Status(pb::SHUTTING_DOWN, "the daemon is stopping");
  // Runs that ended still count until reaped; Start reaps them first.
  size_t running = 0;
  for (const auto& [name, run] : runs_) {
    if (run->done.load()) continue;
    if (name == stream) {
      return Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' is already training");
    }
    ++running;
  }
  if (running >= options_.max_trainings) {
    return Status(pb::BUSY, std::to_string(running) +
                                " trainings are running (daemon.max_trainings); retry later");
  }
  return Status::OK();
}

Status Retrainer::Start(RetrainJob job) {
  std::lock_guard<std::mutex> l(mu_);
  ReapLocked();
  ANOMALYD_RETURN_IF_ERROR(CanStartLocked(job.stream));
  auto run = std::make_unique<Run>();
  Run* r = run.get();
  const std::string stream = job.stream;
  pb::TrainingStatus t;
  t.set_state(pb::RUNNING);
  t.set_target_version(job.version);
  t.set_started_us(WallMicros());
  streams_->SetTraining(stream, t);  // before the thread can Finish
  try {
    r->thread =
        std::thread([this, job = std::move(job), r]() mutable { Train(std::move(job), r); });
  } catch (const std::system_error& e) {
    // Out of threads or address space: refuse this training, keep serving.
    Status s = Status::Internal(std::string("cannot start a training thread: ") + e.what());
    t.set_state(pb::FAILED);
    t.set_error(s.ToString());
    streams_->SetTraining(stream, t);
    return s;
  }
  runs_[stream] = std::move(run);
  return Status::OK();
}

Status Retrainer::Cancel(const std::string& stream) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  if (it == runs_.end() || it->second->done.load()) {
    return Status::NotFound("stream '" + stream + "' is not training");
  }
  it->second->cancel = true;
  return Status::OK();
}

bool Retrainer::Running(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  return it != runs_.end() && !it->second->done.load();
}

void Retrainer::Shutdown() {
  std::map<std::string, std::unique_ptr<Run>> runs;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopped_ = true;  // a start still queued on the writer is refused
    for (auto& [name, run] : runs_) run->cancel = true;
    runs.swap(runs_);
  }
  for (auto& [name, run] : runs) {
    if (run->thread.joinable()) run->thread.join();
  }
}

Status Retrainer::LoadData(RetrainJob& job, const std::atomic<bool>& cancel) {
  switch (job.source) {
    case RetrainJob::Source::kCsv: {
      CsvOptions o;
      o.max_bytes = job.max_csv_bytes;
      o.cancel = &cancel;
      // The path came from a client: errors name lines and columns, never
      // quote what the file holds.
      o.quote_cells = false;
      CsvTable table;
      ANOMALYD_RETURN_IF_ERROR(ReadCsvFd(job.csv_fd->get(), job.csv_path, o, &table));
      job.csv_fd.reset();
      job.rows = std::move(table.features);
      job.names = std::move(table.feature_names);
      return Status::OK();
    }
    case RetrainJob::Source::kReservoir: {
      std::unique_ptr<Store> store;
      ANOMALYD_RETURN_IF_ERROR(OpenStore(options_.store, &store));
      Baseline b;
      ANOMALYD_RETURN_IF_ERROR(
          store->LoadReservoir(job.stream, &b).WithContext("reservoir of '" + job.stream + "'"));
      job.rows = Matrix(b.rows(), b.dim);
      job.rows.data = std::move(b.values);
      job.names.clear();
      break;
    }
    case RetrainJob::Source::kRows:
      break;
  }
  if (job.names.empty()) {
    // The serving model's names when the dimension matches, else f0, f1...
    ServingSnapshot snap = streams_->Snapshot(job.stream);
    if (snap.model && snap.model->dim() == job.rows.cols) {
      job.names.assign(snap.model->meta().feature_names().begin(),
                       snap.model->meta().feature_names().end());
    } else {
      for (size_t j = 0; j < job.rows.cols; ++j) job.names.push_back("f" + std::to_string(j));
    }
  }
  if (job.names.size() != job.rows.cols) {
    return Status::InvalidArgument(std::to_string(job.names.size()) + " feature names for " +
                                   std::to_string(job.rows.cols) + " columns");
  }
  return Status::OK();
}

void Retrainer::Finish(const RetrainJob& job, Run* run, const Status& s) {
  pb::TrainingStatus t = streams_->Training(job.stream);
  t.set_finished_us(WallMicros());
  if (s.ok()) {
    t.set_state(pb::SUCCEEDED);
    t.clear_error();
  } else {
    t.set_state(s.code() == pb::CANCELLED ? pb::CANCELLED_TRAINING : pb::FAILED);
    t.set_error(s.ToString());
    spdlog::warn("training of stream '{}' ended: {}", job.stream, s.ToString());
    // Give the reserved version back; a later training may take it.
    const std::string stream = job.stream;
    const uint32_t version = job.version;
    writer_->Post([stream, version](Store& store, Outbox&) {
      Status d = store.DeleteCandidate(stream, version);
      if (!d.ok()) spdlog::warn("stream '{}': {}", stream, d.ToString());
    });
  }
  streams_->SetTraining(job.stream, t);
  streams_->ForgetOldTrainings(options_.max_training_states);
  if (options_.metrics != nullptr) options_.metrics->CountTraining(t.state());
  if (job.on_done) job.on_done(s);
  run->done = true;
}

Status Retrainer::Register(const RetrainJob& job, Run* run, const std::string& rel_path,
                           std::shared_ptr<const Model> ready) {
  // Complete the reserved row, activate it and record the first threshold
  // in one writer task; swap the model in only once that is committed.
  std::promise<Status> registered;
  writer_->Post([&](Store& store, Outbox&) {
    ModelRow row;
    row.stream = job.stream;
    row.version = job.version;
    row.bundle_path = rel_path;
    row.baseline_rows = ready->meta().baseline_rows();
    const auto& tr = ready->meta().training();
    const uint32_t best = tr.best_epoch() ? tr.best_epoch() - 1 : 0;
    row.train_loss = tr.train_loss_size() > static_cast<int>(best) ? tr.train_loss(best) : NAN;
    row.val_loss = tr.val_loss_size() > static_cast<int>(best) ? tr.val_loss(best) : NAN;
    Status st = store.CompleteCandidate(row);
    if (st.ok()) st = store.ActivateModel(job.stream, job.version);
    if (st.ok()) {
      ThresholdRow t;
      t.stream = job.stream;
      t.model_version = job.version;
      t.method = ThresholdMethodName(ready->meta().threshold().method());
      t.value = ready->meta().threshold().value();
      t.window = ready->meta().threshold().sample_count();
      st = store.AppendThreshold(&t);
    }
    if (st.ok()) {
      streams_->Install(job.stream, ready, job.version, ready->meta().threshold().value(),
                        ready->meta().threshold().method(), /*trained_us=*/WallMicros());
      spdlog::info("stream '{}' now serves version {} on {} (threshold {})", job.stream,
                   job.version, ready->device(), ready->meta().threshold().value());
      // Ended as the new version becomes visible: a client that sees it
      // serve may retrain again at once.
      Finish(job, run, st);
    }
    registered.set_value(st);
  });
  return registered.get_future().get();
}

void Retrainer::Train(RetrainJob job, Run* run) {
  const std::string stream = job.stream;
  Status s = LoadData(job, run->cancel);
  std::unique_ptr<Model> model;
  if (s.ok()) {
    job.options.stream = stream;
    job.options.version = job.version;
    ProgressFn progress = [&](const TrainProgress& p) {
      pb::TrainingStatus t = streams_->Training(stream);
      t.set_epoch(p.epoch);
      t.set_max_epochs(p.max_epochs);
      t.set_member(p.member);
      t.set_members(p.members);
      t.set_train_loss(static_cast<float>(p.train_loss));
      t.set_val_loss(static_cast<float>(p.val_loss));
      streams_->SetTraining(stream, t);
      return !run->cancel.load();
    };
    spdlog::info("training stream '{}' version {} on {} rows x {} features", stream, job.version,
                 job.rows.rows, job.rows.cols);
    s = Model::Train(job.options, job.rows, job.names, progress, &model, &run->cancel);
  }
  const std::string rel = StateDir::BundleRelPath(stream, job.version);
  const std::string dir = options_.state->Resolve(rel);
  if (s.ok()) {
    // The version is reserved to this training: anything at its path is
    // the leftover of a training a crash cut short after saving.
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    s = model->Save(dir);
  }
  if (s.ok()) {
    s = Register(job, run, rel, std::shared_ptr<const Model>(std::move(model)));
    if (s.ok()) return;  // Register finished the run
    s = s.WithContext("registering version " + std::to_string(job.version));
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);  // its row is given back below
  }
  Finish(job, run, s);
}

}  // namespace anomalyd
