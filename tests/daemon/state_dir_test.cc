#include "daemon/state_dir.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::TempDir;

namespace fs = std::filesystem;

TEST(StateDirTest, SecondOpenInAnotherProcessNamesTheHolder) {
  TempDir tmp;
  const std::string path = tmp.path().string() + "/state";
  std::unique_ptr<StateDir> dir;
  ASSERT_OK(StateDir::Open(path, &dir));
  // flock is per open file description: a child's own open conflicts.
  const pid_t child = ::fork();
  if (child == 0) {
    std::unique_ptr<StateDir> other;
    Status s = StateDir::Open(path, &other);
    const bool ok = s.code() == pb::FAILED_PRECONDITION &&
                    s.message().find("PID " + std::to_string(::getppid())) != std::string::npos;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  dir.reset();  // released: the next daemon may start
  EXPECT_OK(StateDir::Open(path, &dir));
}

TEST(StateDirTest, BundlePathsAreSafeAndShortEnough) {
  struct Case {
    std::string stream, want_prefix;
  } cases[] = {
      {"default", "bundles/default/v3"},
      {"a/b", "bundles/a%2Fb/v3"},
      {"..", "bundles/%2E%2E/v3"},
  };
  for (const Case& c : cases) EXPECT_EQ(StateDir::BundleRelPath(c.stream, 3), c.want_prefix);
  // Every 128-byte name fits in one file name and stays distinct.
  const std::string dots(128, '.'), slashes(128, '/');
  const std::string a = StateDir::BundleRelPath(dots, 1), b = StateDir::BundleRelPath(slashes, 1);
  EXPECT_NE(a, b);
  for (const std::string& p : {a, b}) {
    const std::string component = p.substr(8, p.rfind('/') - 8);
    EXPECT_LE(component.size(), 255u) << p;
    EXPECT_EQ(component.find('/'), std::string::npos);
  }
  TempDir tmp;
  std::unique_ptr<StateDir> dir;
  ASSERT_OK(StateDir::Open(tmp.path().string(), &dir));
  EXPECT_TRUE(fs::create_directories(dir->Resolve(a)));
  EXPECT_TRUE(dir->HasBundles());
}

TEST(StateDirTest, RelativizeMapsOldAbsolutePathsIntoThisDirectory) {
  TempDir tmp;
  std::unique_ptr<StateDir> dir;
  ASSERT_OK(StateDir::Open(tmp.path().string(), &dir));
  EXPECT_FALSE(dir->HasBundles());
  fs::create_directories(dir->BundlesDir() + "/s/v1");
  EXPECT_EQ(dir->Relativize("/old/place/bundles/s/v1"), "bundles/s/v1");
  EXPECT_EQ(dir->Relativize(dir->path() + "/bundles/s/v1"), "bundles/s/v1");
  EXPECT_EQ(dir->Relativize("/old/place/bundles/s/v2"), "");  // not here
  EXPECT_EQ(dir->Relativize("bundles/s/v1"), "");             // already relative
  EXPECT_EQ(dir->Resolve("bundles/s/v1"), dir->path() + "/bundles/s/v1");
  EXPECT_EQ(dir->Resolve("/abs/v1"), "/abs/v1");
}

}  // namespace
}  // namespace anomalyd
