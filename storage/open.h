// Opening a Store (storage/store.h) from a URL: the one place that knows
// which backends exist.
//
//   StoreSpec spec;
//   spec.url = "sqlite:///var/lib/anomalyd/anomalyd.db";
//   spec.sqlite.sync = SyncLevel::kFull;
//   std::unique_ptr<Store> writer, reader;
//   Status s = OpenStore(spec, &writer);
//   if (s.ok()) s = OpenStore(ReadOnly(spec), &reader);
//
// URL forms (docs/storage.md, "Opening a store"):
//   sqlite:///abs/path/anomalyd.db   absolute path (file-URI style: an empty
//                                    host, then the path with its leading /)
//   sqlite://localhost/abs/path.db   the same; no other host is allowed
//   sqlite:/abs/path.db              absolute too (no host part at all)
//   sqlite:rel/path.db               relative to the working directory
//   /abs/path.db, rel/path.db        a bare path: SQLite, taken literally
// In sqlite: URLs the path is percent-decoded (%20 is a space, %25 a '%');
// '?' and '#' must be written %3F and %23 (query parameters and fragments
// are refused, so that no setting hides in a URL). A bare path is not
// decoded; one whose first ':' comes before any '/' reads as a URL scheme
// (write ./a:b.db). Schemes are case-insensitive. Any other scheme is
// INVALID_ARGUMENT naming it and the schemes this build supports.
//
// A new backend adds its scheme to the table in open.cc, its options to
// StoreSpec, and its class beside SqliteStore.
#ifndef ANOMALYD_STORAGE_OPEN_H_
#define ANOMALYD_STORAGE_OPEN_H_

#include <memory>
#include <string>

#include "proto/status.h"
#include "storage/sqlite_store.h"
#include "storage/store.h"

namespace anomalyd {

// Everything needed to open one store: where it is and how to open it.
// Plain value; copy it to open more connections to the same store.
struct StoreSpec {
  // Where the store is (see the forms above). Default: "" (an error).
  std::string url;
  // Settings of every backend.
  StoreOptions options;
  // Used when `url` names SQLite; ignored otherwise.
  SqliteOptions sqlite;
};

// A URL taken apart.
struct StoreUrl {
  std::string scheme;  // lowercase, e.g. "sqlite"; "sqlite" for a bare path
  // Where the backend finds the store. sqlite: the file path, decoded.
  std::string location;
  // What messages call the store: for SQLite the file path (as the daemon's
  // messages have always named it); never a password.
  std::string name;
};

// Parses `url`. INVALID_ARGUMENT, quoting no more of the URL than the part
// at fault, when it is empty, has an unknown scheme, or is not a valid URL
// of its scheme (sqlite: a host other than localhost, an empty path, '?'
// or '#', a bad or NUL-producing %XX). On error *out is untouched.
Status ParseStoreUrl(const std::string& url, StoreUrl* out);

// Opens the store `spec` names with the backend of its URL's scheme. Errors:
// ParseStoreUrl's, then the backend's Open's (SqliteStore::Open). On error
// *store is untouched.
Status OpenStore(const StoreSpec& spec, std::unique_ptr<Store>* store);

// `spec` for a reader of the same store: read_only set, everything else
// (the reservoir's capacity included, which LoadReservoir honours) kept.
StoreSpec ReadOnly(StoreSpec spec);

// The sqlite: URL of the file `path`, percent-encoded so that
// ParseStoreUrl gives `path` back exactly (whatever bytes it holds):
// "sqlite://" + path when absolute, "sqlite:" + path when relative.
// REQUIRES: !path.empty()
std::string SqliteUrl(const std::string& path);

// "sqlite": the schemes this build opens, comma-separated (for messages
// and --help texts).
std::string SupportedStoreSchemes();

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_OPEN_H_
