// Helpers for tests that talk to a running anomalyd: request builders,
// status look-ups and a raw HTTP client for the metrics endpoint.
#ifndef ANOMALYD_TESTS_DAEMON_DAEMON_WIRE_H_
#define ANOMALYD_TESTS_DAEMON_DAEMON_WIRE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "clients/client.h"
#include "proto/anomalyd.pb.h"
#include "tests/test_util.h"

namespace anomalyd::testing {

// A score request for `rows`, per-record (with a "host" label each) or as
// one dense batch; record i gets the id id_prefix + i.
inline pb::Request ScoreRequest(const std::vector<std::vector<float>>& rows,
                                const std::string& stream, const std::string& id_prefix,
                                bool dense) {
  pb::Request req;
  pb::ScoreRequest* s = req.mutable_score();
  if (dense) {
    pb::DenseBatch* b = s->mutable_dense();
    b->set_stream(stream);
    b->set_dim(static_cast<uint32_t>(rows[0].size()));
    for (size_t i = 0; i < rows.size(); ++i) {
      b->mutable_values()->Add(rows[i].begin(), rows[i].end());
      b->add_ids(id_prefix + std::to_string(i));
    }
  } else {
    for (size_t i = 0; i < rows.size(); ++i) {
      pb::Record* r = s->add_records();
      r->set_id(id_prefix + std::to_string(i));
      r->set_stream(stream);
      r->mutable_features()->Add(rows[i].begin(), rows[i].end());
      (*r->mutable_labels())["host"] = "web-" + std::to_string(i);
    }
  }
  return req;
}

inline pb::StatusResponse GetStatus(Client& control) {
  pb::Request req;
  req.mutable_status();
  pb::Response resp;
  EXPECT_OK(control.Call(req, &resp));
  return resp.status();
}

inline const pb::StreamStatus* FindStream(const pb::StatusResponse& s,
                                          const std::string& name) {
  for (const auto& st : s.streams()) {
    if (st.stream() == name) return &st;
  }
  return nullptr;
}

// A TCP port that was free a moment ago (the kernel's next ephemeral one).
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Sends `bytes` to 127.0.0.1:port over plain TCP and returns everything
// read until the server closes ("" when it cannot connect).
inline std::string HttpExchange(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};  // never hang the suite on a daemon that does not close
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  // The server may answer and close before it has read everything: a
  // failed write is then expected, and what it sent is still readable.
  for (size_t off = 0; off < bytes.size();) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// GET path; the whole response.
inline std::string HttpGet(int port, const std::string& path) {
  return HttpExchange(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_DAEMON_DAEMON_WIRE_H_
