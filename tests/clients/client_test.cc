// The client library (clients/client.h) against an in-process ROUTER that
// plays the daemon: request ids, replies that are not the answer, errors,
// timeouts and the reconnect after one, a CURVE key the server refuses.
#include "clients/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>
#include <vector>
#include <zmq_addon.hpp>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

constexpr char kAddress[] = "inproc://client-test";
constexpr std::chrono::milliseconds kWait(5000);

// A ROUTER on `address` (kAddress unless given) that answers each request
// with what `answer` returns (zero or more raw payloads), on a thread of its
// own. With `curve_secret_key` it is a CURVE server (tcp:// only).
class FakeServer {
 public:
  using Answer = std::function<std::vector<std::string>(const pb::Request&)>;

  FakeServer(zmq::context_t& ctx, Answer answer, const std::string& address = kAddress,
             const std::string& curve_secret_key = "")
      : socket_(ctx, zmq::socket_type::router), answer_(std::move(answer)) {
    socket_.set(zmq::sockopt::linger, 0);
    if (!curve_secret_key.empty()) {
      socket_.set(zmq::sockopt::curve_server, true);
      socket_.set(zmq::sockopt::curve_secretkey, curve_secret_key);
    }
    socket_.bind(address);
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
  }
  int requests() const { return requests_.load(); }
  // The bound endpoint, with the port a tcp://...:* address got.
  const std::string& endpoint() const { return endpoint_; }

 private:
  void Run() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(socket_, std::back_inserter(frames))) continue;
      ++requests_;
      pb::Request req;
      req.ParseFromArray(frames.back().data(), static_cast<int>(frames.back().size()));
      for (const std::string& payload : answer_(req)) {
        socket_.send(zmq::buffer(frames.front().to_string()), zmq::send_flags::sndmore);
        socket_.send(zmq::buffer(payload), zmq::send_flags::none);
      }
    }
  }

  zmq::socket_t socket_;
  std::string endpoint_;
  Answer answer_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A ZAP handler (RFC 27) for every CURVE server of `ctx`: refuses each
// client until Allow(), on a thread of its own. Counts the handshakes it
// judged.
class FakeZap {
 public:
  explicit FakeZap(zmq::context_t& ctx) : socket_(ctx, zmq::socket_type::rep) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");  // before any CURVE server exists
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeZap() {
    stop_ = true;
    thread_.join();
  }
  void Allow() { allow_ = true; }
  int requests() const { return requests_.load(); }

 private:
  void Run() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      // version, request id, domain, address, identity, mechanism, key.
      std::vector<zmq::message_t> request;
      if (!zmq::recv_multipart(socket_, std::back_inserter(request)) || request.size() < 2) {
        continue;
      }
      const bool allow = allow_.load();
      std::vector<zmq::message_t> reply;
      reply.emplace_back(std::string("1.0"));
      reply.emplace_back(request[1].to_string());
      reply.emplace_back(std::string(allow ? "200" : "400"));
      reply.emplace_back(std::string(allow ? "OK" : "refused"));
      reply.emplace_back();  // user id
      reply.emplace_back();  // metadata
      ++requests_;
      zmq::send_multipart(socket_, reply);
    }
  }

  zmq::socket_t socket_;
  std::atomic<bool> allow_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string StatusReply(uint64_t id, const std::string& version) {
  pb::Response r;
  r.set_request_id(id);
  r.mutable_status()->set_version(version);
  return r.SerializeAsString();
}

pb::Request StatusRequest() {
  pb::Request r;
  r.mutable_status();
  return r;
}

// client.Call(StatusRequest(), response), on a thread of its own. A call
// still running after `limit` is blocked for good (nothing can interrupt a
// blocking send but closing the context, which the blocked thread's socket
// keeps open): the test binary then ends with a failure.
Status CallWithin(Client& client, std::chrono::milliseconds limit, pb::Response* response) {
  std::packaged_task<Status()> call([&] { return client.Call(StatusRequest(), response); });
  std::future<Status> done = call.get_future();
  std::thread thread(std::move(call));
  if (done.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FAIL: Client::Call to %s still blocked after %lld ms\n",
                 client.endpoint().c_str(), static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  thread.join();
  return done.get();
}

// Waits up to kWait for `condition`; whether it came true.
bool WaitUntil(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(ClientTest, EachCallGetsTheReplyWithItsOwnId) {
  zmq::context_t ctx;
  FakeServer server(ctx, [](const pb::Request& r) {
    return std::vector<std::string>{
        StatusReply(r.request_id(), "v" + std::to_string(r.request_id()))};
  });
  Client client(ctx, kAddress, kWait);
  pb::Response first, second;
  ASSERT_OK(client.Call(StatusRequest(), &first));
  ASSERT_OK(client.Call(StatusRequest(), &second));
  EXPECT_NE(first.request_id(), second.request_id());
  EXPECT_EQ(first.status().version(), "v" + std::to_string(first.request_id()));
  EXPECT_EQ(second.status().version(), "v" + std::to_string(second.request_id()));
}

TEST(ClientTest, AReplyToAnotherRequestIsSkipped) {
  zmq::context_t ctx;
  FakeServer server(ctx, [](const pb::Request& r) {
    // A stale duplicate first, then the answer.
    return std::vector<std::string>{StatusReply(r.request_id() + 1000, "stale"),
                                    StatusReply(r.request_id(), "answer")};
  });
  Client client(ctx, kAddress, kWait);
  pb::Response resp;
  ASSERT_OK(client.Call(StatusRequest(), &resp));
  EXPECT_EQ(resp.status().version(), "answer");
}

TEST(ClientTest, AnErrorReplyIsItsTypedStatus) {
  zmq::context_t ctx;
  FakeServer server(ctx, [](const pb::Request& r) {
    pb::Response resp;
    resp.set_request_id(r.request_id());
    resp.mutable_error()->set_code(pb::WRONG_DIMENSION);
    resp.mutable_error()->set_message("dim 3, model has 4");
    resp.mutable_error()->set_record_index(7);
    return std::vector<std::string>{resp.SerializeAsString()};
  });
  Client client(ctx, kAddress, kWait);
  pb::Response resp;
  const Status s = client.Call(StatusRequest(), &resp);
  EXPECT_EQ(s.code(), pb::WRONG_DIMENSION);
  EXPECT_NE(s.message().find("dim 3, model has 4 (record 7)"), std::string::npos) << s.ToString();
  EXPECT_EQ(resp.error().record_index(), 7);  // *response still filled
}

TEST(ClientTest, ARepliedGarbageIsMalformed) {
  zmq::context_t ctx;
  FakeServer server(ctx, [](const pb::Request&) {
    return std::vector<std::string>{std::string("\xff\xff\xff", 3)};
  });
  Client client(ctx, kAddress, kWait);
  pb::Response resp;
  EXPECT_EQ(client.Call(StatusRequest(), &resp).code(), pb::MALFORMED);
}

TEST(ClientTest, NoReplyIsATimeoutAndTheNextCallStillWorks) {
  zmq::context_t ctx;
  std::atomic<bool> answer{false};
  FakeServer server(ctx, [&](const pb::Request& r) {
    if (!answer.load()) return std::vector<std::string>{};
    return std::vector<std::string>{StatusReply(r.request_id(), "late")};
  });
  Client client(ctx, kAddress, std::chrono::milliseconds(200));
  pb::Response resp;
  const Status s = client.Call(StatusRequest(), &resp);
  EXPECT_EQ(s.code(), pb::IO_ERROR);
  EXPECT_NE(s.message().find("no reply from inproc://client-test within 200 ms"), std::string::npos)
      << s.ToString();
  // The client reconnected: the next call is answered on a fresh socket.
  answer = true;
  ASSERT_OK(client.Call(StatusRequest(), &resp));
  EXPECT_EQ(resp.status().version(), "late");
  EXPECT_EQ(server.requests(), 2);
}

// Regression: after a server refused the client's CURVE key, the client
// reopened its socket; the server refused that one too before the next
// call, and that call's blocking send waited forever (a DEALER whose
// handshake was refused has no connection, and libzmq does not retry it).
// Now every call ends within its timeout; this one at once, UNAUTHENTICATED.
TEST(ClientTest, ARefusedKeyDoesNotHangTheNextCall) {
  if (zmq_has("curve") == 0) GTEST_SKIP() << "libzmq without CURVE";
  zmq::context_t ctx;
  FakeZap zap(ctx);
  CurveKeyPair server_keys, client_keys;
  ASSERT_OK(GenerateKeyPair(&server_keys));
  ASSERT_OK(GenerateKeyPair(&client_keys));
  FakeServer server(
      ctx,
      [](const pb::Request& r) {
        return std::vector<std::string>{StatusReply(r.request_id(), "in")};
      },
      "tcp://127.0.0.1:*", server_keys.secret_key);
  const std::chrono::milliseconds timeout(2000);
  Client client(ctx, server.endpoint(), timeout,
                CurveClientKeys{server_keys.public_key, client_keys});
  pb::Response resp;
  for (int call = 0; call < 3; ++call) {
    // Let the socket the client (re)opened be refused before the call sends
    // (the refusal reaches the client a moment after the ZAP reply).
    ASSERT_TRUE(WaitUntil([&] { return zap.requests() > call; })) << "call " << call;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto start = std::chrono::steady_clock::now();
    const Status s = CallWithin(client, 2 * timeout, &resp);
    EXPECT_EQ(s.code(), pb::UNAUTHENTICATED) << "call " << call << ": " << s.ToString();
    EXPECT_LT(std::chrono::steady_clock::now() - start, timeout) << "call " << call;
  }
  EXPECT_EQ(server.requests(), 0);
  // Once the key is allowed, a reopened socket gets through (the one opened
  // after the last refusal may have been refused already).
  zap.Allow();
  Status s;
  for (int call = 0; call < 3; ++call) {
    s = CallWithin(client, 2 * timeout, &resp);
    if (s.ok()) break;
    EXPECT_EQ(s.code(), pb::UNAUTHENTICATED) << s.ToString();
  }
  ASSERT_OK(s);
  EXPECT_EQ(resp.status().version(), "in");
}

}  // namespace
}  // namespace anomalyd
