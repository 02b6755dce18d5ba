// Service: anomalyd itself. Opens the store, restores every stream's active
// model and latest threshold, trains the baselines the config names, then
// serves the endpoints until asked to stop. Threads: the I/O thread (the
// caller of Run: every ZeroMQ socket), the scorer, the writer, one per
// training. See DESIGN.md "Data flow".
#ifndef ANOMALYD_DAEMON_SERVICE_H_
#define ANOMALYD_DAEMON_SERVICE_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "daemon/auth.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "daemon/protocol.h"
#include "daemon/retrainer.h"
#include "daemon/scorer_loop.h"
#include "daemon/streams.h"
#include "daemon/work.h"
#include "daemon/writer.h"
#include "storage/store.h"

namespace anomalyd {

// Flags set by signal handlers; the I/O loop polls them.
struct Signals {
  std::atomic<bool> stop{false};
  std::atomic<bool> reload{false};
};

// Privately a ReplySink: requests the I/O thread scores itself
// (ScoringLoop::TryScoreNow) are answered straight from their endpoint.
class Service : private ReplySink {
 public:
  // Prepares everything short of binding the endpoints. On error nothing is
  // left running.
  static Status Create(const Config& config, std::string config_path,
                       std::vector<std::string> overrides,
                       std::unique_ptr<Service>* service);
  ~Service() override;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds the endpoints and serves until signals->stop; then stops taking
  // requests, scores what was queued, commits, sends the last replies and
  // returns. Errors: binding failures (IO_ERROR naming the endpoint).
  Status Run(Signals* signals);

 private:
  Service(const Config& config, std::string config_path,
          std::vector<std::string> overrides);
  Status Open();
  Status RestoreStreams();
  Status TrainConfiguredBaselines();
  ScoringOptions MakeScoringOptions();
  void Reload();

  // I/O thread (frontend.cc).
  // Receives one message and decodes it; false (after answering any error)
  // when there is no valid request to handle.
  bool ReceiveRequest(zmq::socket_t& socket, Endpoint endpoint, Origin* origin,
                      pb::Request* req);
  void OnScoreSocket(zmq::socket_t& socket, Endpoint endpoint);
  void HandleScore(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to);
  void HandleQuery(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to);
  void ForwardOutbox(zmq::socket_t& outbox);
  // The socket that answers frames tagged `tag` (an Endpoint, or kAlertTag);
  // nullptr for ingest, which answers nobody.
  zmq::socket_t* SocketFor(char tag);
  // ReplySink, I/O thread only.
  void Reply(const Origin& origin, const std::string& payload) override;
  // Whether a request of `records` records should be scored on the I/O
  // thread: small, and among the first few messages of this poll turn.
  bool ScoreHere(uint64_t records) const;
  // Replies without blocking; a reply the client cannot take is dropped
  // and counted (DroppedReply).
  void Send(zmq::socket_t& socket, const Origin& origin, const std::string& payload);
  void SendFrames(zmq::socket_t& socket, const std::vector<zmq::const_buffer>& parts);
  void DroppedReply(const char* why);
  void SendError(zmq::socket_t& socket, const Origin& origin, uint64_t id,
                 const Status& s, int record = -1);
  void CountError(ErrorCode code);
  RequestLimits Limits() const;
  void OnMetricsSocket();  // a minimal HTTP/1.1 GET /metrics responder

  // Control requests (control.cc).
  void OnControlSocket();
  void HandleControl(const Origin& origin, const pb::Request& req);
  pb::StatusResponse MakeStatus() const;
  Status StartRetrain(const pb::RetrainRequest& r, uint32_t* version);
  void Rollback(const Origin& origin, uint64_t id, const pb::RollbackRequest& r);
  // The threshold row a calibrate request asks for (computed from the
  // serving model's holdout scores) and its method.
  Status ComputeCalibration(const pb::CalibrateRequest& r, ThresholdRow* t,
                            pb::ThresholdMethod* method) const;
  void Calibrate(const Origin& origin, uint64_t id, const pb::CalibrateRequest& r);

  Config config_;
  const std::string config_path_;
  const std::vector<std::string> overrides_;
  std::string db_path_;
  std::string bundles_dir_;
  int64_t started_us_ = 0;
  int64_t last_drop_log_us_ = 0;  // I/O thread only
  int burst_ = 0;  // messages taken from the socket before this one, this poll turn

  zmq::context_t ctx_;
  // Declared before the sockets so that it outlives them: a CURVE socket
  // without a ZAP handler would let any client in.
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<zmq::socket_t> score_, ingest_, control_, alerts_, outbox_,
      metrics_http_;
  std::unique_ptr<Store> reader_;  // queries and listings, I/O thread only
  StreamRegistry streams_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Retrainer> retrainer_;
  std::unique_ptr<ScoringLoop> scorer_;
  Signals* signals_ = nullptr;
  Metrics metrics_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_SERVICE_H_
