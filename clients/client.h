// Client: a request/reply connection to one anomalyd endpoint (score or
// control), used by anomalyctl, the integration tests and the benchmarks.
// A DEALER socket; each call sends one Request and waits for the Response
// with the same request_id. On a timeout the socket is closed and reopened
// (the zguide's "Lazy Pirate"), so a late reply can never be taken for the
// answer to a later request. With CURVE keys the socket encrypts and
// authenticates itself to the server (an endpoint with [auth] on).
// No call blocks past its timeout, sending included: a DEALER whose CURVE
// handshake the server refused has no connection left, and libzmq does not
// retry it, so a blocking send on it would wait forever.
// Not thread-safe: one Client per thread.
#ifndef ANOMALYD_CLIENTS_CLIENT_H_
#define ANOMALYD_CLIENTS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "common/curve_keys.h"
#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

// Makes `socket` a CURVE client of the server `keys` names; nothing when
// keys are empty. Call before connect. Throws zmq::error_t (bad keys).
void SetCurveClient(zmq::socket_t& socket, const CurveClientKeys& keys);

class Client {
 public:
  // `curve`: keys for an endpoint that requires CURVE (LoadClientKeys reads
  // them from files); empty for a plaintext endpoint.
  Client(zmq::context_t& ctx, std::string endpoint,
         std::chrono::milliseconds timeout = std::chrono::seconds(30),
         CurveClientKeys curve = {});

  // Sends `request` (its request_id is set by the client) and waits for the
  // reply, all within the timeout. Transport failures are IO_ERROR (timeout:
  // "no reply from ... within ...", or "... not sent within ..." when the
  // request could not even be queued); with CURVE keys, a server that
  // refuses this client's key (ZAP) is UNAUTHENTICATED as soon as the
  // handshake fails, not after the timeout. After either the socket is
  // reopened. A reply that carries an error is returned as that error (its
  // code and message), with *response still filled.
  Status Call(pb::Request request, pb::Response* response);

  const std::string& endpoint() const { return endpoint_; }

 private:
  enum class Wait { kReady, kTimedOut, kRefused };

  void Reconnect();
  // Whether the monitor reported that the server refused our key; reads
  // the events waiting on it.
  bool HandshakeRefused();
  // Polls the socket for `events` (ZMQ_POLLIN or ZMQ_POLLOUT), and the
  // monitor with it, until `deadline`: kReady once the socket is ready,
  // kRefused as soon as the server refused our key, kTimedOut otherwise.
  Wait WaitFor(short events, std::chrono::steady_clock::time_point deadline);
  // The errors of Call, each after a Reconnect.
  Status TimedOut(const char* what);
  Status Refused();

  zmq::context_t& ctx_;
  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  CurveClientKeys curve_;
  std::unique_ptr<zmq::socket_t> socket_;
  // With CURVE: the socket's monitor (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), so
  // that a refused key is told apart from a server that does not answer.
  std::unique_ptr<zmq::socket_t> monitor_;
  uint64_t next_id_ = 1;
};

}  // namespace anomalyd

#endif  // ANOMALYD_CLIENTS_CLIENT_H_
