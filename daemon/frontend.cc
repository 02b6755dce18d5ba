// Service's requests on the I/O thread: decodes them, hands score work to
// the queue (or scores a lone small request here), answers errors at once,
// and sends replies without blocking. The loop that calls these is in
// io_thread.cc.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>
#include <zmq_addon.hpp>

#include "common/clock.h"
#include "daemon/convert.h"
#include "daemon/notify.h"
#include "daemon/outbox.h"
#include "daemon/reply_encoder.h"
#include "daemon/service.h"

namespace anomalyd {
namespace {

// Splits a ROUTER message into routing frames and the payload. Clients use
// DEALER ([identity][payload]) or REQ ([identity][""][payload]); anything
// else is malformed.
bool SplitRouterMessage(std::vector<zmq::message_t>& frames, Origin* origin,
                        zmq::message_t** payload) {
  origin->envelope.clear();
  if (frames.empty()) return false;
  origin->envelope.push_back(frames[0].to_string());
  if (frames.size() == 2) {
    *payload = &frames[1];
    return true;
  }
  if (frames.size() == 3 && frames[1].size() == 0) {
    origin->envelope.emplace_back();
    *payload = &frames[2];
    return true;
  }
  // Keep a REQ client's delimiter so that it still gets its error.
  if (frames.size() > 1 && frames[1].size() == 0) origin->envelope.emplace_back();
  return false;
}

// The records a score request carries, as the queue counts them.
uint64_t RecordCount(const pb::ScoreRequest& r) {
  if (r.records_size() > 0 || r.dense().dim() == 0) return static_cast<uint64_t>(r.records_size());
  return static_cast<uint64_t>(r.dense().values_size()) / r.dense().dim();
}

}  // namespace

void Service::CountError(ErrorCode code) { metrics_.CountError(code); }

RequestLimits Service::Limits() const {
  return {config_.limits.max_message_bytes, config_.limits.max_records_per_request};
}

std::string Service::RenderMetrics() const {
  Metrics::Gauges g;
  g.queue_records = queue_->records();
  g.queue_capacity = config_.batcher.queue_records;
  g.storage_ok = writer_->healthy();
  g.anomalies_unstored = writer_->unstored();
  g.started_us = started_us_;
  g.streams = streams_.Status();
  g.counts = streams_.Counts();
  for (const pb::StreamStatus& st : g.streams) {
    const ServingSnapshot snap = streams_.Snapshot(st.stream());
    if (snap.model) g.model_created_us[st.stream()] = snap.model->meta().created_us();
  }
  g.process_ok = ReadProcessStats(&g.process);
  if (alert_sender_) {
    g.alerts_on = true;
    g.alerts = alert_sender_->Stats();
    // Every receiver from the start, failures or not.
    for (const AlertSender::Sink& k : AlertSender::Sinks(config_.alerts)) {
      g.alerts.delivered[k.name] += 0;
      g.alerts.failed[k.name] += 0;
    }
  }
  return metrics_.Render(g);
}

void Service::OnMetricsSocket() {
  // A ZMQ_STREAM socket: [connection id][bytes]. An empty payload is a
  // connect or disconnect notice. One request per connection, then close.
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(*metrics_http_, std::back_inserter(frames), zmq::recv_flags::dontwait) ||
      frames.size() != 2 || frames[1].size() == 0) {
    return;
  }
  std::string peer;
  try {
    const char* address = frames[1].gets("Peer-Address");
    if (address != nullptr) peer = address;
  } catch (const zmq::error_t&) {
    // No address known (not TCP): only an empty allow-list lets it in.
  }
  const std::string response = MetricsHttpResponse(frames[1].to_string(), peer, metrics_access_,
                                                   [this] { return RenderMetrics(); });
  const std::string id = frames[0].to_string();
  // Never blocking: a client that is gone or does not read loses its
  // reply, and the I/O thread goes on (a blocking send here once froze
  // every endpoint). The empty message after the reply closes the
  // connection.
  SendFrames(*metrics_http_, {zmq::buffer(id), zmq::buffer(response)});
  SendFrames(*metrics_http_, {zmq::buffer(id), zmq::const_buffer(nullptr, 0)});
}

void Service::Send(zmq::socket_t& socket, const Origin& origin, const std::string& payload) {
  std::vector<zmq::const_buffer> parts;
  for (const std::string& f : origin.envelope) parts.push_back(zmq::buffer(f));
  parts.push_back(zmq::buffer(payload));
  SendFrames(socket, parts);
}

ReplyBudget* Service::BudgetFor(const zmq::socket_t& socket) {
  if (&socket == score_.get()) return score_budget_.get();
  if (control_ && &socket == control_.get()) return control_budget_.get();
  return nullptr;
}

void Service::SendFrames(zmq::socket_t& socket, const std::vector<zmq::const_buffer>& parts) {
  // Every send on the I/O thread is non-blocking: a full queue or a
  // vanished peer drops the reply (counted), it never stalls the loop.
  try {
    const zmq::const_buffer& last = parts.back();
    zmq::message_t counted;
    ReplyBudget* budget =
        last.size() >= ReplyBudget::kCountedBytes && parts.size() > 1 ? BudgetFor(socket) : nullptr;
    if (budget != nullptr &&
        !budget->Make(std::string(static_cast<const char*>(parts[0].data()), parts[0].size()),
                      last.data(), last.size(), &counted)) {
      return DroppedReply("its client has limits.max_client_reply_bytes of replies unread");
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto more = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      // Only the first frame can fail for want of room: ZeroMQ checks the
      // bound once per message, and the rest of it then always fits.
      const bool sent = budget != nullptr && i + 1 == parts.size()
                            ? socket.send(counted, more | zmq::send_flags::dontwait).has_value()
                            : socket.send(parts[i], more | zmq::send_flags::dontwait).has_value();
      if (!sent) return DroppedReply("its queue is full");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != EHOSTUNREACH) throw;
    DroppedReply("it disconnected");
  }
}

void Service::DroppedReply(const char* why) {
  metrics_.CountDroppedReply();
  const int64_t now = SteadyMicros();
  if (now - last_drop_log_us_ >= 10'000'000) {  // at most one line per 10 s
    last_drop_log_us_ = now;
    spdlog::warn("a reply was dropped: {} (anomalyd_replies_dropped_total counts them)", why);
  }
}

void Service::SendError(zmq::socket_t& socket, const Origin& origin, uint64_t id, const Status& s,
                        int record) {
  CountError(s.code());
  spdlog::debug("request {} rejected: {}", id, s.ToString());
  if (origin.endpoint == Endpoint::kIngest) return;
  Send(socket, origin, EncodeError(id, s, record));
}

bool Service::ReceiveRequest(zmq::socket_t& socket, Endpoint endpoint, Origin* origin,
                             pb::Request* req) {
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
    return false;
  }
  metrics_.CountRequest();
  origin->endpoint = endpoint;
  zmq::message_t* payload = nullptr;
  if (endpoint == Endpoint::kIngest) {
    if (frames.size() != 1) {
      CountError(pb::MALFORMED);
      spdlog::debug("ingest: message of {} frames dropped", frames.size());
      return false;
    }
    payload = &frames[0];
  } else if (!SplitRouterMessage(frames, origin, &payload)) {
    SendError(socket, *origin, 0,
              Status(pb::MALFORMED, "expected one request frame after the routing frames, got " +
                                        std::to_string(frames.size())));
    return false;
  }
  Status s = DecodeRequest(payload->data(), payload->size(), Limits(), req);
  if (!s.ok()) {
    SendError(socket, *origin, req->request_id(), s);
    return false;
  }
  return true;
}

void Service::OnScoreSocket(zmq::socket_t& socket, Endpoint endpoint) {
  Origin origin;
  pb::Request req;
  if (!ReceiveRequest(socket, endpoint, &origin, &req)) return;
  try {
    HandleScoreSocketRequest(socket, endpoint, origin, req);
  } catch (const std::exception& e) {
    AnswerFailure(socket, origin, req.request_id(), e);
  }
}

void Service::HandleScoreSocketRequest(zmq::socket_t& socket, Endpoint endpoint,
                                       const Origin& origin, const pb::Request& req) {
  switch (req.body_case()) {
    case pb::Request::kScore:
      HandleScore(origin, req, socket);
      return;
    case pb::Request::kQuery:
      if (endpoint == Endpoint::kScore) {
        SubmitQuery(origin, req, socket);
        return;
      }
      break;
    case pb::Request::kStatus:
      if (endpoint == Endpoint::kScore) {
        pb::Response r;
        r.set_request_id(req.request_id());
        *r.mutable_status() = MakeStatus();
        Send(socket, origin, r.SerializeAsString());
        return;
      }
      break;
    default:
      break;
  }
  SendError(
      socket, origin, req.request_id(),
      Status(pb::UNKNOWN_REQUEST,
             "this request type is not served on the " +
                 std::string(endpoint == Endpoint::kIngest ? "ingest" : "score") + " endpoint"));
}

void Service::HandleScore(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to) {
  // All parts or none: a request is never half-queued. Checked before any
  // copying, since under overload most requests end here.
  const uint64_t records = RecordCount(req.score());
  if (queue_->records() + records > config_.batcher.queue_records) {
    SendError(reply_to, origin, req.request_id(),
              Status(pb::BUSY, "scoring queue is full; retry later"));
    return;
  }
  std::vector<ScorePart> parts;
  int bad = -1;
  Status s = ValidateScoreRequest(
      req.score(), Limits(),
      [this](const std::string& stream) { return streams_.DimensionOf(stream); }, &parts, &bad);
  if (!s.ok()) {
    SendError(reply_to, origin, req.request_id(), s, bad);
    return;
  }
  auto pending = std::make_shared<PendingReply>();
  pending->origin = origin;
  pending->request_id = req.request_id();
  pending->contributions = req.score().contributions();
  pending->received = std::chrono::steady_clock::now();
  pending->latency = &metrics_.latency_seconds();
  pending->response.set_request_id(req.request_id());
  pending->columnar = req.score().columnar();
  if (origin.endpoint != Endpoint::kIngest) {
    s = PresizeReply(parts, pending.get());
    if (!s.ok()) {
      SendError(reply_to, origin, req.request_id(), s);
      return;
    }
  }
  pending->parts_left = static_cast<int>(parts.size());
  std::vector<WorkItem> items;
  for (ScorePart& p : parts) items.push_back(WorkItem{pending, std::move(p)});
  // A lone small request is scored right here: three thread hand-offs
  // (to the scorer, to the outbox, back) cost more than scoring it.
  if (ScoreHere(records) && scorer_->TryScoreNow(items, *this)) {
    metrics_.CountScoredInline();
    return;
  }
  for (WorkItem& w : items) {
    if (!queue_->TryPush(std::move(w))) {
      // Only another producer could fill it meanwhile, and there is none:
      // the I/O thread is the only one. Still, never drop silently.
      pending->response.mutable_error()->set_code(pb::BUSY);
      pending->response.mutable_error()->set_message("scoring queue is full; retry later");
      CountError(pb::BUSY);
      if (pending->parts_left.fetch_sub(1) == 1) {
        Send(reply_to, origin,
             EncodeError(req.request_id(), Status(pb::BUSY, "scoring queue is full")));
      }
    }
  }
}

void Service::SubmitQuery(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to) {
  if (!queries_->Submit(origin, req,
                        req.has_models() ? streams_.Names() : std::vector<std::string>())) {
    SendError(
        reply_to, origin, req.request_id(),
        Status(pb::BUSY, "too many queries waiting (limits.max_pending_queries); retry later"));
  }
}

void Service::AnswerFailure(zmq::socket_t& socket, const Origin& origin, uint64_t id,
                            const std::exception& e) {
  spdlog::error("request {}: {}", id, e.what());
  SendError(socket, origin, id, Status::Internal(std::string("request failed: ") + e.what()));
}

void Service::Reply(const Origin& origin, const std::string& payload) {
  zmq::socket_t* target = SocketFor(static_cast<char>(origin.endpoint));
  if (target != nullptr) Send(*target, origin, payload);
}

bool Service::ScoreHere(uint64_t records) const {
  // Past the first few messages of a turn the load is sustained: those
  // queue, the scorer thread takes them in batches beside this one.
  constexpr int kInlineBurst = 8;
  return records <= config_.batcher.inline_max_records && burst_ < kInlineBurst;
}

}  // namespace anomalyd
