// The metrics endpoint's HTTP/1.1 exchange: one GET /metrics per
// connection, answered and closed. Pure functions (the socket handling is in
// frontend.cc), so the parsing and the access rules are unit-tested alone.
//
// Access: CURVE cannot cover plain HTTP, so the endpoint has its own two
// optional rules ([auth] metrics_token_file, metrics_allow): a bearer token
// (Prometheus' `authorization: {credentials_file: ...}`) and an allow-list
// of source IP addresses. With neither set anyone who can reach the
// endpoint may read it (it binds loopback by default).
#ifndef ANOMALYD_DAEMON_METRICS_HTTP_H_
#define ANOMALYD_DAEMON_METRICS_HTTP_H_

#include <functional>
#include <string>
#include <vector>

#include "proto/status.h"

namespace anomalyd {

struct MetricsAccess {
  std::string token;                // "" = no token required
  std::vector<std::string> allow;   // source addresses; empty = any
};

// Reads the bearer token from `path`: ReadSecretLine (common/secret_file.h),
// its errors prefixed "auth.metrics_token_file".
Status ReadMetricsToken(const std::string& path, std::string* token);

// The whole HTTP response to `request` (the bytes the client sent) from
// `peer` (its IP address, "" when unknown): 200 with render() for an
// allowed request starting "GET /metrics"; 403 from an address not on the
// allow-list; 401 without the right bearer token; 404 for anything else
// (other paths and methods, bytes that are not HTTP). Always
// "Connection: close".
std::string MetricsHttpResponse(const std::string& request, const std::string& peer,
                                const MetricsAccess& access,
                                const std::function<std::string()>& render);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_METRICS_HTTP_H_
