// Client: a request/reply connection to one anomalyd endpoint (score or
// control), used by anomalyctl, the integration tests and the benchmarks.
// A DEALER socket; each call sends one Request and waits for the Response
// with the same request_id. On a timeout the socket is closed and reopened
// (the zguide's "Lazy Pirate"), so a late reply can never be taken for the
// answer to a later request. Not thread-safe: one Client per thread.
#ifndef ANOMALYD_CLIENTS_CLIENT_H_
#define ANOMALYD_CLIENTS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "proto/anomalyd.pb.h"
#include "proto/status.h"

namespace anomalyd {

class Client {
 public:
  Client(zmq::context_t& ctx, std::string endpoint,
         std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends `request` (its request_id is set by the client) and waits for the
  // reply. Transport failures are IO_ERROR (timeout: "no reply within ...");
  // a reply that carries an error is returned as that error (its code and
  // message), with *response still filled.
  Status Call(pb::Request request, pb::Response* response);

  const std::string& endpoint() const { return endpoint_; }

 private:
  void Reconnect();

  zmq::context_t& ctx_;
  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_id_ = 1;
};

}  // namespace anomalyd

#endif  // ANOMALYD_CLIENTS_CLIENT_H_
