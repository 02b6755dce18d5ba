// SqliteStore: the Store (storage/store.h) in one SQLite file, in WAL mode.
// Format, indexes and measurements: docs/storage.md.
//
//   StoreOptions options;
//   SqliteOptions sqlite;
//   sqlite.sync = SyncLevel::kFull;
//   std::unique_ptr<Store> store;
//   Status s = SqliteStore::Open(options, sqlite,
//                                "/var/lib/anomalyd/anomalyd.db", &store);
//
// The daemon opens it through OpenStore (storage/open.h) with a URL such as
// "sqlite:///var/lib/anomalyd/anomalyd.db"; tests and tools that want SQLite
// itself call SqliteStore::Open.
//
// What SQLite adds to the Store contract:
//  - STORAGE_FULL when the disk is full or the file would pass
//    SqliteOptions::max_db_bytes; STORAGE_LOCKED when another connection
//    held the write lock past SqliteOptions::busy_timeout_ms.
//  - Readers and the writer never block each other (WAL). Writers take the
//    lock with BEGIN IMMEDIATE, so contention shows at the start of a
//    transaction.
//  - One connection per Store, opened SQLITE_OPEN_NOMUTEX: one thread at a
//    time, as the contract says.
#ifndef ANOMALYD_STORAGE_SQLITE_STORE_H_
#define ANOMALYD_STORAGE_SQLITE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proto/status.h"
#include "storage/store.h"
#include "storage/types.h"

namespace anomalyd {

// How hard a commit tries to reach the disk (SQLite's PRAGMA synchronous).
enum class SyncLevel {
  kOff,     // no fsync at all: a machine crash can corrupt the file
  kNormal,  // WAL fsynced at checkpoints: a commit survives a process crash;
            // a power loss may roll back the last commits, never corrupts
  kFull,    // WAL fsynced at every commit: survives power loss too
};

// Settings only SQLite has. Every field is checked at Open:
// INVALID_ARGUMENT naming it when out of range.
struct SqliteOptions {
  // Default: kNormal (see SyncLevel; durable against process crashes).
  SyncLevel sync = SyncLevel::kNormal;

  // How long a write waits for another connection's lock before failing
  // with STORAGE_LOCKED. >= 0. Default: 5,000 ms.
  int busy_timeout_ms = 5000;

  // Page cache of this connection, in KiB. > 0. Default: 16 MiB, enough to
  // keep the upper levels of the anomaly indexes of a few million rows hot.
  int cache_size_kib = 16 * 1024;

  // Upper bound of the database file (SQLite's max_page_count); a write
  // that would grow it further fails with STORAGE_FULL and changes nothing.
  // 0: no bound (the disk is the bound). >= 0. Ignored when read_only.
  // Default: 0. (A server database has no file of its own to bound, which
  // is why this is not a StoreOptions field.)
  int64_t max_db_bytes = 0;

  // Copy the WAL back into the database file (checkpoint) on a thread of
  // the store's own, with a second connection, instead of inside the
  // commit that crosses SQLite's threshold of 1,000 pages: a commit then
  // does not wait for the copy and its fsyncs. When commits outpace it, the
  // writer checkpoints after its commit once the WAL reaches 4,000 pages
  // (64 MiB), which bounds the WAL. Ignored when read_only. Default: true.
  bool background_checkpoint = true;
};

// A connection to one SQLite database file. Not thread-safe (see Store).
class SqliteStore final : public Store {
 public:
  // Opens or creates the database at `path` (a file name as SQLite takes
  // it, not a URI), migrating an older schema to the current one (in one
  // transaction). Errors: INVALID_ARGUMENT for options out of range,
  // SCHEMA_TOO_NEW when the file was written by a newer anomalyd (the file
  // is left untouched), CORRUPT when it is not an anomalyd database,
  // STORAGE_READ_ONLY when a writer cannot write the file (or a read-only
  // open finds an older schema that needs migrating first), IO_ERROR when
  // it cannot be opened or cannot be put in WAL mode (a network file
  // system). On success *store owns the connection; on error *store is
  // untouched.
  static Status Open(const StoreOptions& options, const SqliteOptions& sqlite_options,
                     const std::string& path, std::unique_ptr<Store>* store);

  ~SqliteStore() override;

  // The schema version this build writes (docs/storage.md, Migrations).
  static int CurrentSchemaVersion();

  Status InsertAnomalies(std::vector<AnomalyRow>* batch) override;
  Status QueryAnomalies(const AnomalyQuery& query, AnomalyPage* page) override;
  // SQLite's EXPLAIN QUERY PLAN of the page's SELECT, one step per line
  // (the detail column): "SEARCH anomalies USING INDEX ...".
  Status ExplainQuery(const AnomalyQuery& query, std::string* plan) override;
  Status CountByBucket(int64_t since_us, int64_t until_us, int64_t bucket_us, TimeField time_field,
                       std::vector<BucketCount>* out) override;
  Status Prune(const RetentionPolicy& policy, int64_t* deleted) override;

  Status RegisterModel(const ModelRow& model) override;
  Status ActivateModel(const std::string& stream, uint32_t version) override;
  Status ActiveModel(const std::string& stream, ModelRow* model) override;
  Status ListModels(const std::string& stream, std::vector<ModelRow>* models) override;
  Status ActiveModels(std::vector<ModelRow>* models) override;
  Status AllModels(std::vector<ModelRow>* models) override;
  Status NextModelVersion(const std::string& stream, uint32_t* version) override;
  // One BEGIN IMMEDIATE transaction; STORAGE_LOCKED after busy_timeout_ms.
  Status ReserveModelVersion(const std::string& stream, uint32_t* version) override;
  Status CompleteCandidate(const ModelRow& row) override;
  Status DeleteCandidate(const std::string& stream, uint32_t version) override;
  Status DeleteUnfinishedCandidates(int64_t* deleted) override;
  Status SetBundlePath(const std::string& stream, uint32_t version,
                       const std::string& path) override;
  Status AppendThreshold(ThresholdRow* threshold) override;
  Status LatestThreshold(const std::string& stream, ThresholdRow* threshold) override;
  Status ThresholdHistory(const std::string& stream, int64_t limit,
                          std::vector<ThresholdRow>* history) override;

  // With a few stat() calls and no SQL, CORRUPT, naming the file and what
  // happened, when:
  //  - the file was removed, or its path now names another file (another
  //    device or inode than at Open: renamed over, restored from a copy);
  //  - it is shorter than the largest size seen by Open and CheckFile
  //    (truncated; anomalyd never shrinks it: no VACUUM, no auto_vacuum; a
  //    file that comes with auto_vacuum on is not checked for this);
  //  - writers only: the -wal file was removed or replaced, or is shorter
  //    than this connection's last commit left it (truncated); the -shm
  //    file was removed or replaced.
  // IO_ERROR when stat() itself fails otherwise (e.g. EACCES). OK when
  // there is no file (in-memory). Read-only stores check the main file
  // only. About 2 us (read-only) to 6 us (writer).
  //
  // Not detected: damage that leaves size and identity alone (bytes
  // overwritten: see QuickCheck); a truncation that SQLite papers over
  // before the next call (a checkpoint that writes pages past the cut
  // again, a commit that appends frames past a cut WAL: the lost bytes come
  // back as zeros); a truncation of the main file to a size not below the
  // largest seen (the file grew in between). Another connection that
  // shrinks the files on purpose (VACUUM, wal_checkpoint(TRUNCATE) between
  // our commit and this call) is reported as a truncation: anomalyd runs
  // neither, and neither belongs on a live database.
  Status CheckFile() override;

  // Runs SQLite's PRAGMA quick_check over the whole file (every page of
  // every B-tree, without the index-content cross-checks of
  // integrity_check), after dropping this connection's cached pages so that
  // it reads what is on disk. OK when it says "ok"; CORRUPT with its first
  // findings (at most 5) otherwise, or when SQLite finds the file
  // malformed. 0.5 s for 1,000,000 anomalies (500 MB) in the OS page
  // cache, about 3 s from disk (docs/storage.md). The read snapshot it
  // holds that long keeps the WAL from starting over.
  Status QuickCheck() override;

  Status AddSamples(const std::string& stream, uint32_t dim, const float* rows, size_t n) override;
  Status LoadReservoir(const std::string& stream, Baseline* baseline) override;
  Status ClearReservoir(const std::string& stream) override;

  Status LoadAlertCheckpoint(AlertCheckpoint* checkpoint) override;
  Status AnomaliesAfter(int64_t after_id, int64_t limit, std::vector<AnomalyRow>* rows) override;
  Status SaveAlerts(const AlertCheckpoint& checkpoint,
                    std::vector<OutboxRow>* notifications) override;
  Status PendingOutbox(int64_t limit, std::vector<OutboxRow>* rows) override;
  Status SettleOutbox(const std::vector<int64_t>& delivered,
                      const std::vector<OutboxRow>& retried) override;
  Status CountOutbox(int64_t* pending, int64_t* dead) override;

 private:
  struct Rep;  // storage/sqlite_store_rep.h
  explicit SqliteStore(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_SQLITE_STORE_H_
