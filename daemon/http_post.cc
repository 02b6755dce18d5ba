#include "daemon/http_post.h"

#include <httplib.h>

#include <map>

namespace anomalyd {
namespace {

class HttplibPoster final : public HttpPoster {
 public:
  Status Post(const std::string& url, const HttpHeaders& headers, const std::string& body,
              double timeout_s, int* status) override {
    std::string origin, path;
    ANOMALYD_RETURN_IF_ERROR(SplitUrl(url, &origin, &path));
    std::unique_ptr<httplib::Client>& c = clients_[origin];
    if (!c) {
      c = std::make_unique<httplib::Client>(origin);
      c->set_keep_alive(true);
    }
    const time_t sec = static_cast<time_t>(timeout_s);
    const time_t usec = static_cast<time_t>((timeout_s - static_cast<double>(sec)) * 1e6);
    c->set_connection_timeout(sec, usec);
    c->set_read_timeout(sec, usec);
    c->set_write_timeout(sec, usec);
    httplib::Headers h;
    for (const auto& [k, v] : headers) h.emplace(k, v);
    httplib::Result r = c->Post(path, h, body, "application/json");
    if (!r) {
      const std::string why = httplib::to_string(r.error());
      clients_.erase(origin);  // a fresh connection next time
      // The origin only: a webhook URL's path often holds its secret, and
      // this message is logged and stored with the outbox row.
      return Status::IoError("POST to " + origin + ": " + why);
    }
    *status = r->status;
    return Status::OK();
  }

 private:
  std::map<std::string, std::unique_ptr<httplib::Client>> clients_;
};

}  // namespace

std::unique_ptr<HttpPoster> MakeHttpPoster() { return std::make_unique<HttplibPoster>(); }

Status SplitUrl(const std::string& url, std::string* origin, std::string* path) {
  size_t scheme_end = std::string::npos;
  if (url.rfind("http://", 0) == 0) scheme_end = 7;
  if (url.rfind("https://", 0) == 0) scheme_end = 8;
  if (scheme_end == std::string::npos || url.size() == scheme_end) {
    return Status::InvalidArgument("not an http:// or https:// URL");
  }
  const size_t slash = url.find_first_of("/?", scheme_end);
  *origin = url.substr(0, slash);
  *path = slash == std::string::npos ? "/" : url.substr(slash);
  if (!path->empty() && (*path)[0] == '?') *path = "/" + *path;
  return Status::OK();
}

}  // namespace anomalyd
