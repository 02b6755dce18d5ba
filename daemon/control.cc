// Service's control endpoint: status, retrain, rollback, calibrate, models,
// reload, cancel. Runs on the I/O thread; anything that writes SQLite goes
// to the writer thread, which replies through the outbox.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include <zmq_addon.hpp>

#include "daemon/convert.h"
#include "daemon/outbox.h"
#include "daemon/service.h"

namespace anomalyd {
namespace {

// A CSV to retrain from must be a regular file: a FIFO or a device such as
// /dev/zero would block the training thread or feed it without end.
Status CheckCsvPath(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("retrain: empty csv_path");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    return Status::NotFound("retrain: cannot read " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("retrain: " + path + " is not a regular file");
  }
  return Status::OK();
}

// Refused here rather than by a training that would fail (or diverge) later.
Status CheckInlineRows(const pb::DenseBatch& b) {
  if (b.dim() == 0 || b.values_size() == 0 || b.values_size() % b.dim() != 0) {
    return Status::InvalidArgument("retrain: inline rows must be N x dim values, N > 0");
  }
  for (int i = 0; i < b.values_size(); ++i) {
    if (!std::isfinite(b.values(i))) {
      return Status(pb::NON_FINITE, "retrain: inline row " + std::to_string(i / b.dim()) +
                                        ", feature " + std::to_string(i % b.dim()) +
                                        " is not finite");
    }
  }
  return Status::OK();
}

}  // namespace

pb::StatusResponse Service::MakeStatus() const {
  pb::StatusResponse s;
  s.set_version(ANOMALYD_VERSION);
  s.set_started_us(started_us_);
  for (pb::StreamStatus& st : streams_.Status()) {
    ServingSnapshot snap = streams_.Snapshot(st.stream());
    if (snap.model && s.device().empty()) s.set_device(snap.model->device());
    *s.add_streams() = std::move(st);
  }
  s.set_storage_ok(writer_->healthy());
  if (!writer_->healthy()) s.set_storage_error(writer_->last_error());
  s.set_queue_depth(queue_->records());
  return s;
}

Status Service::StartRetrain(const pb::RetrainRequest& r, uint32_t* version) {
  const std::string stream = r.stream().empty() ? kDefaultStream : r.stream();
  if (stream.size() > 128) return Status::InvalidArgument("stream name longer than 128 bytes");
  RetrainJob job;
  job.stream = stream;
  job.options = config_.train;
  switch (r.source_case()) {
    case pb::RetrainRequest::kCsvPath:
      ANOMALYD_RETURN_IF_ERROR(CheckCsvPath(r.csv_path()));
      job.source = RetrainJob::Source::kCsv;
      job.csv_path = r.csv_path();
      break;
    case pb::RetrainRequest::kInlineRows: {
      const pb::DenseBatch& b = r.inline_rows();
      ANOMALYD_RETURN_IF_ERROR(CheckInlineRows(b));
      job.source = RetrainJob::Source::kRows;
      job.rows = Matrix(static_cast<size_t>(b.values_size()) / b.dim(), b.dim());
      job.rows.data.assign(b.values().begin(), b.values().end());
      job.names.assign(r.feature_names().begin(), r.feature_names().end());
      if (!job.names.empty() && job.names.size() != b.dim()) {
        return Status::InvalidArgument("retrain: " + std::to_string(job.names.size()) +
                                       " feature names for dim " + std::to_string(b.dim()));
      }
      break;
    }
    case pb::RetrainRequest::kFromReservoir:
      job.source = RetrainJob::Source::kReservoir;
      break;
    default:
      return Status::InvalidArgument("retrain: give csv_path, inline_rows or from_reservoir");
  }
  if (retrainer_->Running(stream)) {
    return Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' is already training");
  }
  ANOMALYD_RETURN_IF_ERROR(reader_->NextModelVersion(stream, &job.version));
  *version = job.version;
  return retrainer_->Start(std::move(job));
}

void Service::Rollback(const Origin& origin, uint64_t id,
                       const pb::RollbackRequest& r) {
  const std::string stream = r.stream().empty() ? kDefaultStream : r.stream();
  if (retrainer_->Running(stream)) {
    SendError(*control_, origin, id,
              Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' is training"));
    return;
  }
  const uint32_t to = r.to_version();
  const std::string device = config_.train.device;
  writer_->Post([this, origin, id, stream, to, device](Store& store, Outbox& outbox) {
    std::vector<ModelRow> models;
    Status s = store.ListModels(stream, &models);
    const ModelRow* target = nullptr;
    for (const ModelRow& m : models) {
      if (m.version == to) target = &m;
    }
    if (s.ok() && target == nullptr) {
      s = Status::NotFound("stream '" + stream + "' has no version " + std::to_string(to));
    }
    std::unique_ptr<Model> model;
    if (s.ok()) s = Model::Load(target->bundle_path, device, &model);
    if (s.ok()) s = store.ActivateModel(stream, to);
    if (s.ok()) {
      ThresholdRow t;
      t.stream = stream;
      t.model_version = to;
      t.method = ThresholdMethodName(model->meta().threshold().method());
      t.value = model->meta().threshold().value();
      t.window = model->meta().threshold().sample_count();
      s = store.AppendThreshold(&t);
      streams_.Install(stream, std::shared_ptr<const Model>(std::move(model)), to,
                       t.value, ThresholdMethodFromName(t.method));
      spdlog::info("stream '{}' rolled back to version {}", stream, to);
    }
    if (!s.ok()) {
      CountError(s.code());
      outbox.Reply(origin, EncodeError(id, s));
      return;
    }
    pb::Response resp;
    resp.set_request_id(id);
    outbox.Reply(origin, resp.SerializeAsString());
  });
}

Status Service::ComputeCalibration(const pb::CalibrateRequest& r, ThresholdRow* t,
                                   pb::ThresholdMethod* method) const {
  const std::string stream = r.stream().empty() ? kDefaultStream : r.stream();
  ServingSnapshot snap = streams_.Snapshot(stream);
  if (!snap.model) return Status(pb::UNKNOWN_STREAM, "stream '" + stream + "' has no model");
  ThresholdOptions o = config_.train.threshold;
  o.method = r.method();
  if (r.contamination() != 0) o.contamination = r.contamination();
  if (r.risk() != 0) o.risk = r.risk();
  o.fixed_value = r.value();
  const auto& h = snap.model->meta().holdout_scores();
  std::vector<double> scores(h.begin(), h.end());
  pb::ThresholdParams params;
  ANOMALYD_RETURN_IF_ERROR(ComputeThreshold(o, scores, &params));
  t->stream = stream;
  t->model_version = snap.version;
  t->method = ThresholdMethodName(params.method());
  t->value = params.value();
  t->window = params.sample_count();
  *method = params.method();
  return Status::OK();
}

void Service::Calibrate(const Origin& origin, uint64_t id, const pb::CalibrateRequest& r) {
  ThresholdRow t;
  pb::ThresholdMethod method;
  Status s = ComputeCalibration(r, &t, &method);
  if (!s.ok()) {
    SendError(*control_, origin, id, s);
    return;
  }
  // Stored, then applied, then acknowledged: a client told the threshold is
  // set finds it served after a crash. Models are swapped on this thread
  // too, so the version cannot change between the check and the set.
  writer_->Post([this, origin, id, t, method](Store& store, Outbox& outbox) mutable {
    Status st = streams_.Snapshot(t.stream).version == t.model_version
                    ? store.AppendThreshold(&t)
                    : Status(pb::FAILED_PRECONDITION,
                             "stream '" + t.stream + "' changed its model meanwhile");
    if (!st.ok()) {
      CountError(st.code());
      outbox.Reply(origin, EncodeError(id, st));
      return;
    }
    streams_.SetThreshold(t.stream, t.value, method);
    spdlog::info("stream '{}': threshold set to {} ({})", t.stream, t.value, t.method);
    pb::Response resp;
    resp.set_request_id(id);
    *resp.mutable_status() = MakeStatus();
    outbox.Reply(origin, resp.SerializeAsString());
  });
}

void Service::OnControlSocket() {
  Origin origin;
  pb::Request req;
  if (ReceiveRequest(*control_, Endpoint::kControl, &origin, &req)) {
    HandleControl(origin, req);
  }
}

void Service::HandleControl(const Origin& origin, const pb::Request& req) {
  pb::Response resp;
  resp.set_request_id(req.request_id());
  Status s;
  switch (req.body_case()) {
    case pb::Request::kStatus:
      *resp.mutable_status() = MakeStatus();
      break;
    case pb::Request::kQuery:
      HandleQuery(origin, req, *control_);
      return;
    case pb::Request::kRetrain: {
      uint32_t version = 0;
      s = StartRetrain(req.retrain(), &version);
      resp.mutable_retrain()->set_target_version(version);
      break;
    }
    case pb::Request::kRollback:
      Rollback(origin, req.request_id(), req.rollback());
      return;  // the writer thread replies
    case pb::Request::kCalibrate:
      Calibrate(origin, req.request_id(), req.calibrate());
      return;  // the writer thread replies
    case pb::Request::kModels: {
      std::vector<std::string> names;
      if (!req.models().stream().empty()) names.push_back(req.models().stream());
      else names = streams_.Names();
      for (const std::string& n : names) {
        std::vector<ModelRow> rows;
        s = reader_->ListModels(n, &rows);
        if (!s.ok()) break;
        for (const ModelRow& m : rows) ToProto(m, resp.mutable_models()->add_models());
      }
      break;
    }
    case pb::Request::kReload:
      signals_->reload = true;
      break;
    case pb::Request::kCancelRetrain:
      s = retrainer_->Cancel(req.cancel_retrain().stream().empty()
                                 ? kDefaultStream : req.cancel_retrain().stream());
      break;
    default:
      s = Status(pb::UNKNOWN_REQUEST, "this request type is not served on the control endpoint");
      break;
  }
  if (!s.ok()) {
    SendError(*control_, origin, req.request_id(), s);
    return;
  }
  Send(*control_, origin, resp.SerializeAsString());
}

}  // namespace anomalyd
