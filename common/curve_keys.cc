#include "common/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "common/secret_file.h"

namespace anomalyd {
namespace {

constexpr size_t kZ85KeyChars = 40;  // a 32-byte key in Z85

bool ValidKey(const std::string& z85) {
  uint8_t bin[32];
  return z85.size() == kZ85KeyChars && zmq_z85_decode(bin, z85.c_str()) != nullptr;
}

// The value of a `name = "value"` line, as pyzmq's load_certificate reads it.
std::string ValueOf(const std::string& line) {
  const size_t eq = line.find('=');
  if (eq == std::string::npos) return "";
  const char* kTrim = " \t\r'\"";
  const size_t b = line.find_first_not_of(kTrim, eq + 1);
  if (b == std::string::npos) return "";
  return line.substr(b, line.find_last_not_of(kTrim) + 1 - b);
}

std::string ModeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string Now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Creates `path` with exactly `mode` (not the umask's) and `text` in it.
Status WriteNewFile(const std::string& path, mode_t mode, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  const bool closed = ::close(fd) == 0;
  if (!ok || !closed) {
    ::unlink(path.c_str());
    return Status::IoError("cannot write " + path + ": " + std::strerror(ok ? errno : err));
  }
  return Status::OK();
}


}  // namespace

Status GenerateKeyPair(CurveKeyPair* out) {
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Internal(std::string("cannot make a CURVE key pair: ") +
                            zmq_strerror(zmq_errno()));
  }
  out->public_key = pub;
  out->secret_key = sec;
  return Status::OK();
}

Status CheckMode(const std::string& path, unsigned forbidden, const char* why) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & forbidden) != 0) {
    return Status::InvalidArgument(path + " has mode " + ModeString(st.st_mode) + ": " +
                                   why + " (chmod " + ModeString(st.st_mode & ~forbidden) +
                                   " " + path + ")");
  }
  return Status::OK();
}

Status ReadKeyFile(const std::string& path, bool need_secret, CurveKeyPair* out) {
  // A systemd credential may show the group read bit (see above).
  const unsigned secret_forbidden = IsSystemdCredential(path) ? 037 : 077;
  ANOMALYD_RETURN_IF_ERROR(
      need_secret ? CheckMode(path, secret_forbidden,
                              "a secret key must not be readable or writable "
                              "by group or others")
                  : CheckMode(path, 022, "a key file must not be writable by group or others"));
  std::ifstream in(path);
  if (!in) return Status::IoError("cannot read key file " + path);
  CurveKeyPair k;
  for (std::string line; std::getline(in, line);) {
    const size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    if (line.compare(b, 10, "public-key") == 0) k.public_key = ValueOf(line);
    if (line.compare(b, 10, "secret-key") == 0) k.secret_key = ValueOf(line);
  }
  if (!ValidKey(k.public_key)) {
    return Status::InvalidArgument(path + ": no public-key of 40 Z85 characters");
  }
  if (!need_secret) {
    k.secret_key.clear();
  } else {
    char derived[kZ85KeyChars + 1];
    if (!ValidKey(k.secret_key)) {
      return Status::InvalidArgument(path + ": no secret-key of 40 Z85 characters "
                                            "(give the NAME.key_secret file)");
    }
    if (zmq_curve_public(derived, k.secret_key.c_str()) != 0 || k.public_key != derived) {
      return Status::InvalidArgument(path + ": its secret-key does not match its public-key");
    }
  }
  *out = std::move(k);
  return Status::OK();
}

Status WriteKeyFiles(const std::string& dir, const std::string& name,
                     const CurveKeyPair& keys, std::string* public_path) {
  namespace fs = std::filesystem;
  if (name.empty() || name[0] == '.' || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("key name '" + name + "': must be a plain file name");
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    // The folder will hold a secret: only its owner may look inside.
    fs::create_directories(dir, ec);
    if (!ec) fs::permissions(dir, fs::perms::owner_all, ec);
    if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  }
  const std::string pub = dir + "/" + name + ".key";
  const std::string sec = pub + "_secret";
  const std::string header = "#   ****  Generated on " + Now() + " by anomalyctl keygen  ****\n";
  ANOMALYD_RETURN_IF_ERROR(WriteNewFile(
      sec, 0600,
      header + "#   ZeroMQ CURVE **Secret** Certificate\n"
               "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
               "metadata\ncurve\n    public-key = \"" + keys.public_key +
          "\"\n    secret-key = \"" + keys.secret_key + "\"\n"));
  Status s = WriteNewFile(pub, 0644,
                          header + "#   ZeroMQ CURVE Public Certificate\n\n"
                                   "metadata\ncurve\n    public-key = \"" +
                              keys.public_key + "\"\n");
  if (!s.ok()) {
    ::unlink(sec.c_str());  // no half a pair
    return s;
  }
  *public_path = pub;
  return Status::OK();
}

Status LoadClientKeys(const std::string& server_key_file,
                      const std::string& client_key_file, CurveClientKeys* out) {
  if (server_key_file.empty() && client_key_file.empty()) {
    *out = CurveClientKeys();
    return Status::OK();
  }
  if (server_key_file.empty() || client_key_file.empty()) {
    return Status::InvalidArgument(
        "CURVE needs both the server's public key file and the client's secret key file");
  }
  CurveKeyPair server;
  CurveClientKeys keys;
  ANOMALYD_RETURN_IF_ERROR(ReadKeyFile(server_key_file, /*need_secret=*/false, &server));
  ANOMALYD_RETURN_IF_ERROR(ReadKeyFile(client_key_file, /*need_secret=*/true, &keys.client));
  keys.server_key = server.public_key;
  *out = std::move(keys);
  return Status::OK();
}

}  // namespace anomalyd
