#include "clients/client.h"

#include <atomic>
#include <cstring>
#include <random>

namespace anomalyd {

void SetCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys) {
  if (!keys.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, keys.server_key);
  socket.set(zmq::sockopt::curve_publickey, keys.client.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.client.secret_key);
}

Client::Client(zmq::context_t& ctx, std::string endpoint,
               std::chrono::milliseconds timeout, CurveClientKeys curve)
    : ctx_(ctx), endpoint_(std::move(endpoint)), timeout_(timeout),
      curve_(std::move(curve)) {
  // Start ids at a random point so two clients' ids are unlikely to be
  // confused in logs.
  next_id_ = std::random_device{}() | 1;
  Reconnect();
}

void Client::Reconnect() {
  if (monitor_) {
    zmq_socket_monitor(socket_->handle(), nullptr, 0);  // stop it
    monitor_.reset();
  }
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  SetCurveClient(*socket_, curve_);
  if (curve_.enabled()) {
    static std::atomic<uint64_t> monitors{0};
    const std::string address =
        "inproc://anomalyd-client-monitor-" + std::to_string(monitors++);
    // Without a monitor a refused key still ends in the timeout.
    if (zmq_socket_monitor(socket_->handle(), address.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0) {
      monitor_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
      monitor_->set(zmq::sockopt::linger, 0);
      monitor_->connect(address);
    }
  }
  socket_->connect(endpoint_);
}

bool Client::HandshakeRefused() {
  bool refused = false;
  for (;;) {
    // An event is two frames: 2 bytes of event, 4 of value; the address.
    zmq::message_t event, address;
    if (!monitor_->recv(event, zmq::recv_flags::dontwait)) return refused;
    if (event.more()) (void)monitor_->recv(address, zmq::recv_flags::dontwait);
    uint16_t id = 0;
    if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) refused = true;
  }
}

Client::Wait Client::WaitFor(short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wait::kTimedOut;
    zmq::pollitem_t items[] = {{socket_->handle(), 0, events, 0},
                               {monitor_ ? monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    const int count = monitor_ ? 2 : 1;
    if (zmq::poll(items, count, left) == 0) return Wait::kTimedOut;
    if (count == 2 && (items[1].revents & ZMQ_POLLIN) && HandshakeRefused()) {
      return Wait::kRefused;
    }
    if (items[0].revents & events) return Wait::kReady;
  }
}

Status Client::TimedOut(const char* what) {
  Reconnect();
  return Status::IoError(std::string(what) + " " + endpoint_ + " within " +
                         std::to_string(timeout_.count()) + " ms");
}

Status Client::Refused() {
  Reconnect();
  return Status(pb::UNAUTHENTICATED,
                endpoint_ + " refused this client's key (CURVE): it is not on the endpoint's " +
                    "allow-list");
}

Status Client::Call(pb::Request request, pb::Response* response) {
  const uint64_t id = next_id_++;
  request.set_request_id(id);
  const std::string payload = request.SerializeAsString();
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  try {
    // Never a blocking send: with no connection to take the request (the
    // server refused our key) or a full queue, it would outlast any deadline.
    while (!socket_->send(zmq::buffer(payload), zmq::send_flags::dontwait)) {
      const Wait w = WaitFor(ZMQ_POLLOUT, deadline);
      if (w == Wait::kRefused) return Refused();
      if (w == Wait::kTimedOut) return TimedOut("request not sent to");
    }
    for (;;) {
      const Wait w = WaitFor(ZMQ_POLLIN, deadline);
      if (w == Wait::kRefused) return Refused();
      if (w == Wait::kTimedOut) return TimedOut("no reply from");
      zmq::message_t msg;
      if (!socket_->recv(msg, zmq::recv_flags::dontwait)) continue;
      if (!response->ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
        return Status(pb::MALFORMED, "reply from " + endpoint_ + " does not parse");
      }
      // A reply to an earlier request (one sent before a reconnect cannot
      // arrive here, but a duplicate could): skip it.
      if (response->request_id() != id && response->request_id() != 0) continue;
      if (response->has_error() && response->error().code() != pb::OK) {
        std::string m = response->error().message();
        if (response->error().record_index() >= 0) {
          m += " (record " + std::to_string(response->error().record_index()) + ")";
        }
        return Status(response->error().code(), m);
      }
      return Status::OK();
    }
  } catch (const zmq::error_t& e) {
    Reconnect();
    return Status::IoError(std::string("talking to ") + endpoint_ + ": " + e.what());
  }
}

}  // namespace anomalyd
