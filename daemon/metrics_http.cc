#include "daemon/metrics_http.h"

#include <algorithm>

#include "common/secret_file.h"

namespace anomalyd {
namespace {

std::string Response(const std::string& status, const std::string& body,
                     const std::string& extra_headers = "") {
  return "HTTP/1.1 " + status +
         "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
         "\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "Connection: close\r\n\r\n" + body;
}

// Compares without an early exit, so the time taken does not tell how much
// of a guessed token was right.
bool SameSecret(const std::string& a, const std::string& b) {
  unsigned diff = a.size() != b.size();
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The value of header `name` (lower case) in the request head; "" if none.
std::string Header(const std::string& head, const std::string& name) {
  size_t at = 0;
  while ((at = head.find("\r\n", at)) != std::string::npos) {
    at += 2;
    const size_t colon = head.find(':', at);
    const size_t eol = head.find("\r\n", at);
    if (colon == std::string::npos || (eol != std::string::npos && colon > eol)) continue;
    if (Lower(head.substr(at, colon - at)) != name) continue;
    std::string v =
        head.substr(colon + 1, (eol == std::string::npos ? head.size() : eol) - colon - 1);
    const size_t b = v.find_first_not_of(" \t");
    const size_t e = v.find_last_not_of(" \t");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  return "";
}

}  // namespace

Status ReadMetricsToken(const std::string& path, std::string* token) {
  return ReadSecretLine(path, token).WithContext("auth.metrics_token_file");
}

std::string MetricsHttpResponse(const std::string& request, const std::string& peer,
                                const MetricsAccess& access,
                                const std::function<std::string()>& render) {
  // Lenient on purpose: any request that starts "GET /metrics" is a
  // scrape (a bare request line without CRLF or version included); every
  // other byte sequence gets 404, which tells nothing.
  if (request.rfind("GET /metrics", 0) != 0) {
    return Response("404 Not Found", "anomalyd serves GET /metrics only\n");
  }
  if (!access.allow.empty() &&
      std::find(access.allow.begin(), access.allow.end(), peer) == access.allow.end()) {
    return Response("403 Forbidden", "this address may not read the metrics\n");
  }
  if (!access.token.empty()) {
    const std::string auth = Header(request, "authorization");
    if (Lower(auth.substr(0, 7)) != "bearer " || !SameSecret(auth.substr(7), access.token)) {
      return Response("401 Unauthorized", "a bearer token is required\n",
                      "WWW-Authenticate: Bearer realm=\"anomalyd\"\r\n");
    }
  }
  return Response("200 OK", render());
}

}  // namespace anomalyd
