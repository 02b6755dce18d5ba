#include "common/secret_file.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace anomalyd {

bool IsSystemdCredential(const std::string& path) {
  namespace fs = std::filesystem;
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (dir == nullptr || *dir == '\0') return false;
  const fs::path folder = (fs::path(dir) / "").lexically_normal().parent_path();
  struct stat st;
  return fs::path(path).lexically_normal().parent_path() == folder &&
         ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Status ReadSecretLine(const std::string& path, std::string* secret) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::IoError("cannot read " + path);
  const unsigned forbidden = IsSystemdCredential(path) ? 037 : 077;
  if (st.st_mode & forbidden) {
    return Status::InvalidArgument(path + " is accessible by group or others (chmod 600 it)");
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return Status::IoError("cannot read " + path);
  const size_t b = line.find_first_not_of(" \t\r");
  const size_t e = line.find_last_not_of(" \t\r");
  if (b == std::string::npos) return Status::InvalidArgument(path + " is empty");
  *secret = line.substr(b, e - b + 1);
  return Status::OK();
}

}  // namespace anomalyd
