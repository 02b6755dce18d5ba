#include "daemon/rollback_thread.h"

#include <spdlog/spdlog.h>

#include "engine/method_names.h"

namespace anomalyd {

RollbackThread::RollbackThread(std::unique_ptr<Store> reader, const StateDir* state,
                               StreamRegistry* streams, Writer* writer, std::string device)
    : reader_(std::move(reader)),
      state_(state),
      streams_(streams),
      writer_(writer),
      device_(std::move(device)) {}

RollbackThread::~RollbackThread() { Stop(); }

void RollbackThread::Start() { thread_ = std::thread([this] { Run(); }); }

void RollbackThread::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status RollbackThread::Submit(RollbackJob job) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return Status(pb::SHUTTING_DOWN, "the daemon is stopping");
    if (jobs_.size() >= kMaxPending) {
      return Status(pb::BUSY, std::to_string(jobs_.size()) + " rollbacks wait; retry later");
    }
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return Status::OK();
}

void RollbackThread::Run() {
  for (;;) {
    RollbackJob job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything handed over
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Load(std::move(job));
  }
}

void RollbackThread::Load(RollbackJob job) {
  const std::string& stream = job.stream;
  const uint32_t to = job.to_version;
  std::vector<ModelRow> models;
  Status s = reader_->ListModels(stream, &models);
  const ModelRow* target = nullptr;
  for (const ModelRow& m : models) {
    if (m.version == to) target = &m;
  }
  if (s.ok() && target == nullptr) {
    s = Status::NotFound("stream '" + stream + "' has no version " + std::to_string(to));
  }
  if (s.ok() && target->bundle_path.empty()) {
    s = Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' version " +
                                            std::to_string(to) + " is still being trained");
  }
  std::shared_ptr<const Model> model;
  if (s.ok()) {
    std::unique_ptr<Model> loaded;
    s = Model::Load(state_->Resolve(target->bundle_path), device_, &loaded);
    model = std::move(loaded);
  }
  // Activation, first threshold and swap in one writer task: the model
  // serves only once the registry says it is active.
  writer_->Post([this, job = std::move(job), model, s](Store& store, Outbox& outbox) {
    Status st = s;
    if (st.ok()) st = store.ActivateModel(job.stream, job.to_version);
    if (st.ok()) {
      const pb::ThresholdParams& th = model->meta().threshold();
      ThresholdRow t;
      t.stream = job.stream;
      t.model_version = job.to_version;
      t.method = ThresholdMethodName(th.method());
      t.value = th.value();
      t.window = th.sample_count();
      // The registry now names this version active, so it serves even if
      // the threshold row fails to commit (the reply then says so).
      st = store.AppendThreshold(&t);
      streams_->Install(job.stream, model, job.to_version, th.value(), th.method());
      spdlog::info("stream '{}' rolled back to version {}", job.stream, job.to_version);
    }
    job.done(st, outbox);
  });
}

}  // namespace anomalyd
