// Helpers for the reliability tests of a real anomalyd (crash, overload,
// storage faults), beside daemon_wire.h: what the daemon's SQLite file holds
// and how much memory the daemon uses.
#ifndef ANOMALYD_TESTS_DAEMON_DAEMON_HELPERS_H_
#define ANOMALYD_TESTS_DAEMON_DAEMON_HELPERS_H_

#include <sys/types.h>

#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "storage/open.h"
#include "storage/store.h"
#include "tests/daemon/daemon_wire.h"

namespace anomalyd::testing {

// Opens the daemon's SQLite file `db` the way the daemon opens its store
// (OpenStore, storage/open.h): read-only, unless a test plants rows.
inline Status OpenDaemonStore(const std::string& db,
                              std::unique_ptr<Store>* store,
                              bool read_only = true) {
  StoreSpec spec;
  spec.url = SqliteUrl(db);
  spec.options.read_only = read_only;
  return OpenStore(spec, store);
}

// Every record id stored in the daemon's SQLite file (opened read-only).
inline std::set<std::string> StoredIds(const std::string& db) {
  std::unique_ptr<Store> store;
  std::set<std::string> ids;
  if (!OpenDaemonStore(db, &store).ok()) return ids;
  AnomalyQuery q;
  q.limit = kMaxQueryLimit;
  for (;;) {
    AnomalyPage page;
    if (!store->QueryAnomalies(q, &page).ok()) break;
    for (const auto& r : page.rows) ids.insert(r.record_id);
    if (page.next_cursor.empty()) break;
    q.cursor = page.next_cursor;
  }
  return ids;
}

// Resident set size of process `pid` in KiB (VmRSS), or -1.
inline long VmRssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kib = -1;
      in >> kib;
      return kib;
    }
    in.ignore(4096, '\n');
  }
  return -1;
}

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_DAEMON_DAEMON_HELPERS_H_
