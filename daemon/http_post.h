// HttpPoster: one HTTP(S) POST at a time, for alert delivery. The seam the
// alert sender reaches receivers through; tests put a fake in its place.
#ifndef ANOMALYD_DAEMON_HTTP_POST_H_
#define ANOMALYD_DAEMON_HTTP_POST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proto/status.h"

namespace anomalyd {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // POSTs `body` (application/json) to `url` and waits at most timeout_s
  // for the reply. OK with *status set to the reply's HTTP status, whatever
  // it is; IO_ERROR naming the URL's origin (scheme, host, port: never its
  // path, which may hold a secret) when no reply came (refused, timed out,
  // TLS failure); INVALID_ARGUMENT for a URL that is not http(s)://.
  virtual Status Post(const std::string& url, const HttpHeaders& headers, const std::string& body,
                      double timeout_s, int* status) = 0;
};

// On cpp-httplib: one kept-alive connection per scheme://host:port. Not
// thread-safe (one sender thread uses it).
std::unique_ptr<HttpPoster> MakeHttpPoster();

// Splits "http://host:port/path?q" into "http://host:port" and "/path?q"
// ("/" when there is none). INVALID_ARGUMENT unless http:// or https://.
Status SplitUrl(const std::string& url, std::string* origin, std::string* path);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_HTTP_POST_H_
