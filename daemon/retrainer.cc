#include "daemon/retrainer.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>

#include "daemon/clock.h"
#include "daemon/convert.h"
#include "model/csv.h"
#include "storage/store.h"

namespace anomalyd {

Retrainer::Retrainer(std::string bundles_dir, std::string db_path,
                     StreamRegistry* streams, Writer* writer)
    : bundles_dir_(std::move(bundles_dir)), db_path_(std::move(db_path)),
      streams_(streams), writer_(writer) {}

Retrainer::~Retrainer() { Shutdown(); }

std::string Retrainer::BundleDir(const std::string& bundles_dir,
                                 const std::string& stream, uint32_t version) {
  std::string safe;
  for (unsigned char c : stream) {
    if (std::isalnum(c) || c == '-' || c == '_') {
      safe.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      safe += buf;
    }
  }
  return bundles_dir + "/" + safe + "/v" + std::to_string(version);
}

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
    if (ec) spdlog::warn("cannot remove unfinished bundle {}: {}", p.string(), ec.message());
    else spdlog::info("removed unfinished bundle {}", p.string());
  }
  return static_cast<int>(stale.size());
}

Status Retrainer::Start(RetrainJob job) {
  std::lock_guard<std::mutex> l(mu_);
  auto& slot = runs_[job.stream];
  if (slot && !slot->done) {
    return Status(pb::FAILED_PRECONDITION,
                  "stream '" + job.stream + "' is already training");
  }
  if (slot && slot->thread.joinable()) slot->thread.join();
  slot = std::make_unique<Run>();
  Run* run = slot.get();
  pb::TrainingStatus t;
  t.set_state(pb::RUNNING);
  t.set_target_version(job.version);
  t.set_started_us(WallMicros());
  streams_->SetTraining(job.stream, t);
  run->thread = std::thread([this, job = std::move(job), run]() mutable {
    Train(std::move(job), run);
  });
  return Status::OK();
}

Status Retrainer::Cancel(const std::string& stream) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  if (it == runs_.end() || it->second->done) {
    return Status::NotFound("stream '" + stream + "' is not training");
  }
  it->second->cancel = true;
  return Status::OK();
}

Status Retrainer::Wait(const std::string& stream) {
  std::unique_lock<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  if (it == runs_.end()) return Status::OK();
  Run* run = it->second.get();
  cv_.wait(l, [&] { return run->done; });
  return run->outcome;
}

bool Retrainer::WaitFor(const std::string& stream,
                        std::chrono::milliseconds timeout, Status* outcome) {
  std::unique_lock<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  if (it == runs_.end()) return true;
  Run* run = it->second.get();
  if (!cv_.wait_for(l, timeout, [&] { return run->done; })) return false;
  *outcome = run->outcome;
  return true;
}

bool Retrainer::Running(const std::string& stream) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = runs_.find(stream);
  return it != runs_.end() && !it->second->done;
}

void Retrainer::Shutdown() {
  std::vector<std::thread*> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [name, run] : runs_) {
      run->cancel = true;
      threads.push_back(&run->thread);
    }
  }
  for (std::thread* t : threads) {
    if (t->joinable()) t->join();
  }
}

Status Retrainer::LoadData(RetrainJob& job) {
  switch (job.source) {
    case RetrainJob::Source::kCsv: {
      CsvTable table;
      ANOMALYD_RETURN_IF_ERROR(ReadCsv(job.csv_path, CsvOptions{}, &table));
      job.rows = std::move(table.features);
      job.names = std::move(table.feature_names);
      return Status::OK();
    }
    case RetrainJob::Source::kReservoir: {
      StoreOptions so;
      so.read_only = true;
      std::unique_ptr<Store> store;
      ANOMALYD_RETURN_IF_ERROR(Store::Open(so, db_path_, &store));
      Baseline b;
      ANOMALYD_RETURN_IF_ERROR(store->LoadReservoir(job.stream, &b)
                                   .WithContext("reservoir of '" + job.stream + "'"));
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
    return Status::InvalidArgument(std::to_string(job.names.size()) +
                                   " feature names for " +
                                   std::to_string(job.rows.cols) + " columns");
  }
  return Status::OK();
}

void Retrainer::Finish(const std::string& stream, Run* run, const Status& s) {
  pb::TrainingStatus t = streams_->Training(stream);
  t.set_finished_us(WallMicros());
  if (s.ok()) {
    t.set_state(pb::SUCCEEDED);
    t.clear_error();
  } else {
    t.set_state(s.code() == pb::CANCELLED ? pb::CANCELLED_TRAINING : pb::FAILED);
    t.set_error(s.ToString());
    spdlog::warn("training of stream '{}' ended: {}", stream, s.ToString());
  }
  streams_->SetTraining(stream, t);
  std::lock_guard<std::mutex> l(mu_);
  run->outcome = s;
  run->done = true;
  cv_.notify_all();
}

void Retrainer::Train(RetrainJob job, Run* run) {
  const std::string stream = job.stream;
  Status s = LoadData(job);
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
    spdlog::info("training stream '{}' version {} on {} rows x {} features", stream,
                 job.version, job.rows.rows, job.rows.cols);
    s = Model::Train(job.options, job.rows, job.names, progress, &model);
  }
  const std::string dir = BundleDir(bundles_dir_, stream, job.version);
  if (s.ok()) s = model->Save(dir);
  if (!s.ok()) {
    Finish(stream, run, s);
    return;
  }
  // Register, activate and record the first threshold in one writer task;
  // swap the model in only once that is committed.
  std::shared_ptr<const Model> ready(std::move(model));
  std::promise<Status> registered;
  writer_->Post([&, ready](Store& store, Outbox&) {
    ModelRow row;
    row.stream = stream;
    row.version = job.version;
    row.bundle_path = dir;
    row.baseline_rows = ready->meta().baseline_rows();
    const auto& tr = ready->meta().training();
    const uint32_t best = tr.best_epoch() ? tr.best_epoch() - 1 : 0;
    row.train_loss = tr.train_loss_size() > static_cast<int>(best) ? tr.train_loss(best) : NAN;
    row.val_loss = tr.val_loss_size() > static_cast<int>(best) ? tr.val_loss(best) : NAN;
    Status st = store.RegisterModel(row);
    if (st.ok()) st = store.ActivateModel(stream, job.version);
    if (st.ok()) {
      ThresholdRow t;
      t.stream = stream;
      t.model_version = job.version;
      t.method = ThresholdMethodName(ready->meta().threshold().method());
      t.value = ready->meta().threshold().value();
      t.window = ready->meta().threshold().sample_count();
      st = store.AppendThreshold(&t);
    }
    if (st.ok()) {
      streams_->Install(stream, ready, job.version, ready->meta().threshold().value(),
                        ready->meta().threshold().method());
      spdlog::info("stream '{}' now serves version {} on {} (threshold {})", stream,
                   job.version, ready->device(), ready->meta().threshold().value());
    }
    registered.set_value(st);
  });
  s = registered.get_future().get();
  Finish(stream, run, s.ok() ? s : s.WithContext("registering version " + std::to_string(job.version)));
}

}  // namespace anomalyd
