#include "daemon/auth.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <zmq_addon.hpp>

namespace anomalyd {
namespace {

// Where libzmq sends ZAP requests (RFC 27); fixed by the RFC.
constexpr char kZapAddress[] = "inproc://zeromq.zap.01";
// The handler wakes this often to see whether it must stop.
constexpr std::chrono::milliseconds kPollInterval(100);
// A refused client retries every 100 ms (ZeroMQ's reconnect interval): log
// each key's refusal on an endpoint at most once per this period.
constexpr std::chrono::seconds kDeniedLogPeriod(60);
constexpr size_t kMaxDeniedRemembered = 1024;

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Z85(const std::string& binary_key) {
  char out[41];
  if (binary_key.size() != 32 ||
      zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(binary_key.data()), 32) == nullptr) {
    return "(not a CURVE key)";
  }
  return out;
}

// Adds the *.key files of `dir` to *keys. `config_key` names the setting
// in messages.
Status LoadClientDir(const std::string& dir, const char* config_key, Authenticator::KeyMap* keys) {
  namespace fs = std::filesystem;
  Status s =
      CheckMode(dir, 022, "a folder of allowed keys must not be writable by group or others");
  if (!s.ok()) return s.WithContext(config_key);
  std::error_code ec;
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".key" && e.is_regular_file()) files.push_back(e.path());
  }
  if (ec)
    return Status::IoError(std::string(config_key) + ": cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    CurveKeyPair k;
    s = ReadKeyFile(f.string(), /*need_secret=*/false, &k);
    if (!s.ok()) return s.WithContext(config_key);
    std::string binary(32, '\0');
    zmq_z85_decode(reinterpret_cast<uint8_t*>(binary.data()), k.public_key.c_str());
    keys->emplace(binary, f.stem().string());
  }
  return Status::OK();
}

Status LoadAllowLists(const AuthOptions& opts, Authenticator::AllowLists* out) {
  Authenticator::AllowLists lists;
  ANOMALYD_RETURN_IF_ERROR(LoadClientDir(opts.clients_dir, "auth.clients_dir", &lists.data));
  if (opts.control_clients_dir.empty()) {
    lists.control = lists.data;
  } else {
    ANOMALYD_RETURN_IF_ERROR(
        LoadClientDir(opts.control_clients_dir, "auth.control_clients_dir", &lists.control));
    // Whoever may control the daemon may also use it.
    lists.data.insert(lists.control.begin(), lists.control.end());
  }
  *out = std::move(lists);
  return Status::OK();
}

Status LoadServerKey(const AuthOptions& opts, CurveKeyPair* out) {
  return ReadKeyFile(opts.server_secret_key, /*need_secret=*/true, out)
      .WithContext("auth.server_secret_key");
}

}  // namespace

Status CheckAuthKeys(const AuthOptions& opts) {
  if (!opts.enabled) return Status::OK();
  CurveKeyPair server;
  Authenticator::AllowLists lists;
  ANOMALYD_RETURN_IF_ERROR(LoadServerKey(opts, &server));
  return LoadAllowLists(opts, &lists);
}

Authenticator::Authenticator(zmq::context_t& ctx, const AuthOptions& opts)
    : endpoints_(opts.endpoints), zap_(ctx, zmq::socket_type::rep) {
  zap_.set(zmq::sockopt::linger, 0);
}

Status Authenticator::Start(zmq::context_t& ctx, const AuthOptions& opts,
                            std::unique_ptr<Authenticator>* out) {
  if (zmq_has("curve") == 0) {
    return Status::InvalidArgument("auth.enabled: this libzmq is built without CURVE");
  }
  std::unique_ptr<Authenticator> a(new Authenticator(ctx, opts));
  ANOMALYD_RETURN_IF_ERROR(LoadServerKey(opts, &a->server_));
  AllowLists lists;
  ANOMALYD_RETURN_IF_ERROR(LoadAllowLists(opts, &lists));
  a->lists_ = std::make_shared<const AllowLists>(std::move(lists));
  try {
    // Bound here, before any secured socket exists, so that no client can
    // ever be let in for want of a handler. The socket then moves to the
    // thread (thread creation is the full fence libzmq asks for).
    a->zap_.bind(kZapAddress);
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("cannot bind the ZAP handler: ") + e.what());
  }
  a->thread_ = std::thread([p = a.get()] { p->Serve(); });
  spdlog::info("auth: CURVE on {}; {} client key(s), {} for control", Join(opts.endpoints),
               a->lists_->data.size(), a->lists_->control.size());
  *out = std::move(a);
  return Status::OK();
}

Authenticator::~Authenticator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Authenticator::Secure(zmq::socket_t& socket, const std::string& endpoint) const {
  if (std::find(endpoints_.begin(), endpoints_.end(), endpoint) == endpoints_.end()) return;
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, server_.secret_key);
  socket.set(zmq::sockopt::zap_domain, endpoint);
}

Status Authenticator::ReloadClients(const AuthOptions& opts) {
  AllowLists lists;
  ANOMALYD_RETURN_IF_ERROR(LoadAllowLists(opts, &lists));
  spdlog::info("auth: {} client key(s), {} for control", lists.data.size(), lists.control.size());
  std::lock_guard<std::mutex> l(mu_);
  lists_ = std::make_shared<const AllowLists>(std::move(lists));
  return Status::OK();
}

void Authenticator::Serve() {
  zmq::pollitem_t item{zap_.handle(), 0, ZMQ_POLLIN, 0};
  while (!stop_.load()) {
    try {
      zmq::poll(&item, 1, kPollInterval);
      if (item.revents & ZMQ_POLLIN) Answer();
    } catch (const std::exception& e) {
      // The handler must outlive every secured socket: never leave the loop.
      spdlog::error("auth: ZAP handler: {}", e.what());
    }
  }
}

bool Authenticator::Allowed(const std::string& domain, const std::string& key, std::string* name) {
  std::shared_ptr<const AllowLists> lists;
  {
    std::lock_guard<std::mutex> l(mu_);
    lists = lists_;
  }
  const KeyMap& map = domain == "control" ? lists->control : lists->data;
  auto it = map.find(key);
  if (it == map.end()) return false;
  *name = it->second;
  return true;
}

void Authenticator::LogDenied(const std::string& domain, const std::string& key,
                              const std::string& address) {
  const auto now = std::chrono::steady_clock::now();
  if (last_denied_.size() > kMaxDeniedRemembered) last_denied_.clear();
  auto [it, fresh] = last_denied_.emplace(domain + " " + key, now);
  if (!fresh && now - it->second < kDeniedLogPeriod) return;
  it->second = now;
  spdlog::warn("auth: refused client key {} from {} on the {} endpoint", Z85(key),
               address.empty() ? "?" : address, domain);
}

// RFC 27: the request is [version, request id, domain, address, identity,
// mechanism, credentials...] (REP has taken off the envelope); the reply
// [version, request id, status code, status text, user id, metadata].
void Authenticator::Answer() {
  std::vector<zmq::message_t> req;
  if (!zmq::recv_multipart(zap_, std::back_inserter(req), zmq::recv_flags::dontwait)) return;
  std::string code = "400", text = "key not allowed", user;
  if (req.size() < 6 || req[0].to_string() != "1.0") {
    code = "500";
    text = "malformed ZAP request";
  } else if (req[5].to_string() != "CURVE" || req.size() < 7) {
    text = "CURVE required";
  } else if (Allowed(req[2].to_string(), req[6].to_string(), &user)) {
    code = "200";
    text = "OK";
  } else {
    LogDenied(req[2].to_string(), req[6].to_string(), req[3].to_string());
  }
  const std::string id = req.size() > 1 ? req[1].to_string() : "";
  std::array<zmq::const_buffer, 6> reply = {zmq::str_buffer("1.0"), zmq::buffer(id),
                                            zmq::buffer(code),      zmq::buffer(text),
                                            zmq::buffer(user),      zmq::const_buffer()};
  zmq::send_multipart(zap_, reply);
}

}  // namespace anomalyd
