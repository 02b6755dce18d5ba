#include "daemon/metrics_http.h"

#include <sys/stat.h>

#include <fstream>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::TempDir;

std::string Render() { return "anomalyd_up 1\n"; }

TEST(MetricsHttpTest, AccessRules) {
  MetricsAccess open, token{"t0k", {}}, allow{"", {"10.0.0.1"}};
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string with = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n";
  const std::string lower = "GET /metrics HTTP/1.1\r\nauthorization:  bearer t0k \r\n\r\n";
  const std::string wrong = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer t0K\r\n\r\n";
  struct Case {
    const char* name;
    std::string request, peer;
    const MetricsAccess* access;
    const char* status;
  } cases[] = {
      {"open", get, "127.0.0.1", &open, "HTTP/1.1 200 OK"},
      {"no token", get, "127.0.0.1", &token, "HTTP/1.1 401"},
      {"token", with, "127.0.0.1", &token, "HTTP/1.1 200 OK"},
      {"token, other case and spaces", lower, "", &token, "HTTP/1.1 200 OK"},
      {"wrong token", wrong, "127.0.0.1", &token, "HTTP/1.1 401"},
      {"allowed address", get, "10.0.0.1", &allow, "HTTP/1.1 200 OK"},
      {"other address", get, "127.0.0.1", &allow, "HTTP/1.1 403"},
      {"unknown address", get, "", &allow, "HTTP/1.1 403"},
      {"other path", "GET / HTTP/1.1\r\n\r\n", "", &open, "HTTP/1.1 404"},
      {"other method", "POST /metrics HTTP/1.1\r\n\r\n", "", &open, "HTTP/1.1 404"},
      {"not HTTP", "\x16\x03\x01garbage", "", &open, "HTTP/1.1 404"},
      {"empty", "", "", &open, "HTTP/1.1 404"},
      {"other path, wrong token", "GET /x HTTP/1.1\r\n\r\n", "", &token, "HTTP/1.1 404"},
      {"bare request line", "GET /metrics", "", &open, "HTTP/1.1 200 OK"},
  };
  for (const Case& c : cases) {
    const std::string r = MetricsHttpResponse(c.request, c.peer, *c.access, Render);
    EXPECT_EQ(r.rfind(c.status, 0), 0u) << c.name << ": " << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << c.name;
    EXPECT_EQ(r.find("anomalyd_up") != std::string::npos,
              std::string(c.status) == "HTTP/1.1 200 OK")
        << c.name;
  }
}

TEST(MetricsHttpTest, TokenFileMustBePrivate) {
  TempDir tmp;
  const std::string path = tmp.path().string() + "/token";
  std::ofstream(path) << "  abc \n";
  ::chmod(path.c_str(), 0644);
  std::string token;
  EXPECT_EQ(ReadMetricsToken(path, &token).code(), pb::INVALID_ARGUMENT);
  ::chmod(path.c_str(), 0600);
  ASSERT_OK(ReadMetricsToken(path, &token));
  EXPECT_EQ(token, "abc");
  EXPECT_EQ(ReadMetricsToken(path + ".missing", &token).code(), pb::IO_ERROR);
  std::ofstream(path, std::ios::trunc) << "\n";
  EXPECT_EQ(ReadMetricsToken(path, &token).code(), pb::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace anomalyd
