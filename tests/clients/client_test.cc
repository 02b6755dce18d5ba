// The client library (clients/client.h) against an in-process ROUTER that
// plays the daemon: request ids, replies that are not the answer, errors,
// timeouts and the reconnect after one.
#include "clients/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>
#include <zmq_addon.hpp>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

constexpr char kAddress[] = "inproc://client-test";
constexpr std::chrono::milliseconds kWait(5000);

// A ROUTER on kAddress that answers each request with what `answer` returns
// (zero or more raw payloads), on a thread of its own.
class FakeServer {
 public:
  using Answer = std::function<std::vector<std::string>(const pb::Request&)>;

  FakeServer(zmq::context_t& ctx, Answer answer)
      : socket_(ctx, zmq::socket_type::router), answer_(std::move(answer)) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(kAddress);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
  }
  int requests() const { return requests_.load(); }

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
  Answer answer_;
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

}  // namespace
}  // namespace anomalyd
