// Service: anomalyd itself. Locks the state directory, opens and checks the
// store, restores every stream's active model and latest threshold, trains
// the baselines the config names, then serves the endpoints until asked to
// stop. Threads: the I/O thread (the caller of Run: every ZeroMQ socket,
// and nothing on it ever blocks), the scorer, the writer (every SQLite
// write), the query thread (anomaly queries and model listings), the
// rollback thread, the alert sender (with [alerts] receivers), one per
// running training. docs/architecture.md draws them.
#ifndef ANOMALYD_DAEMON_SERVICE_H_
#define ANOMALYD_DAEMON_SERVICE_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/config.h"
#include "daemon/alert_thread.h"
#include "daemon/auth.h"
#include "daemon/metrics.h"
#include "daemon/metrics_http.h"
#include "daemon/protocol.h"
#include "daemon/query_thread.h"
#include "daemon/reply_budget.h"
#include "daemon/retrainer.h"
#include "daemon/rollback_thread.h"
#include "daemon/scorer_thread.h"
#include "daemon/state_dir.h"
#include "daemon/streams.h"
#include "daemon/work.h"
#include "daemon/writer_thread.h"
#include "storage/open.h"
#include "storage/store.h"

namespace anomalyd {

// Flags set by signal handlers; the I/O loop polls them.
struct Signals {
  std::atomic<bool> stop{false};
  std::atomic<bool> reload{false};
};

// What the command line adds to the config.
struct ServiceOptions {
  // Start even though the database has no models while bundles/ holds
  // some (it was deleted or replaced): the operator chose to begin afresh.
  bool accept_empty_db = false;
};

// Privately a ReplySink: requests the I/O thread scores itself
// (ScoringLoop::TryScoreNow) are answered straight from their endpoint.
class Service : private ReplySink {
 public:
  // Prepares everything short of binding the endpoints. On error nothing is
  // left running.
  // Errors: FAILED_PRECONDITION when another daemon holds the state
  // directory, or the database is empty beside existing bundles (without
  // accept_empty_db); CORRUPT when the database fails its integrity check;
  // the store's and the auth keys' errors.
  static Status Create(const Config& config, std::string config_path,
                       std::vector<std::string> overrides, const ServiceOptions& options,
                       std::unique_ptr<Service>* service);
  ~Service() override;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds the endpoints and serves until signals->stop; then stops taking
  // requests, scores what was queued, commits, sends the last replies and
  // returns. Errors: binding failures (IO_ERROR naming the endpoint).
  Status Run(Signals* signals);

 private:
  Service(const Config& config, std::string config_path, std::vector<std::string> overrides,
          const ServiceOptions& options);
  Status Open();
  // Start-up checks and migrations of the store (before the writer owns
  // it): integrity, an empty database beside bundles, relative bundle
  // paths, reservations of trainings a crash cut short.
  Status CheckStore(Store& store);
  Status RestoreStreams(Store& store);
  Status TrainConfiguredBaselines();
  ScoringOptions MakeScoringOptions();
  // Re-reads the config file (SIGHUP, or a reload request) and applies
  // what can change without a restart: thresholds, limits, batching,
  // recalibration, log level, reservoir rate, metrics access, client keys.
  // Tells systemd RELOADING=1 first and READY=1 after, whatever the
  // outcome. The file's error when it is rejected (the running config is
  // kept whole); else OK, with *kept naming each part of the old config
  // kept because its new value could not be applied. I/O thread only.
  Status Reload(std::vector<std::string>* kept);

  // I/O thread (io_thread.cc): the endpoint table and the loop.
  // One endpoint: the socket it is bound to and the handler of its
  // messages.
  struct EndpointRow {
    const char* name;                        // "score": logs and errors
    std::unique_ptr<zmq::socket_t>* socket;  // stays null when address is ""
    zmq::socket_type type;
    const std::string* address;     // from config_.endpoints
    int per_turn;                   // messages per poll turn; 0: all waiting
    void (Service::*on_message)();  // handles one message; null: not read
  };
  // Every endpoint, in the order they are bound and polled.
  std::vector<EndpointRow> Endpoints();
  // Binds row's socket when it has an address. IO_ERROR naming it on failure.
  Status Bind(const EndpointRow& row);
  // Handles the messages waiting on a readable endpoint (per_turn at most).
  void Serve(const EndpointRow& row);
  void OnScoreMessage();   // one message of the score endpoint
  void OnIngestMessage();  // one message of the ingest endpoint

  // Requests on the I/O thread (frontend.cc).
  // Receives one message and decodes it; false (after answering any error)
  // when there is no valid request to handle.
  bool ReceiveRequest(zmq::socket_t& socket, Endpoint endpoint, Origin* origin, pb::Request* req);
  void OnScoreSocket(zmq::socket_t& socket, Endpoint endpoint);
  void HandleScoreSocketRequest(zmq::socket_t& socket, Endpoint endpoint, const Origin& origin,
                                const pb::Request& req);
  void HandleScore(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to);
  // Hands a query or models request to the query thread (BUSY when full).
  void SubmitQuery(const Origin& origin, const pb::Request& req, zmq::socket_t& reply_to);
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
  // parts[0] is the client's routing id on ROUTER sockets; the last part,
  // when large, is charged to that client's ReplyBudget.
  void SendFrames(zmq::socket_t& socket, const std::vector<zmq::const_buffer>& parts);
  ReplyBudget* BudgetFor(const zmq::socket_t& socket);
  void DroppedReply(const char* why);
  void SendError(zmq::socket_t& socket, const Origin& origin, uint64_t id, const Status& s,
                 int record = -1);
  void CountError(ErrorCode code);
  RequestLimits Limits() const;
  void OnMetricsSocket();  // a minimal HTTP/1.1 GET /metrics responder
  std::string RenderMetrics() const;
  // Answers INTERNAL to a request whose handler threw, so that no request
  // goes unanswered (the loop then serves the next one).
  void AnswerFailure(zmq::socket_t& socket, const Origin& origin, uint64_t id,
                     const std::exception& e);

  // Control requests (control.cc).
  void OnControlSocket();
  void HandleControl(const Origin& origin, const pb::Request& req);
  pb::StatusResponse MakeStatus() const;
  // Checks a retrain request and opens its input here, then reserves the
  // version and starts the training on the writer thread, where `done`
  // is called with the outcome of the start (not of the training).
  using RetrainStarted = std::function<void(const Status&, uint32_t version, Outbox&)>;
  Status StartRetrain(const pb::RetrainRequest& r, std::function<void(const Status&)> on_trained,
                      RetrainStarted done);
  void Retrain(const Origin& origin, uint64_t id, const pb::RetrainRequest& r);
  void Rollback(const Origin& origin, uint64_t id, const pb::RollbackRequest& r);
  // The threshold row a calibrate request asks for (computed from the
  // serving model's holdout scores) and its method.
  Status ComputeCalibration(const pb::CalibrateRequest& r, ThresholdRow* t,
                            pb::ThresholdMethod* method) const;
  void Calibrate(const Origin& origin, uint64_t id, const pb::CalibrateRequest& r);

  Config config_;
  const std::string config_path_;
  const std::vector<std::string> overrides_;
  const ServiceOptions options_;
  std::unique_ptr<StateDir> state_;  // the lock: held for the Service's life
  // The store every thread opens (daemon/store_spec.h), and what messages
  // call it (the file path for SQLite).
  StoreSpec store_spec_;
  std::string store_name_;
  MetricsAccess metrics_access_;
  int64_t started_us_ = 0;
  int64_t last_drop_log_us_ = 0;  // I/O thread only
  int burst_ = 0;                 // messages taken from the socket before this one, this poll turn

  zmq::context_t ctx_;
  // Declared before the sockets so that it outlives them: a CURVE socket
  // without a ZAP handler would let any client in.
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<zmq::socket_t> score_, ingest_, control_, alerts_, outbox_, metrics_http_;
  // Per-client byte bounds of queued replies (I/O thread only).
  std::unique_ptr<ReplyBudget> score_budget_, control_budget_;
  std::unique_ptr<QueryThread> queries_;
  StreamRegistry streams_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Retrainer> retrainer_;
  std::unique_ptr<RollbackThread> rollbacks_;
  std::unique_ptr<ScoringLoop> scorer_;
  // Null without [alerts] receivers.
  std::unique_ptr<AlertSender> alert_sender_;
  Signals* signals_ = nullptr;
  Metrics metrics_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_SERVICE_H_
