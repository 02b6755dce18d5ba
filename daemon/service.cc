#include "daemon/service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "common/clock.h"
#include "common/secret_file.h"
#include "daemon/convert.h"
#include "daemon/notify.h"
#include "daemon/store_spec.h"

namespace anomalyd {
namespace {

// The alert sender's options from `config` (the webhook secret read from
// its file). The file's errors.
Status AlertSenderOptionsFrom(const Config& config, AlertSenderOptions* o) {
  o->alerts = config.alerts;
  for (const auto& [name, sc] : config.streams) o->stream_shaping[name] = sc.alerts;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) o->instance = host;
  if (!config.alerts.webhook_secret_file.empty()) {
    ANOMALYD_RETURN_IF_ERROR(ReadSecretLine(config.alerts.webhook_secret_file, &o->webhook_secret)
                                 .WithContext("alerts.webhook_secret_file"));
  }
  return Status::OK();
}

}  // namespace

Service::Service(const Config& config, std::string config_path, std::vector<std::string> overrides,
                 const ServiceOptions& options)
    : config_(config),
      config_path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      options_(options),
      ctx_(1) {}

Service::~Service() {
  if (alert_sender_) alert_sender_->Stop();  // before the writer it waits on
  if (retrainer_) retrainer_->Shutdown();
  if (queue_) queue_->Close();
  if (scorer_) scorer_->Join();
  if (rollbacks_) rollbacks_->Stop();
  if (queries_) queries_->Stop();
  if (writer_) writer_->Stop();
}

Status Service::Create(const Config& config, std::string config_path,
                       std::vector<std::string> overrides, const ServiceOptions& options,
                       std::unique_ptr<Service>* service) {
  std::unique_ptr<Service> s(
      new Service(config, std::move(config_path), std::move(overrides), options));
  ANOMALYD_RETURN_IF_ERROR(s->Open());
  *service = std::move(s);
  return Status::OK();
}

Status Service::Open() {
  started_us_ = WallMicros();
  // The lock first: a second daemon must not touch anything of the first.
  ANOMALYD_RETURN_IF_ERROR(StateDir::Open(config_.daemon.state_dir, &state_));
  if (config_.auth.enabled) {
    ANOMALYD_RETURN_IF_ERROR(Authenticator::Start(ctx_, config_.auth, &auth_));
  }
  if (!config_.auth.metrics_token_file.empty()) {
    ANOMALYD_RETURN_IF_ERROR(
        ReadMetricsToken(config_.auth.metrics_token_file, &metrics_access_.token));
  }
  metrics_access_.allow = config_.auth.metrics_allow;
  if (config_.auth.enabled && !config_.endpoints.metrics.empty() && metrics_access_.token.empty() &&
      metrics_access_.allow.empty()) {
    spdlog::warn(
        "auth: the metrics endpoint {} is plain HTTP, not covered by CURVE; "
        "set auth.metrics_token_file or auth.metrics_allow to restrict it",
        config_.endpoints.metrics);
  }
  store_spec_ = MakeStoreSpec(config_, state_->DatabasePath());
  StoreUrl url;
  ANOMALYD_RETURN_IF_ERROR(ParseStoreUrl(store_spec_.url, &url).WithContext("storage.url"));
  store_name_ = url.name;
  Retrainer::RemoveUnfinishedBundles(state_->BundlesDir());

  std::unique_ptr<Store> store;
  ANOMALYD_RETURN_IF_ERROR(OpenStore(store_spec_, &store).WithContext(store_name_));
  ANOMALYD_RETURN_IF_ERROR(CheckStore(*store));
  ANOMALYD_RETURN_IF_ERROR(RestoreStreams(*store));
  std::unique_ptr<Store> reader;
  ANOMALYD_RETURN_IF_ERROR(OpenStore(ReadOnly(store_spec_), &reader).WithContext(store_name_));
  QueryOptions qo;
  qo.default_limit = config_.limits.default_query_limit;
  qo.max_reply_bytes = config_.limits.max_reply_bytes;
  qo.max_pending = config_.limits.max_pending_queries;
  queries_ = std::make_unique<QueryThread>(ctx_, std::move(reader), qo, &metrics_);
  score_budget_ = std::make_unique<ReplyBudget>(config_.limits.max_client_reply_bytes);
  control_budget_ = std::make_unique<ReplyBudget>(config_.limits.max_client_reply_bytes);

  WriterOptions wo;
  wo.retention.max_age_us = static_cast<int64_t>(config_.storage.retention_days * 86400e6);
  wo.retention.max_rows = config_.storage.retention_rows;
  // As many records may wait for their commit as for scoring: under
  // overload the daemon holds at most twice queue_records (plus a batch).
  wo.max_pending_records = config_.batcher.queue_records;
  writer_ = std::make_unique<Writer>(ctx_, std::move(store), wo);
  queue_ = std::make_unique<WorkQueue>(config_.batcher.queue_records);
  RetrainerOptions rto;
  rto.state = state_.get();
  rto.store = ReadOnly(store_spec_);
  rto.max_trainings = config_.daemon.max_trainings;
  rto.max_training_states = config_.daemon.max_training_states;
  rto.metrics = &metrics_;
  retrainer_ = std::make_unique<Retrainer>(rto, &streams_, writer_.get());
  std::unique_ptr<Store> rollback_reader;
  ANOMALYD_RETURN_IF_ERROR(
      OpenStore(ReadOnly(store_spec_), &rollback_reader).WithContext(store_name_));
  rollbacks_ = std::make_unique<RollbackThread>(std::move(rollback_reader), state_.get(), &streams_,
                                                writer_.get(), config_.train.device);
  scorer_ = std::make_unique<ScoringLoop>(ctx_, MakeScoringOptions(), queue_.get(), &streams_,
                                          writer_.get());
  if (!AlertSender::Sinks(config_.alerts).empty()) {
    AlertSenderOptions ao;
    ANOMALYD_RETURN_IF_ERROR(AlertSenderOptionsFrom(config_, &ao));
    std::unique_ptr<Store> alert_reader;
    ANOMALYD_RETURN_IF_ERROR(
        OpenStore(ReadOnly(store_spec_), &alert_reader).WithContext(store_name_));
    alert_sender_ = std::make_unique<AlertSender>(std::move(ao), std::move(alert_reader),
                                                  writer_.get(), &streams_);
  }
  return Status::OK();
}

Status Service::CheckStore(Store& store) {
  // A damaged file is better refused at start than found by a query.
  ANOMALYD_RETURN_IF_ERROR(store.QuickCheck().WithContext(
      store_name_ + " failed its integrity check; restore it from a backup"));
  std::vector<ModelRow> models;
  ANOMALYD_RETURN_IF_ERROR(store.AllModels(&models));
  if (models.empty() && state_->HasBundles() && !options_.accept_empty_db) {
    return Status(pb::FAILED_PRECONDITION,
                  "the database " + store_name_ + " has no models, but " + state_->BundlesDir() +
                      " holds bundles: the database was deleted or replaced. Restore it, "
                      "or start with --accept-empty-db to begin afresh");
  }
  int64_t unfinished = 0;
  ANOMALYD_RETURN_IF_ERROR(store.DeleteUnfinishedCandidates(&unfinished));
  if (unfinished > 0) {
    spdlog::info("forgot {} model version(s) reserved by trainings a stop cut short", unfinished);
  }
  // Registry rows written before bundle paths were relative.
  for (const ModelRow& m : models) {
    const std::string rel = state_->Relativize(m.bundle_path);
    if (rel.empty()) continue;
    ANOMALYD_RETURN_IF_ERROR(store.SetBundlePath(m.stream, m.version, rel));
    spdlog::info("stream '{}' version {}: bundle path {} stored as {}", m.stream, m.version,
                 m.bundle_path, rel);
  }
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

Status Service::RestoreStreams(Store& store) {
  std::vector<ModelRow> active;
  ANOMALYD_RETURN_IF_ERROR(store.ActiveModels(&active));
  for (const ModelRow& row : active) {
    std::unique_ptr<Model> model;
    Status s = Model::Load(state_->Resolve(row.bundle_path), config_.train.device, &model);
    if (!s.ok()) {
      // One broken bundle must not take the other streams down; status
      // shows the stream and why it serves nothing.
      spdlog::error("stream '{}': cannot load version {}: {}", row.stream, row.version,
                    s.ToString());
      streams_.SetUnavailable(
          row.stream, row.version,
          "cannot load version " + std::to_string(row.version) + ": " + s.ToString());
      continue;
    }
    double threshold = model->meta().threshold().value();
    pb::ThresholdMethod method = model->meta().threshold().method();
    ThresholdRow latest;
    if (store.LatestThreshold(row.stream, &latest).ok() && latest.model_version == row.version) {
      pb::ThresholdMethod latest_method;
      Status ms = ThresholdMethodFromName(latest.method, &latest_method);
      if (ms.ok()) {
        threshold = latest.value;
        method = latest_method;
      } else {
        spdlog::warn(
            "stream '{}': the latest threshold row is unusable ({}); serving "
            "the model's own threshold",
            row.stream, ms.ToString());
      }
    }
    spdlog::info("stream '{}': restored version {} ({} features, threshold {})", row.stream,
                 row.version, model->dim(), threshold);
    streams_.Install(row.stream, std::shared_ptr<const Model>(std::move(model)), row.version,
                     threshold, method);
  }
  return Status::OK();
}

Status Service::TrainConfiguredBaselines() {
  for (const auto& [stream, sc] : config_.streams) {
    if (sc.baseline.empty() || streams_.DimensionOf(stream) >= 0) continue;
    pb::RetrainRequest r;
    r.set_stream(stream);
    r.set_csv_path(sc.baseline);
    std::promise<Status> started, trained;
    ANOMALYD_RETURN_IF_ERROR(StartRetrain(
        r, [&trained](const Status& s) { trained.set_value(s); },
        [&started](const Status& s, uint32_t, Outbox&) { started.set_value(s); }));
    ANOMALYD_RETURN_IF_ERROR(started.get_future().get());
    Notify("STATUS=training stream " + stream);
    // Start-up training can outlast systemd's start timeout: ask for more
    // time while it runs, a little at a time.
    std::future<Status> outcome = trained.get_future();
    while (outcome.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      Notify("EXTEND_TIMEOUT_USEC=30000000");
    }
    ANOMALYD_RETURN_IF_ERROR(
        outcome.get().WithContext("training the baseline of stream '" + stream + "'"));
  }
  return Status::OK();
}

Status Service::Reload(std::vector<std::string>* kept) {
  NotifyReloading();
  kept->clear();
  Config fresh;
  Status s = LoadConfig(config_path_, &fresh, overrides_);
  if (!s.ok()) {
    s = Status(s.code(), "reload: keeping the running config: " + s.message());
    spdlog::error("{}", s.ToString());
    std::string why = s.message();
    std::replace(why.begin(), why.end(), '\n', ' ');  // one line: one sd_notify field
    Notify("READY=1\nSTATUS=serving " + std::to_string(streams_.Names().size()) +
           " stream(s); the last reload failed: " + why);
    return s;
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
  if (!fresh.auth.metrics_token_file.empty()) {
    std::string token;
    s = ReadMetricsToken(fresh.auth.metrics_token_file, &token);
    if (s.ok())
      metrics_access_.token = token;
    else
      kept->push_back("the metrics token: " + s.ToString());
  }
  metrics_access_.allow = fresh.auth.metrics_allow;
  if (alert_sender_) {
    // Shaping and the webhook secret take effect; receivers need a restart.
    AlertSenderOptions ao;
    s = AlertSenderOptionsFrom(fresh, &ao);
    if (s.ok()) {
      alert_sender_->Reload(ao.alerts.shaping, ao.stream_shaping, ao.webhook_secret);
    } else {
      kept->push_back("the alert shaping: " + s.ToString());
    }
  }
  spdlog::set_level(spdlog::level::from_str(config_.daemon.log_level));
  scorer_->Reconfigure(MakeScoringOptions());
  if (auth_ && fresh.auth.enabled) {
    // New client keys take effect at once; a broken folder keeps the old.
    s = auth_->ReloadClients(fresh.auth);
    if (!s.ok()) kept->push_back("the client keys: " + s.ToString());
  }
  for (const std::string& k : *kept) spdlog::error("reload: keeping {}", k);
  spdlog::info("reloaded {}", config_path_);
  Notify("READY=1\nSTATUS=serving " + std::to_string(streams_.Names().size()) + " stream(s)" +
         (kept->empty() ? "" : "; the last reload kept part of the old config"));
  return Status::OK();
}

}  // namespace anomalyd
