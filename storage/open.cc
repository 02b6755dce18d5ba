// OpenStore: from a URL to a backend. The table of backends is kBackends.
#include "storage/open.h"

#include <string_view>

namespace anomalyd {
namespace {

Status BadUrl(const std::string& why) {
  return Status::InvalidArgument("store URL: " + why);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding. Errors name the offset, never the text (a URL
// may carry a password).
Status PercentDecode(std::string_view in, std::string* out) {
  std::string s;
  s.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      s.push_back(in[i]);
      continue;
    }
    const int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
    const int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return BadUrl("'%' at byte " + std::to_string(i) +
                    " of the path is not followed by two hex digits (write "
                    "a '%' as %25)");
    }
    const char c = static_cast<char>(hi * 16 + lo);
    if (c == '\0') return BadUrl("the path holds %00 (a NUL byte)");
    s.push_back(c);
    i += 2;
  }
  *out = std::move(s);
  return Status::OK();
}

// ASCII only, whatever the locale.
bool IsAlpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAlnum(unsigned char c) { return IsAlpha(c) || (c >= '0' && c <= '9'); }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// ---- sqlite ----------------------------------------------------------

// `rest` is what follows "sqlite:".
Status ParseSqlite(std::string_view rest, StoreUrl* url) {
  if (rest.find('?') != std::string_view::npos) {
    return BadUrl(
        "sqlite: URLs take no query ('?...'); write a '?' in a file name as "
        "%3F");
  }
  if (rest.find('#') != std::string_view::npos) {
    return BadUrl(
        "sqlite: URLs take no fragment ('#...'); write a '#' in a file name "
        "as %23");
  }
  std::string_view path = rest;
  if (rest.substr(0, 2) == "//") {
    const size_t slash = rest.find('/', 2);
    const std::string_view host =
        rest.substr(2, slash == std::string_view::npos ? std::string_view::npos
                                                       : slash - 2);
    if (!host.empty() && !EqualsNoCase(host, "localhost")) {
      // Quotes the host without any user info (which may hold a password).
      const size_t at = host.rfind('@');
      const std::string_view shown =
          at == std::string_view::npos ? host : host.substr(at + 1);
      return BadUrl(
          "sqlite: a SQLite database is a local file, but the URL names the "
          "host '" +
          std::string(shown) +
          "'; write sqlite:///absolute/path or sqlite:relative/path");
    }
    path = slash == std::string_view::npos ? std::string_view()
                                           : rest.substr(slash);
  }
  std::string decoded;
  ANOMALYD_RETURN_IF_ERROR(PercentDecode(path, &decoded));
  if (decoded.empty()) {
    return BadUrl(
        "sqlite: no file path (sqlite:///absolute/path or "
        "sqlite:relative/path)");
  }
  url->location = decoded;
  url->name = std::move(decoded);
  return Status::OK();
}

Status OpenSqlite(const StoreSpec& spec, const StoreUrl& url,
                  std::unique_ptr<Store>* store) {
  return SqliteStore::Open(spec.options, spec.sqlite, url.location, store);
}

// ---- the table -------------------------------------------------------

struct Backend {
  const char* scheme;  // lowercase
  // Fills url->location and url->name from what follows "<scheme>:".
  Status (*parse)(std::string_view rest, StoreUrl* url);
  Status (*open)(const StoreSpec& spec, const StoreUrl& url,
                 std::unique_ptr<Store>* store);
};

constexpr Backend kBackends[] = {
    {"sqlite", ParseSqlite, OpenSqlite},
};

const Backend* FindBackend(std::string_view scheme) {
  for (const Backend& b : kBackends) {
    if (scheme == b.scheme) return &b;
  }
  return nullptr;
}

// The length of the scheme that starts `url` (RFC 3986: a letter, then
// letters, digits, '+', '-', '.', up to a ':'); 0 when it has none.
size_t SchemeLength(const std::string& url) {
  if (url.empty() || !IsAlpha(static_cast<unsigned char>(url[0]))) return 0;
  for (size_t i = 1; i < url.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(url[i]);
    if (c == ':') return i;
    if (!IsAlnum(c) && c != '+' && c != '-' && c != '.') return 0;
  }
  return 0;
}

}  // namespace

std::string SupportedStoreSchemes() {
  std::string out;
  for (const Backend& b : kBackends) {
    if (!out.empty()) out += ", ";
    out += b.scheme;
  }
  return out;
}

Status ParseStoreUrl(const std::string& url, StoreUrl* out) {
  if (url.empty()) return BadUrl("empty");
  const size_t n = SchemeLength(url);
  if (n == 0) {
    // A bare path: SQLite, as storage.path always was. Not decoded.
    if (url.find('\0') != std::string::npos) {
      return BadUrl("the path holds a NUL byte");
    }
    out->scheme = "sqlite";
    out->location = url;
    out->name = url;
    return Status::OK();
  }
  std::string scheme = url.substr(0, n);
  for (char& c : scheme) c = Lower(c);
  const Backend* backend = FindBackend(scheme);
  if (backend == nullptr) {
    return BadUrl("unknown scheme '" + scheme +
                  "'; this build opens: " + SupportedStoreSchemes() +
                  " (or a bare file path, which is SQLite)");
  }
  StoreUrl parsed;
  parsed.scheme = std::move(scheme);
  ANOMALYD_RETURN_IF_ERROR(
      backend->parse(std::string_view(url).substr(n + 1), &parsed));
  *out = std::move(parsed);
  return Status::OK();
}

Status OpenStore(const StoreSpec& spec, std::unique_ptr<Store>* store) {
  StoreUrl url;
  ANOMALYD_RETURN_IF_ERROR(ParseStoreUrl(spec.url, &url));
  return FindBackend(url.scheme)->open(spec, url, store);
}

StoreSpec ReadOnly(StoreSpec spec) {
  spec.options.read_only = true;
  return spec;
}

std::string SqliteUrl(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // The leading '/' of an absolute path follows an empty host: "sqlite://".
  std::string out = path[0] == '/' ? "sqlite://" : "sqlite:";
  for (unsigned char c : path) {
    if (IsAlnum(c) || c == '/' || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace anomalyd
