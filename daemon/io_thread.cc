// Service's I/O thread: binds the endpoints of one table (Endpoints), polls
// them with the outbox, and hands each readable socket's messages to the
// handler its row names (frontend.cc, control.cc); forwards what the other
// threads put in the outbox; pings the watchdog; drains on shutdown.
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>
#include <zmq_addon.hpp>

#include "common/clock.h"
#include "daemon/notify.h"
#include "daemon/outbox.h"
#include "daemon/service.h"

namespace anomalyd {
namespace {

// The I/O loop wakes at least this often to check signals and the watchdog.
constexpr std::chrono::milliseconds kPollInterval(100);
// How long the last replies may take to leave on shutdown.
constexpr int kShutdownLingerMs = 2000;
// Largest message the alerts endpoint takes from a subscriber.
constexpr int kMaxSubscriptionBytes = 1024;
// Replies queued per client before further ones are dropped (and counted):
// ten times what ZeroMQ allows by default, enough for thousands of requests
// in flight, while bounding what a client that sends but never reads can
// cost (a few MB of single-record replies, ~250 MB of columnar replies to
// 1024-record batches).
constexpr int kReplyQueueBound = 10'000;

// zmq::poll that treats an interrupting signal as "nothing happened": the
// loop checks the signal flags right after.
void Poll(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout) {
  try {
    zmq::poll(items, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    for (auto& i : items) i.revents = 0;
  }
}

}  // namespace

std::vector<Service::EndpointRow> Service::Endpoints() {
  // Bound in this order; polled in this order each turn, after the outbox.
  // Score and ingest take at most 256 messages a turn, so that control
  // stays served during a flood.
  return {
      {"score", &score_, zmq::socket_type::router, &config_.endpoints.score, 256,
       &Service::OnScoreMessage},
      {"control", &control_, zmq::socket_type::router, &config_.endpoints.control, 0,
       &Service::OnControlSocket},
      {"alerts", &alerts_, zmq::socket_type::pub, &config_.endpoints.alerts, 0, nullptr},
      {"metrics", &metrics_http_, zmq::socket_type::stream, &config_.endpoints.metrics, 0,
       &Service::OnMetricsSocket},
      {"ingest", &ingest_, zmq::socket_type::pull, &config_.endpoints.ingest, 256,
       &Service::OnIngestMessage},
  };
}

void Service::Serve(const EndpointRow& e) {
  zmq::socket_t& socket = **e.socket;
  for (int k = 0; e.per_turn == 0 || k < e.per_turn; ++k) {
    if (!(socket.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
    burst_ = k;
    (this->*e.on_message)();
  }
}

void Service::OnScoreMessage() { OnScoreSocket(*score_, Endpoint::kScore); }
void Service::OnIngestMessage() { OnScoreSocket(*ingest_, Endpoint::kIngest); }

Status Service::Bind(const EndpointRow& row) {
  std::unique_ptr<zmq::socket_t>& sock = *row.socket;
  const zmq::socket_type type = row.type;
  const std::string& addr = *row.address;
  const char* name = row.name;
  if (addr.empty()) return Status::OK();
  sock = std::make_unique<zmq::socket_t>(ctx_, type);
  sock->set(zmq::sockopt::linger, kShutdownLingerMs);
  // Beyond twice the configured maximum ZeroMQ drops the peer before we
  // ever see the message; between the two we answer TOO_LARGE. What
  // reaches PUB are subscriptions (a byte and a stream name of at most
  // 128): a subscriber sending more is dropped instead of its "topic"
  // being kept in memory.
  sock->set(zmq::sockopt::maxmsgsize,
            type == zmq::socket_type::pub
                ? int64_t{kMaxSubscriptionBytes}
                : static_cast<int64_t>(2 * config_.limits.max_message_bytes + 4096));
  if (type == zmq::socket_type::router) {
    // ZeroMQ's default bound (1000 messages per client) with
    // router_mandatory off discarded replies without a word once a
    // client had ~500 requests in flight. Replies may now queue up to
    // kReplyQueueBound per client; beyond that (a client that sends and
    // never reads), or to a client that left, Send reports the failure
    // and the reply is dropped, counted and logged.
    sock->set(zmq::sockopt::sndhwm, kReplyQueueBound);
    sock->set(zmq::sockopt::router_mandatory, true);
  }
  if (auth_) auth_->Secure(*sock, name);  // CURVE options must precede bind
  try {
    sock->bind(addr);
  } catch (const zmq::error_t& e) {
    return Status::IoError(std::string("cannot bind ") + name + " endpoint " + addr + ": " +
                           e.what());
  }
  spdlog::info("{} endpoint on {}", name, addr);
  return Status::OK();
}

zmq::socket_t* Service::SocketFor(char tag) {
  if (tag == kAlertTag) return alerts_.get();
  if (tag == static_cast<char>(Endpoint::kScore)) return score_.get();
  if (tag == static_cast<char>(Endpoint::kControl)) return control_.get();
  return nullptr;
}

void Service::ForwardOutbox(zmq::socket_t& outbox) {
  std::vector<zmq::message_t> frames;
  while (zmq::recv_multipart(outbox, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
    if (frames.size() >= 2) {
      const char tag = *static_cast<const char*>(frames[0].data());
      zmq::socket_t* target = SocketFor(tag);
      if (target != nullptr) {
        std::vector<zmq::const_buffer> parts;
        for (size_t i = 1; i < frames.size(); ++i) {
          parts.push_back(zmq::buffer(frames[i].data(), frames[i].size()));
        }
        SendFrames(*target, parts);
      }
    }
    frames.clear();
  }
}

Status Service::Run(Signals* signals) {
  signals_ = signals;
  outbox_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pull);
  outbox_->set(zmq::sockopt::rcvhwm, 0);
  outbox_->bind(kOutboxAddress);
  const std::vector<EndpointRow> endpoints = Endpoints();
  for (const EndpointRow& e : endpoints) ANOMALYD_RETURN_IF_ERROR(Bind(e));

  writer_->Start();
  scorer_->Start();
  queries_->Start();
  rollbacks_->Start();
  if (alert_sender_) ANOMALYD_RETURN_IF_ERROR(alert_sender_->Start());
  ANOMALYD_RETURN_IF_ERROR(TrainConfiguredBaselines());
  Notify("READY=1");
  Notify("STATUS=serving " + std::to_string(streams_.Names().size()) + " stream(s)");
  spdlog::info("anomalyd ready: {} stream(s)", streams_.Names().size());

  const uint64_t watchdog_us = WatchdogIntervalMicros();
  auto last_ping = std::chrono::steady_clock::now();
  // items[0] is the outbox; items[i + 1] the endpoint polled[i].
  std::vector<zmq::pollitem_t> items = {{outbox_->handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<const EndpointRow*> polled;
  for (const EndpointRow& e : endpoints) {
    if (*e.socket == nullptr || e.on_message == nullptr) continue;
    items.push_back({(*e.socket)->handle(), 0, ZMQ_POLLIN, 0});
    polled.push_back(&e);
  }
  while (!signals->stop.load()) {
    Poll(items, kPollInterval);
    try {
      if (items[0].revents & ZMQ_POLLIN) ForwardOutbox(*outbox_);
      for (size_t i = 0; i < polled.size(); ++i) {
        if (items[i + 1].revents & ZMQ_POLLIN) Serve(*polled[i]);
      }
    } catch (const std::exception& e) {
      // One bad message or a transient socket error must not end the
      // service: log it and serve the next one.
      spdlog::error("I/O loop: {}", e.what());
    }
    if (signals->reload.exchange(false)) {
      std::vector<std::string> kept;
      (void)Reload(&kept);  // logged; nobody to answer
    }
    if (watchdog_us > 0) {
      const auto now = std::chrono::steady_clock::now();
      const int64_t now_us =
          std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
      // Ping only while the scorer turns: a wedged scoring thread must get
      // the daemon restarted.
      if (now - last_ping > std::chrono::microseconds(watchdog_us / 3) &&
          now_us - scorer_->heartbeat_us() < static_cast<int64_t>(watchdog_us / 2)) {
        Notify("WATCHDOG=1");
        last_ping = now;
      }
    }
  }

  spdlog::info("stopping: draining {} queued record(s)", queue_->records());
  Notify("STOPPING=1");
  // Stop taking work, let the scorer and writer finish, and keep forwarding
  // their replies until they are done.
  queue_->Close();
  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    scorer_->Join();
    retrainer_->Shutdown();
    rollbacks_->Stop();
    queries_->Stop();
    // Before the writer, which runs its saves; what it has not delivered
    // waits in the outbox for the next start.
    if (alert_sender_) alert_sender_->Stop();
    writer_->Stop();
    drained = true;
  });
  std::vector<zmq::pollitem_t> out = {{outbox_->handle(), 0, ZMQ_POLLIN, 0}};
  while (!drained.load()) {
    Poll(out, std::chrono::milliseconds(10));
    ForwardOutbox(*outbox_);
  }
  drainer.join();
  ForwardOutbox(*outbox_);
  spdlog::info("stopped");
  return Status::OK();
}

}  // namespace anomalyd
