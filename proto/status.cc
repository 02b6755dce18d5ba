#include "proto/status.h"

#include "proto/utf8.h"

namespace anomalyd {

Status::Status(ErrorCode code, std::string message)
    : code_(code), message_(std::move(message)) {
  if (!IsValidUtf8(message_)) message_ = ToValidUtf8(message_);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = pb::ErrorCode_Name(code_);
  if (s.empty()) s = "ERROR_" + std::to_string(static_cast<int>(code_));
  if (!message_.empty()) s += ": " + message_;
  return s;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace anomalyd
