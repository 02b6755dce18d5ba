// Service's control endpoint: status, retrain, rollback, calibrate, models,
// reload, cancel. Runs on the I/O thread; anything that writes SQLite goes
// to the writer thread, which replies through the outbox.
#include <spdlog/spdlog.h>
#include <cmath>

#include <zmq_addon.hpp>

#include "daemon/convert.h"
#include "daemon/outbox.h"
#include "daemon/service.h"

namespace anomalyd {
namespace {

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

Status Service::StartRetrain(const pb::RetrainRequest& r,
                             std::function<void(const Status&)> on_trained,
                             RetrainStarted done) {
  const std::string stream = r.stream().empty() ? kDefaultStream : r.stream();
  if (stream.size() > kMaxStreamName) {
    return Status::InvalidArgument("stream name longer than " + std::to_string(kMaxStreamName) +
                                   " bytes");
  }
  // Refused at once, before any file is opened or version reserved.
  ANOMALYD_RETURN_IF_ERROR(retrainer_->CanStart(stream));
  auto job = std::make_shared<RetrainJob>();
  job->stream = stream;
  job->options = config_.train;
  job->on_done = std::move(on_trained);
  switch (r.source_case()) {
    case pb::RetrainRequest::kCsvPath: {
      // Opened here, once: the training thread reads this very file.
      auto fd = std::make_shared<UniqueFd>();
      ANOMALYD_RETURN_IF_ERROR(
          OpenCsvForRetrain(r.csv_path(), config_.limits.max_csv_bytes, fd.get()));
      job->source = RetrainJob::Source::kCsv;
      job->csv_fd = std::move(fd);
      job->csv_path = r.csv_path();
      job->max_csv_bytes = config_.limits.max_csv_bytes;
      break;
    }
    case pb::RetrainRequest::kInlineRows: {
      const pb::DenseBatch& b = r.inline_rows();
      ANOMALYD_RETURN_IF_ERROR(CheckInlineRows(b));
      job->source = RetrainJob::Source::kRows;
      job->rows = Matrix(static_cast<size_t>(b.values_size()) / b.dim(), b.dim());
      job->rows.data.assign(b.values().begin(), b.values().end());
      job->names.assign(r.feature_names().begin(), r.feature_names().end());
      if (!job->names.empty() && job->names.size() != b.dim()) {
        return Status::InvalidArgument("retrain: " + std::to_string(job->names.size()) +
                                       " feature names for dim " + std::to_string(b.dim()));
      }
      break;
    }
    case pb::RetrainRequest::kFromReservoir:
      job->source = RetrainJob::Source::kReservoir;
      break;
    default:
      return Status::InvalidArgument("retrain: give csv_path, inline_rows or from_reservoir");
  }
  // The version is allocated and published in one transaction before any
  // bundle exists; a start that then fails gives it back.
  writer_->Post([this, job, done = std::move(done)](Store& store, Outbox& outbox) {
    uint32_t version = 0;
    Status s = store.ReserveModelVersion(job->stream, &version);
    if (s.ok()) {
      job->version = version;
      s = retrainer_->Start(std::move(*job));
      if (!s.ok()) {
        Status d = store.DeleteCandidate(job->stream, version);
        if (!d.ok()) spdlog::warn("stream '{}': {}", job->stream, d.ToString());
      }
    }
    done(s, version, outbox);
  });
  return Status::OK();
}

void Service::Retrain(const Origin& origin, uint64_t id, const pb::RetrainRequest& r) {
  Status s = StartRetrain(r, nullptr, [this, origin, id](const Status& st, uint32_t version,
                                                        Outbox& outbox) {
    if (!st.ok()) {
      CountError(st.code());
      outbox.Reply(origin, EncodeError(id, st));
      return;
    }
    pb::Response resp;
    resp.set_request_id(id);
    resp.mutable_retrain()->set_target_version(version);
    outbox.Reply(origin, resp.SerializeAsString());
  });
  if (!s.ok()) SendError(*control_, origin, id, s);
}

void Service::Rollback(const Origin& origin, uint64_t id,
                       const pb::RollbackRequest& r) {
  const std::string stream = r.stream().empty() ? kDefaultStream : r.stream();
  if (retrainer_->Running(stream)) {
    SendError(*control_, origin, id,
              Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' is training"));
    return;
  }
  RollbackJob job;
  job.stream = stream;
  job.to_version = r.to_version();
  job.done = [this, origin, id](const Status& s, Outbox& outbox) {
    if (!s.ok()) {
      CountError(s.code());
      outbox.Reply(origin, EncodeError(id, s));
      return;
    }
    pb::Response resp;
    resp.set_request_id(id);
    outbox.Reply(origin, resp.SerializeAsString());
  };
  Status s = rollbacks_->Submit(std::move(job));
  if (!s.ok()) SendError(*control_, origin, id, s);
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
  if (r.method() == pb::FIXED) {
    if (!std::isfinite(r.value())) {
      return Status::InvalidArgument("calibrate: a fixed threshold must be a finite number");
    }
    // A bar below most normal scores flags nearly every record: say so
    // rather than flood the store, unless the operator insists.
    size_t above = 0;
    for (double v : scores) above += v > r.value();
    if (!r.force() && !scores.empty() && 2 * above > scores.size()) {
      return Status::InvalidArgument(
          "calibrate: a fixed threshold of " + std::to_string(r.value()) + " would flag " +
          std::to_string(100 * above / scores.size()) +
          "% of the model's holdout records (all normal); set force to apply it anyway");
    }
  }
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
  if (!ReceiveRequest(*control_, Endpoint::kControl, &origin, &req)) return;
  try {
    HandleControl(origin, req);
  } catch (const std::exception& e) {
    AnswerFailure(*control_, origin, req.request_id(), e);
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
    case pb::Request::kModels:
      SubmitQuery(origin, req, *control_);
      return;  // the query thread replies
    case pb::Request::kRetrain:
      Retrain(origin, req.request_id(), req.retrain());
      return;  // the writer thread replies
    case pb::Request::kRollback:
      Rollback(origin, req.request_id(), req.rollback());
      return;  // the writer thread replies
    case pb::Request::kCalibrate:
      Calibrate(origin, req.request_id(), req.calibrate());
      return;  // the writer thread replies
    case pb::Request::kReload: {
      // Done here, on the I/O thread, as for SIGHUP: the reply carries the
      // outcome.
      std::vector<std::string> kept;
      s = Reload(&kept);
      pb::ReloadResponse* r = resp.mutable_reload();
      r->set_config_path(config_path_);
      for (std::string& k : kept) r->add_kept(std::move(k));
      break;
    }
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
