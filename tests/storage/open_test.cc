// Tests of opening a store from a URL (storage/open.cc).
#include "storage/open.h"

#include <filesystem>
#include <string>
#include <vector>

#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::MakeAnomaly;
using testing::TempDir;

TEST(StoreOpen, ParsesTheUrlForms) {
  struct Case {
    const char* url;
    const char* path;  // the file SQLite opens
  };
  const Case kCases[] = {
      // File-URI style: an empty host, then the absolute path.
      {"sqlite:///var/lib/anomalyd/anomalyd.db",
       "/var/lib/anomalyd/anomalyd.db"},
      {"sqlite://localhost/var/x.db", "/var/x.db"},
      {"SQLite://LocalHost/x.db", "/x.db"},  // scheme and host: any case
      {"sqlite:/abs/x.db", "/abs/x.db"},     // no host part at all
      {"sqlite:rel/x.db", "rel/x.db"},       // relative to the working dir
      {"sqlite:x.db", "x.db"},
      {"sqlite:./x.db", "./x.db"},
      {"sqlite:rel//x.db", "rel//x.db"},
      {"sqlite:////abs/x.db", "//abs/x.db"},  // SQLAlchemy's absolute form
      // Percent-decoded, UTF-8 included.
      {"sqlite:///tmp/a%20b%25c.db", "/tmp/a b%c.db"},
      {"sqlite:///tmp/%3F%23%3a.db", "/tmp/?#:.db"},
      {"sqlite:caf%C3%A9.db", "caf\xc3\xa9.db"},
      // Bare paths: SQLite, taken literally (no decoding, '?' and '#' kept).
      {"/var/lib/anomalyd/anomalyd.db", "/var/lib/anomalyd/anomalyd.db"},
      {"state/anomalyd.db", "state/anomalyd.db"},
      {"a%20b.db", "a%20b.db"},
      {"/tmp/x?y#z.db", "/tmp/x?y#z.db"},
      {"./a:b.db", "./a:b.db"},  // a ':' after a '/' starts no scheme
      {"1a:b.db", "1a:b.db"},    // a scheme starts with a letter
      {":memory:", ":memory:"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.url);
    StoreUrl url;
    ASSERT_OK(ParseStoreUrl(c.url, &url));
    EXPECT_EQ(url.scheme, "sqlite");
    EXPECT_EQ(url.location, c.path);
    EXPECT_EQ(url.name, c.path);  // messages name the file, as before URLs
  }
}

TEST(StoreOpen, RejectsBadUrlsNamingThePartAtFault) {
  struct Case {
    std::string url;
    std::string must_mention;
    std::string must_not_mention;  // "" for none
  };
  const std::vector<Case> kCases = {
      {"", "empty", ""},
      // Unknown schemes name the scheme and what this build supports, and
      // never quote the rest (a password may be in it).
      {"postgresql://anomalyd:s3cret@db.example/anomalyd", "'postgresql'",
       "s3cret"},
      {"postgresql://anomalyd:s3cret@db.example/anomalyd", "sqlite", ""},
      {"PostgreSQL://db/x", "'postgresql'", ""},
      {"mysql:x", "'mysql'", ""},
      {"foo:bar.db", "'foo'", ""},  // a bare path with ':' reads as a scheme
      // A host: SQLite files are local. "sqlite://relative/path" is the
      // likely mistake.
      {"sqlite://relative/path.db", "host 'relative'", ""},
      {"sqlite://user:pw@host/x.db", "host 'host'", "pw"},
      {"sqlite:", "no file path", ""},
      {"sqlite://", "no file path", ""},
      {"sqlite://localhost", "no file path", ""},
      {"sqlite:///x.db?mode=ro", "%3F", ""},
      {"sqlite:///x.db#frag", "%23", ""},
      {"sqlite:///x%2", "%25", ""},
      {"sqlite:///x%zz.db", "two hex digits", ""},
      {"sqlite:///x%00.db", "NUL", ""},
      {std::string("/x\0y.db", 7), "NUL", ""},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.url);
    StoreUrl url;
    url.scheme = "untouched";
    Status s = ParseStoreUrl(c.url, &url);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << s.ToString();
    EXPECT_NE(s.message().find(c.must_mention), std::string::npos)
        << s.message();
    if (!c.must_not_mention.empty()) {
      EXPECT_EQ(s.message().find(c.must_not_mention), std::string::npos)
          << s.message();
    }
    EXPECT_EQ(url.scheme, "untouched");
  }
}

TEST(StoreOpen, SqliteUrlRoundTripsAnyPath) {
  EXPECT_EQ(SqliteUrl("/var/lib/anomalyd/anomalyd.db"),
            "sqlite:///var/lib/anomalyd/anomalyd.db");
  EXPECT_EQ(SqliteUrl("state/anomalyd.db"), "sqlite:state/anomalyd.db");
  EXPECT_EQ(SqliteUrl("/tmp/a b.db"), "sqlite:///tmp/a%20b.db");
  for (const std::string path :
       {"/var/lib/anomalyd/anomalyd.db", "rel/a.db", "/tmp/a b%c?d#e:f.db",
        "a:b", "//x", "caf\xc3\xa9", "\x01\x7f\xff", "%41", "localhost/x"}) {
    SCOPED_TRACE(path);
    StoreUrl url;
    ASSERT_OK(ParseStoreUrl(SqliteUrl(path), &url));
    EXPECT_EQ(url.scheme, "sqlite");
    EXPECT_EQ(url.location, path);
  }
}

TEST(StoreOpen, SupportedSchemes) {
  EXPECT_EQ(SupportedStoreSchemes(), "sqlite");
}

TEST(StoreOpen, OpensSqliteFromAUrlOrABarePath) {
  TempDir dir;
  const std::string path = dir.file("a b.db");
  for (const std::string& url : {SqliteUrl(path), path}) {
    SCOPED_TRACE(url);
    std::filesystem::remove(path);
    StoreSpec spec;
    spec.url = url;
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenStore(spec, &store));
    ASSERT_NE(store, nullptr);
    std::vector<AnomalyRow> batch = {MakeAnomaly(1), MakeAnomaly(2)};
    ASSERT_OK(store->InsertAnomalies(&batch));
    EXPECT_TRUE(std::filesystem::exists(path));
    // What another connection to the same file sees.
    std::unique_ptr<Store> reader;
    ASSERT_OK(OpenStore(ReadOnly(spec), &reader));
    AnomalyQuery q;
    AnomalyPage page;
    ASSERT_OK(reader->QueryAnomalies(q, &page));
    EXPECT_EQ(page.rows.size(), 2u);
  }
}

TEST(StoreOpen, UnknownSchemeLeavesStoreUntouched) {
  StoreSpec spec;
  spec.url = "postgresql://db.example/anomalyd";
  std::unique_ptr<Store> store;
  Status s = OpenStore(spec, &store);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(store, nullptr);
}

// Both option structs reach SqliteStore::Open: each has a field it checks.
TEST(StoreOpen, PassesBothOptionStructs) {
  TempDir dir;
  StoreSpec spec;
  spec.url = SqliteUrl(dir.file("a.db"));
  std::unique_ptr<Store> store;
  spec.options.reservoir_capacity = 0;
  EXPECT_EQ(OpenStore(spec, &store).code(), pb::INVALID_ARGUMENT);
  spec.options.reservoir_capacity = 3;
  spec.sqlite.cache_size_kib = 0;
  EXPECT_EQ(OpenStore(spec, &store).code(), pb::INVALID_ARGUMENT);
  EXPECT_EQ(store, nullptr);
  spec.sqlite.cache_size_kib = 1024;
  ASSERT_OK(OpenStore(spec, &store));
}

// Regression: the retrainer read the reservoir through a read-only store
// opened with default options, whose capacity (10,000) hid every slot
// beyond it when storage.reservoir_capacity was larger. Readers are now
// derived from the writer's spec with ReadOnly.
TEST(StoreOpen, ReaderFromReadOnlyLoadsAReservoirAboveTheDefaultCapacity) {
  TempDir dir;
  StoreSpec spec;
  spec.url = SqliteUrl(dir.file("a.db"));
  spec.options.reservoir_capacity = StoreOptions().reservoir_capacity + 5;
  std::unique_ptr<Store> writer, reader;
  ASSERT_OK(OpenStore(spec, &writer));
  const size_t n = static_cast<size_t>(spec.options.reservoir_capacity);
  std::vector<float> rows(n, 1.0f);
  ASSERT_OK(writer->AddSamples("s", /*dim=*/1, rows.data(), n));
  ASSERT_OK(OpenStore(ReadOnly(spec), &reader));
  Baseline b;
  ASSERT_OK(reader->LoadReservoir("s", &b));
  EXPECT_EQ(b.rows(), n);
}

TEST(StoreOpen, ReadOnlyKeepsEverythingButReadOnly) {
  StoreSpec spec;
  spec.url = "sqlite:///x.db";
  spec.options.reservoir_capacity = 77;
  spec.options.reservoir_seed = 9;
  spec.sqlite.sync = SyncLevel::kFull;
  spec.sqlite.busy_timeout_ms = 12;
  const StoreSpec ro = ReadOnly(spec);
  EXPECT_TRUE(ro.options.read_only);
  EXPECT_FALSE(spec.options.read_only);
  EXPECT_EQ(ro.url, spec.url);
  EXPECT_EQ(ro.options.reservoir_capacity, 77);
  EXPECT_EQ(ro.options.reservoir_seed, 9u);
  EXPECT_EQ(ro.sqlite.sync, SyncLevel::kFull);
  EXPECT_EQ(ro.sqlite.busy_timeout_ms, 12);
}

TEST(StoreOpen, ReaderCannotWrite) {
  TempDir dir;
  StoreSpec spec;
  spec.url = SqliteUrl(dir.file("a.db"));
  std::unique_ptr<Store> writer, reader;
  ASSERT_OK(OpenStore(spec, &writer));
  ASSERT_OK(OpenStore(ReadOnly(spec), &reader));
  std::vector<AnomalyRow> batch = {MakeAnomaly(1)};
  EXPECT_EQ(reader->InsertAnomalies(&batch).code(), pb::STORAGE_READ_ONLY);
}

}  // namespace
}  // namespace anomalyd
