// Secret files (common/secret_file.h): the mode rule and the systemd
// credential exception.
#include "common/secret_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::TempDir;

std::string Write(const TempDir& dir, const std::string& name, const std::string& text,
                  mode_t mode) {
  const std::string path = dir.file(name);
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(SecretFileTest, ReadsTheFirstLineTrimmed) {
  TempDir dir;
  std::string s;
  ASSERT_OK(ReadSecretLine(Write(dir, "k", "  s3cret \r\nsecond line\n", 0600), &s));
  EXPECT_EQ(s, "s3cret");
}

TEST(SecretFileTest, RefusesOpenModesEmptyAndMissingFiles) {
  TempDir dir;
  std::string s = "kept";
  for (mode_t mode : {0640, 0604, 0620, 0660}) {
    const Status st = ReadSecretLine(Write(dir, "open", "x\n", mode), &s);
    EXPECT_EQ(st.code(), pb::INVALID_ARGUMENT) << mode;
    EXPECT_EQ(st.message().find("x\n"), std::string::npos);  // never the content
  }
  EXPECT_EQ(ReadSecretLine(Write(dir, "empty", " \n", 0600), &s).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(ReadSecretLine(dir.file("missing"), &s).code(), pb::IO_ERROR);
  EXPECT_EQ(s, "kept");
}

// systemd's credentials show the ACL mask as group read (0440).
TEST(SecretFileTest, ASystemdCredentialMayShowGroupRead) {
  TempDir dir;
  const std::string path = Write(dir, "webhook.key", "k\n", 0440);
  std::string s;
  EXPECT_EQ(ReadSecretLine(path, &s).code(), pb::INVALID_ARGUMENT);
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  EXPECT_TRUE(IsSystemdCredential(path));
  EXPECT_OK(ReadSecretLine(path, &s));
  EXPECT_EQ(s, "k");
  // Group write is never a credential's mode.
  EXPECT_EQ(ReadSecretLine(Write(dir, "w", "k\n", 0460), &s).code(), pb::INVALID_ARGUMENT);
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

}  // namespace
}  // namespace anomalyd
