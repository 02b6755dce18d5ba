// Tests of the daemon's store spec from its config (daemon/store_spec.cc).
#include "daemon/store_spec.h"

#include <string>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

// The file path OpenStore would open for `spec`.
std::string PathOf(const StoreSpec& spec) {
  StoreUrl url;
  Status s = ParseStoreUrl(spec.url, &url);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(url.scheme, "sqlite");
  return url.location;
}

Config Parse(const std::string& toml) {
  Config c;
  Status s = ParseConfig(toml, "t.toml", &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

TEST(StoreSpecTest, WhereTheDatabaseIs) {
  const std::string kDefault = "/var/lib/anomalyd/anomalyd.db";
  struct Case {
    const char* toml;
    const char* path;
  };
  const Case kCases[] = {
      {"", "/var/lib/anomalyd/anomalyd.db"},  // neither key: the state dir
      {"[storage]\npath = \"/srv/a.db\"\n", "/srv/a.db"},
      {"[storage]\npath = \"rel/a.db\"\n", "rel/a.db"},
      // storage.path is a file name, never a URL, whatever it holds.
      {"[storage]\npath = \"/srv/50%:x?#.db\"\n", "/srv/50%:x?#.db"},
      {"[storage]\npath = \"sqlite:x.db\"\n", "sqlite:x.db"},
      {"[storage]\nurl = \"sqlite:///srv/b.db\"\n", "/srv/b.db"},
      {"[storage]\nurl = \"sqlite:rel/b%20c.db\"\n", "rel/b c.db"},
      {"[storage]\nurl = \"/srv/bare.db\"\n", "/srv/bare.db"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.toml);
    EXPECT_EQ(PathOf(MakeStoreSpec(Parse(c.toml), kDefault)), c.path);
  }
}

TEST(StoreSpecTest, SettingsReachTheSpec) {
  const Config c = Parse(
      "[storage]\nsynchronous = \"full\"\nreservoir_capacity = 123\n"
      "[training]\nseed = 77\n");
  const StoreSpec spec = MakeStoreSpec(c, "/x.db");
  EXPECT_EQ(spec.sqlite.sync, SyncLevel::kFull);
  EXPECT_EQ(spec.options.reservoir_capacity, 123);
  EXPECT_EQ(spec.options.reservoir_seed, 77u);
  EXPECT_FALSE(spec.options.read_only);
  for (const auto& [name, level] : {std::pair{"off", SyncLevel::kOff},
                                    std::pair{"normal", SyncLevel::kNormal},
                                    std::pair{"full", SyncLevel::kFull}}) {
    const Config d =
        Parse(std::string("[storage]\nsynchronous = \"") + name + "\"\n");
    EXPECT_EQ(MakeStoreSpec(d, "/x.db").sqlite.sync, level) << name;
  }
  // The defaults are the store's own.
  const StoreSpec defaults = MakeStoreSpec(Config(), "/x.db");
  EXPECT_EQ(defaults.sqlite.sync, SqliteOptions().sync);
  EXPECT_EQ(defaults.options.reservoir_capacity,
            StoreOptions().reservoir_capacity);
}

// An unknown scheme is no config error (the config does not know the
// backends): the daemon's open reports it, naming the scheme.
TEST(StoreSpecTest, UnknownSchemeFailsAtOpen) {
  const StoreSpec spec = MakeStoreSpec(
      Parse("[storage]\nurl = \"postgresql://db/anomalyd\"\n"), "/x.db");
  std::unique_ptr<Store> store;
  Status s = OpenStore(spec, &store);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("'postgresql'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace anomalyd
