// Helpers shared by the storage tests.
#ifndef ANOMALYD_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define ANOMALYD_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/sqlite_store.h"
#include "storage/store.h"
#include "tests/test_util.h"

namespace anomalyd::testing {

// A clock that says what the test tells it to.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now) : now_(now) {}
  int64_t NowMicros() override { return now_; }
  void Set(int64_t now) { now_ = now; }

 private:
  int64_t now_;
};

// A deterministic anomaly: every field derived from `i`.
inline AnomalyRow MakeAnomaly(int i, const std::string& stream = "s",
                              int dim = 4) {
  AnomalyRow a;
  a.record_id = "r" + std::to_string(i);
  a.stream = stream;
  a.event_time_us = 1'000'000 + int64_t{i} * 1000;
  a.scored_time_us = 2'000'000 + int64_t{i} * 1000;
  a.score = 10.0 + (i * 37 % 101) / 4.0;
  a.reconstruction = static_cast<float>(a.score * 0.75);
  a.kl = static_cast<float>(a.score * 0.25);
  a.threshold = 9.5f;
  a.model_version = 1 + static_cast<uint32_t>(i % 3);
  for (int d = 0; d < dim; ++d) {
    a.features.push_back(static_cast<float>(i) + d * 0.5f);
    a.contributions.push_back(1.0f / static_cast<float>(d + 1));
  }
  a.labels = {{"host", "h" + std::to_string(i % 5)}, {"dc", "eu"}};
  return a;
}

// Opens the SQLite store at `path` (the storage tests test SqliteStore
// through the Store interface).
inline Status OpenSqlite(const std::string& path, std::unique_ptr<Store>* s,
                         const StoreOptions& o = StoreOptions(),
                         const SqliteOptions& so = SqliteOptions()) {
  return SqliteStore::Open(o, so, path, s);
}

// Runs `sql` on a fresh raw connection to `path`; returns the first column
// of the first row as text ("" when none), or "ERROR: ..." on failure.
inline std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    out = std::string("ERROR: ") + sqlite3_errmsg(db);
  } else {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      out = std::string("ERROR: ") + sqlite3_errmsg(db);
    } else {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(st, 0);
        if (t != nullptr) out = reinterpret_cast<const char*>(t);
      } else if (rc != SQLITE_DONE) {
        out = std::string("ERROR: ") + sqlite3_errmsg(db);
      }
      sqlite3_finalize(st);
    }
  }
  sqlite3_close(db);
  return out;
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_STORAGE_STORE_TEST_UTIL_H_
