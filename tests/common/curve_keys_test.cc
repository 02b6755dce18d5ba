// CURVE key files (common/curve_keys.h): writing, reading, and refusing
// keys with the wrong content or mode. The daemon's use of them ([auth])
// is tested in tests/daemon/auth_test.cc.
#include "common/curve_keys.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ios>
#include <string>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

TEST(CurveKeysTest, WritesAndReadsAPair) {
  testing::TempDir tmp;
  CurveKeyPair pair, back;
  std::string pub;
  ASSERT_OK(GenerateKeyPair(&pair));
  ASSERT_OK(WriteKeyFiles(tmp.file("k"), "a", pair, &pub));
  EXPECT_EQ(ModeOf(tmp.file("k")), 0700u);
  EXPECT_EQ(ModeOf(pub), 0644u);
  EXPECT_EQ(ModeOf(pub + "_secret"), 0600u);
  ASSERT_OK(ReadKeyFile(pub + "_secret", /*need_secret=*/true, &back));
  EXPECT_EQ(back.public_key, pair.public_key);
  EXPECT_EQ(back.secret_key, pair.secret_key);
  ASSERT_OK(ReadKeyFile(pub, /*need_secret=*/false, &back));
  EXPECT_EQ(back.public_key, pair.public_key);
  EXPECT_TRUE(back.secret_key.empty());
  EXPECT_EQ(ReadKeyFile(pub, /*need_secret=*/true, &back).code(), pb::INVALID_ARGUMENT);
  // Never overwrites a key.
  EXPECT_EQ(WriteKeyFiles(tmp.file("k"), "a", pair, &pub).code(), pb::IO_ERROR);
}

TEST(CurveKeysTest, RefusesBadFiles) {
  testing::TempDir tmp;
  CurveKeyPair a, b, out;
  ASSERT_OK(GenerateKeyPair(&a));
  ASSERT_OK(GenerateKeyPair(&b));
  struct Case {
    const char* what;
    std::string text;
    mode_t mode;
    bool need_secret;
    const char* must_mention;
  } cases[] = {
      {"no key", "metadata\ncurve\n", 0600, false, "no public-key"},
      {"short key", "public-key = \"abc\"\n", 0600, false, "no public-key"},
      {"pair mismatch",
       "public-key = \"" + a.public_key + "\"\nsecret-key = \"" + b.secret_key + "\"\n", 0600, true,
       "does not match"},
      {"secret readable by group",
       "public-key = \"" + a.public_key + "\"\nsecret-key = \"" + a.secret_key + "\"\n", 0640, true,
       "has mode 0640"},
      {"public key writable by others", "public-key = \"" + a.public_key + "\"\n", 0646, false,
       "has mode 0646"},
  };
  for (const Case& c : cases) {
    const std::string path = tmp.file("k");
    fs::remove(path);
    std::ofstream(path) << c.text;
    fs::permissions(path, static_cast<fs::perms>(c.mode));
    Status s = ReadKeyFile(path, c.need_secret, &out);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << c.what;
    EXPECT_NE(s.message().find(c.must_mention), std::string::npos) << c.what << ": " << s.message();
    EXPECT_NE(s.message().find(path), std::string::npos) << c.what << ": " << s.message();
  }
  // pyzmq's zmq.auth.create_certificates writes single-quoted values too.
  const std::string path = tmp.file("py.key");
  std::ofstream(path)
      << "#   ZeroMQ CURVE Public Certificate\n\nmetadata\ncurve\n    public-key = '"
      << a.public_key << "'\n";
  fs::permissions(path, static_cast<fs::perms>(0644));
  ASSERT_OK(ReadKeyFile(path, /*need_secret=*/false, &out));
  EXPECT_EQ(out.public_key, a.public_key);
}

// systemd's LoadCredential= gives the service a root-owned 0400 file with an
// ACL entry for the service's user, which stat reports as mode 0440.
TEST(CurveKeysTest, SystemdCredentialMayShowGroupRead) {
  testing::TempDir tmp;
  CurveKeyPair pair, out;
  ASSERT_OK(GenerateKeyPair(&pair));
  std::string pub;
  ASSERT_OK(WriteKeyFiles(tmp.file("creds"), "server", pair, &pub));
  const std::string secret = tmp.file("creds") + "/server.key_secret";
  fs::permissions(secret, static_cast<fs::perms>(0440));
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_EQ(ReadKeyFile(secret, /*need_secret=*/true, &out).code(), pb::INVALID_ARGUMENT);
  ::setenv("CREDENTIALS_DIRECTORY", (tmp.file("creds") + "/").c_str(), 1);
  EXPECT_OK(ReadKeyFile(secret, /*need_secret=*/true, &out));
  EXPECT_EQ(out.secret_key, pair.secret_key);
  // Still refused there: readable by others, writable by the group.
  for (unsigned mode : {0444u, 0460u}) {
    fs::permissions(secret, static_cast<fs::perms>(mode));
    EXPECT_EQ(ReadKeyFile(secret, true, &out).code(), pb::INVALID_ARGUMENT) << std::oct << mode;
  }
  // Only files directly in the folder, not through a link or a subfolder.
  fs::permissions(secret, static_cast<fs::perms>(0440));
  fs::create_directory(tmp.file("creds/sub"));
  fs::copy_file(secret, tmp.file("creds/sub/server.key_secret"));
  fs::create_symlink(secret, tmp.file("creds/link.key_secret"));
  EXPECT_EQ(ReadKeyFile(tmp.file("creds/sub/server.key_secret"), true, &out).code(),
            pb::INVALID_ARGUMENT);
  EXPECT_EQ(ReadKeyFile(tmp.file("creds/link.key_secret"), true, &out).code(),
            pb::INVALID_ARGUMENT);
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

}  // namespace
}  // namespace anomalyd
