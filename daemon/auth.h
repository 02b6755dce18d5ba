// CURVE authentication on anomalyd's ZeroMQ endpoints ([auth] in the
// config). Each secured socket is a CURVE server whose ZAP domain is the
// endpoint's name ("score", "ingest", "control", "alerts"); libzmq asks
// the ZAP handler (RFC 27, inproc://zeromq.zap.01) about every client that
// completes the handshake, and the handler allows it when the client's
// public key is in that endpoint's allow-list. A client that is refused,
// or that does not speak CURVE, never gets a message through.
#ifndef ANOMALYD_DAEMON_AUTH_H_
#define ANOMALYD_DAEMON_AUTH_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/config.h"
#include "common/curve_keys.h"
#include "proto/status.h"

namespace anomalyd {

// Reads and checks every key file `opts` names (server key pair, client
// key folders) without starting anything; OK when auth is off. Errors are
// INVALID_ARGUMENT naming the config key and the file (a bad key, a mode
// that lets group or others read a secret or swap a key) or IO_ERROR.
Status CheckAuthKeys(const AuthOptions& opts);

// The server key pair and the ZAP handler, which answers from its own
// thread. Thread-safe.
class Authenticator {
 public:
  // Reads the keys (as CheckAuthKeys) and binds the ZAP handler on `ctx`.
  // On error nothing is bound and the caller must not serve.
  static Status Start(zmq::context_t& ctx, const AuthOptions& opts,
                      std::unique_ptr<Authenticator>* out);
  // Stops the handler. REQUIRES: every socket given to Secure is closed
  // (libzmq lets any client in when no ZAP handler is bound).
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Makes `socket` a CURVE server in ZAP domain `endpoint` when [auth]
  // endpoints lists it; else leaves it as it is. Call before bind.
  void Secure(zmq::socket_t& socket, const std::string& endpoint) const;

  // Re-reads the client key folders (SIGHUP). On error the current lists
  // stay in force. Affects new connections only.
  Status ReloadClients(const AuthOptions& opts);

  // Binary public key (32 bytes) -> client name (the key file's stem).
  using KeyMap = std::map<std::string, std::string>;
  struct AllowLists {
    KeyMap data;     // score, ingest, alerts (control keys are added)
    KeyMap control;  // control
  };

 private:
  Authenticator(zmq::context_t& ctx, const AuthOptions& opts);
  void Serve();
  void Answer();
  bool Allowed(const std::string& domain, const std::string& key, std::string* name);
  void LogDenied(const std::string& domain, const std::string& key,
                 const std::string& address);

  const std::vector<std::string> endpoints_;
  CurveKeyPair server_;
  zmq::socket_t zap_;  // REP; used only by thread_ once it runs
  mutable std::mutex mu_;
  std::shared_ptr<const AllowLists> lists_;  // guarded by mu_
  std::map<std::string, std::chrono::steady_clock::time_point> last_denied_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_AUTH_H_
