// Status: the result of an operation that can fail, after leveldb::Status.
// It carries the same ErrorCode the wire uses, so an error found deep in
// storage or the model reaches a client with its type intact. Its message
// is always valid UTF-8 (see the constructor), so it can go into a protobuf
// string or a log line whatever bytes it quotes.
#ifndef ANOMALYD_PROTO_STATUS_H_
#define ANOMALYD_PROTO_STATUS_H_

#include <string>
#include <utility>

#include "proto/anomalyd.pb.h"

namespace anomalyd {

using ErrorCode = pb::ErrorCode;

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  // Invalid UTF-8 in `message` (a file name, a header cell, any bytes from
  // outside) is escaped as \xNN by ToValidUtf8 (proto/utf8.h): one stray
  // byte would otherwise make every reply or metadata record that carries
  // the message fail to parse. All-ASCII messages are only scanned.
  Status(ErrorCode code, std::string message);

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) {
    return Status(pb::INVALID_ARGUMENT, std::move(m));
  }
  static Status NotFound(std::string m) {
    return Status(pb::NOT_FOUND, std::move(m));
  }
  static Status IoError(std::string m) {
    return Status(pb::IO_ERROR, std::move(m));
  }
  static Status Corrupt(std::string m) {
    return Status(pb::CORRUPT, std::move(m));
  }
  static Status Internal(std::string m) {
    return Status(pb::INTERNAL, std::move(m));
  }

  bool ok() const { return code_ == pb::OK; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "CODE_NAME: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  // `context` is made valid UTF-8 like a message.
  Status WithContext(const std::string& context) const;

 private:
  ErrorCode code_ = pb::OK;
  std::string message_;
};

}  // namespace anomalyd

// Returns from the enclosing function when `expr` yields a non-OK Status.
#define ANOMALYD_RETURN_IF_ERROR(expr)       \
  do {                                       \
    ::anomalyd::Status _st = (expr);         \
    if (!_st.ok()) return _st;               \
  } while (0)

#endif  // ANOMALYD_PROTO_STATUS_H_
