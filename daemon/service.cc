#include "daemon/service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "daemon/clock.h"
#include "daemon/convert.h"
#include "daemon/notify.h"

namespace anomalyd {
namespace {

SyncLevel ParseSync(const std::string& s) {
  if (s == "off") return SyncLevel::kOff;
  if (s == "full") return SyncLevel::kFull;
  return SyncLevel::kNormal;
}

}  // namespace

Service::Service(const Config& config, std::string config_path,
                 std::vector<std::string> overrides)
    : config_(config), config_path_(std::move(config_path)),
      overrides_(std::move(overrides)), ctx_(1) {}

Service::~Service() {
  if (retrainer_) retrainer_->Shutdown();
  if (queue_) queue_->Close();
  if (scorer_) scorer_->Join();
  if (writer_) writer_->Stop();
}

Status Service::Create(const Config& config, std::string config_path,
                       std::vector<std::string> overrides,
                       std::unique_ptr<Service>* service) {
  std::unique_ptr<Service> s(
      new Service(config, std::move(config_path), std::move(overrides)));
  ANOMALYD_RETURN_IF_ERROR(s->Open());
  *service = std::move(s);
  return Status::OK();
}

Status Service::Open() {
  namespace fs = std::filesystem;
  started_us_ = WallMicros();
  if (config_.auth.enabled) {
    ANOMALYD_RETURN_IF_ERROR(Authenticator::Start(ctx_, config_.auth, &auth_));
    if (!config_.endpoints.metrics.empty()) {
      spdlog::warn("auth: the metrics endpoint {} is plain HTTP, not covered by CURVE",
                   config_.endpoints.metrics);
    }
  }
  const std::string& state = config_.daemon.state_dir;
  std::error_code ec;
  fs::create_directories(state, ec);
  if (ec) return Status::IoError("cannot create state_dir " + state + ": " + ec.message());
  db_path_ = config_.storage.path.empty() ? state + "/anomalyd.db" : config_.storage.path;
  bundles_dir_ = state + "/bundles";
  Retrainer::RemoveUnfinishedBundles(bundles_dir_);

  StoreOptions so;
  so.sync = ParseSync(config_.storage.synchronous);
  so.reservoir_capacity = config_.storage.reservoir_capacity;
  so.reservoir_seed = config_.train.seed;
  std::unique_ptr<Store> store;
  ANOMALYD_RETURN_IF_ERROR(Store::Open(so, db_path_, &store).WithContext(db_path_));
  StoreOptions ro;
  ro.read_only = true;
  ANOMALYD_RETURN_IF_ERROR(Store::Open(ro, db_path_, &reader_).WithContext(db_path_));

  WriterOptions wo;
  wo.retention.max_age_us = static_cast<int64_t>(config_.storage.retention_days * 86400e6);
  wo.retention.max_rows = config_.storage.retention_rows;
  // As many records may wait for their commit as for scoring: under
  // overload the daemon holds at most twice queue_records (plus a batch).
  wo.max_pending_records = config_.batcher.queue_records;
  writer_ = std::make_unique<Writer>(ctx_, std::move(store), wo);
  queue_ = std::make_unique<WorkQueue>(config_.batcher.queue_records);
  retrainer_ = std::make_unique<Retrainer>(bundles_dir_, db_path_, &streams_, writer_.get());
  scorer_ = std::make_unique<ScoringLoop>(ctx_, MakeScoringOptions(), queue_.get(),
                                          &streams_, writer_.get());
  ANOMALYD_RETURN_IF_ERROR(RestoreStreams());
  return Status::OK();
}

ScoringOptions Service::MakeScoringOptions() {
  ScoringOptions o;
  o.batcher = config_.batcher;
  o.recalibration = config_.recalibration;
  o.durable_replies = config_.storage.durability == "commit";
  o.reservoir_rate = config_.storage.reservoir_rate;
  o.seed = config_.train.seed;
  o.batch_sizes = &metrics_.batch_size();
  return o;
}

Status Service::RestoreStreams() {
  std::vector<ModelRow> active;
  ANOMALYD_RETURN_IF_ERROR(reader_->ActiveModels(&active));
  for (const ModelRow& row : active) {
    std::unique_ptr<Model> model;
    Status s = Model::Load(row.bundle_path, config_.train.device, &model);
    if (!s.ok()) {
      // One broken bundle must not take the other streams down.
      spdlog::error("stream '{}': cannot load version {}: {}", row.stream,
                    row.version, s.ToString());
      continue;
    }
    double threshold = model->meta().threshold().value();
    pb::ThresholdMethod method = model->meta().threshold().method();
    ThresholdRow latest;
    if (reader_->LatestThreshold(row.stream, &latest).ok() &&
        latest.model_version == row.version) {
      threshold = latest.value;
      method = ThresholdMethodFromName(latest.method.substr(latest.method.rfind('-') + 1));
    }
    spdlog::info("stream '{}': restored version {} ({} features, threshold {})",
                 row.stream, row.version, model->dim(), threshold);
    streams_.Install(row.stream, std::shared_ptr<const Model>(std::move(model)),
                     row.version, threshold, method);
  }
  return Status::OK();
}

Status Service::TrainConfiguredBaselines() {
  for (const auto& [stream, sc] : config_.streams) {
    if (sc.baseline.empty() || streams_.DimensionOf(stream) >= 0) continue;
    pb::RetrainRequest r;
    r.set_stream(stream);
    r.set_csv_path(sc.baseline);
    uint32_t version = 0;
    ANOMALYD_RETURN_IF_ERROR(StartRetrain(r, &version));
    Notify("STATUS=training stream " + stream);
    // Start-up training can outlast systemd's start timeout: ask for more
    // time while it runs, a little at a time.
    Status outcome;
    while (!retrainer_->WaitFor(stream, std::chrono::seconds(10), &outcome)) {
      Notify("EXTEND_TIMEOUT_USEC=30000000");
    }
    ANOMALYD_RETURN_IF_ERROR(
        outcome.WithContext("training the baseline of stream '" + stream + "'"));
  }
  return Status::OK();
}

void Service::Reload() {
  Config fresh;
  Status s = LoadConfig(config_path_, &fresh, overrides_);
  if (!s.ok()) {
    spdlog::error("reload: keeping the running config: {}", s.ToString());
    return;
  }
  // Thresholds, limits, batching, recalibration and logging take effect;
  // endpoints and storage need a restart.
  config_.train = fresh.train;
  config_.limits = fresh.limits;
  config_.batcher.max_batch = fresh.batcher.max_batch;
  config_.batcher.max_delay_us = fresh.batcher.max_delay_us;
  config_.recalibration = fresh.recalibration;
  config_.daemon.log_level = fresh.daemon.log_level;
  config_.storage.reservoir_rate = fresh.storage.reservoir_rate;
  spdlog::set_level(spdlog::level::from_str(config_.daemon.log_level));
  scorer_->Reconfigure(MakeScoringOptions());
  if (auth_ && fresh.auth.enabled) {
    // New client keys take effect at once; a broken folder keeps the old.
    s = auth_->ReloadClients(fresh.auth);
    if (!s.ok()) spdlog::error("reload: keeping the client keys: {}", s.ToString());
  }
  spdlog::info("reloaded {}", config_path_);
}

}  // namespace anomalyd
