// Helpers shared by the tests.
#ifndef ANOMALYD_TESTS_TEST_UTIL_H_
#define ANOMALYD_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "proto/status.h"

#define EXPECT_OK(expr)                                  \
  do {                                                   \
    const ::anomalyd::Status _s = (expr);                \
    EXPECT_TRUE(_s.ok()) << _s.ToString();               \
  } while (0)
#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const ::anomalyd::Status _s = (expr);                \
    ASSERT_TRUE(_s.ok()) << _s.ToString();               \
  } while (0)

namespace anomalyd::testing {

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "anomalyd-test-XXXXXX")
            .string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const {
    return (path_ / name).string();
  }

 private:
  std::filesystem::path path_;
};

// Path of a shared data set file, e.g. SharedData("adbench/thyroid/train.csv").
inline std::string SharedData(const std::string& rel) {
  return std::string(ANOMALYD_SHARED_DATA) + "/" + rel;
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_TEST_UTIL_H_
