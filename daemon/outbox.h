// Outbox: how threads other than the I/O thread send replies and alerts.
// ZeroMQ sockets belong to the thread that made them, so the I/O thread owns
// the endpoints and drains an inproc PULL; every other thread holds its own
// Outbox (an inproc PUSH) and frames messages as:
//   reply: [endpoint byte] [routing frames...] [payload]
//   alert: ['A'] [stream] [payload]
// Not thread-safe: one Outbox per thread, made in that thread.
#ifndef ANOMALYD_DAEMON_OUTBOX_H_
#define ANOMALYD_DAEMON_OUTBOX_H_

#include <string>
#include <vector>
#include <zmq.hpp>

#include "daemon/work.h"

namespace anomalyd {

inline constexpr char kOutboxAddress[] = "inproc://anomalyd-outbox";
inline constexpr char kAlertTag = 'A';

// Where a finished reply goes: an Outbox, or the endpoint itself when the
// I/O thread scored the request (ScoringLoop::TryScoreNow).
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void Reply(const Origin& origin, const std::string& payload) = 0;
};

class Outbox : public ReplySink {
 public:
  explicit Outbox(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::push) {
    // Unbounded: what waits here is bounded by the work queue upstream, and
    // a blocked sender would stall the scorer or the writer.
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(kOutboxAddress);
  }

  void Reply(const Origin& origin, const std::string& payload) override {
    const char tag = static_cast<char>(origin.endpoint);
    socket_.send(zmq::buffer(&tag, 1), zmq::send_flags::sndmore);
    for (const std::string& f : origin.envelope) {
      socket_.send(zmq::buffer(f), zmq::send_flags::sndmore);
    }
    socket_.send(zmq::buffer(payload), zmq::send_flags::none);
  }

  void Alert(const std::string& stream, const std::string& payload) {
    socket_.send(zmq::buffer(&kAlertTag, 1), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(stream), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(payload), zmq::send_flags::none);
  }

 private:
  zmq::socket_t socket_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_OUTBOX_H_
