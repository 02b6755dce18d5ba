// Store: everything anomalyd must not forget, in one SQLite file: flagged
// anomalies, the model registry, the threshold history and a bounded
// reservoir of normal records per stream. Format: docs/storage.md.
//
// Every method returns a Status; errors carry a typed code: STORAGE_FULL
// (disk or max_db_bytes), STORAGE_READ_ONLY, STORAGE_LOCKED (another writer
// held the lock past busy_timeout_ms), SCHEMA_TOO_NEW, CORRUPT, IO_ERROR,
// INVALID_ARGUMENT (bad input; nothing written), NOT_FOUND,
// FAILED_PRECONDITION (a model in the wrong state). A failed write
// leaves the database as it was before the call. Nothing here aborts.
#ifndef ANOMALYD_STORAGE_STORE_H_
#define ANOMALYD_STORAGE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proto/status.h"
#include "storage/types.h"

namespace anomalyd {

// Source of "now" for the store (scored time and creation time defaults,
// retention ages). Tests inject a fixed clock. Implementations must be
// callable from the thread that uses the Store.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMicros() = 0;  // microseconds since the Unix epoch
};

// The wall clock. The returned object lives for the whole program.
Clock* SystemClock();

// How hard a commit tries to reach the disk (SQLite's PRAGMA synchronous).
enum class SyncLevel {
  kOff,     // no fsync at all: a machine crash can corrupt the file
  kNormal,  // WAL fsynced at checkpoints: a commit survives a process crash;
            // a power loss may roll back the last commits, never corrupts
  kFull,    // WAL fsynced at every commit: survives power loss too
};

struct StoreOptions {
  // Open the file read-only: no migration, no writes (each write returns
  // STORAGE_READ_ONLY). For readers such as query tools. Default: false.
  bool read_only = false;

  // Create the file when it does not exist (ignored when read_only).
  // Default: true.
  bool create_if_missing = true;

  // Default: kNormal (see SyncLevel; durable against process crashes).
  SyncLevel sync = SyncLevel::kNormal;

  // How long a write waits for another connection's lock before failing
  // with STORAGE_LOCKED. Default: 5,000 ms.
  int busy_timeout_ms = 5000;

  // Page cache of this connection, in KiB. Default: 16 MiB, enough to keep
  // the upper levels of the anomaly indexes of a few million rows hot.
  int cache_size_kib = 16 * 1024;

  // Upper bound of the database file; a write that would grow it further
  // fails with STORAGE_FULL and changes nothing. 0: no bound (the disk is
  // the bound). Default: 0.
  int64_t max_db_bytes = 0;

  // Rows kept per stream by the sample reservoir. Changing it between opens
  // keeps a valid sample, but uniformity holds only while it is constant.
  // Default: 10,000.
  int64_t reservoir_capacity = 10000;

  // Seed of the reservoir's random choices. The same seed and the same
  // records give the same reservoir, however they are batched. Default: 1.
  uint64_t reservoir_seed = 1;

  // Copy the WAL back into the database file (checkpoint) on a thread of
  // the store's own, with a second connection, instead of inside the
  // commit that crosses SQLite's threshold of 1,000 pages: a commit then
  // does not wait for the copy and its fsyncs. When commits outpace it, the
  // writer checkpoints after its commit once the WAL reaches 4,000 pages
  // (64 MiB), which bounds the WAL. Ignored when read_only. Default: true.
  bool background_checkpoint = true;

  // Source of "now". nullptr: SystemClock(). Not owned; must outlive the
  // Store. Default: nullptr.
  Clock* clock = nullptr;
};

// A connection to one anomalyd database. Not thread-safe: use each Store
// from one thread at a time. One writer Store per file; readers (other
// threads or processes) open their own Store, typically read_only, and see
// each write once it is committed (SQLite WAL: readers never block the
// writer and the writer never blocks readers).
class Store {
 public:
  // Opens or creates the database at `path`, migrating an older schema to
  // the current one (in one transaction). Errors: SCHEMA_TOO_NEW when the
  // file was written by a newer anomalyd (the file is left untouched),
  // CORRUPT when it is not an anomalyd database, STORAGE_READ_ONLY when a
  // writer cannot write the file, IO_ERROR when it cannot be opened. On
  // success *store owns the connection; on error *store is untouched.
  static Status Open(const StoreOptions& options, const std::string& path,
                     std::unique_ptr<Store>* store);

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // The schema version this build writes.
  static int CurrentSchemaVersion();

  // ---- Anomalies --------------------------------------------------------

  // Inserts all of *batch in one transaction and returns after the commit
  // (durable as StoreOptions::sync says). On success sets each row's id and
  // fills a zero scored_time_us with now. On error nothing is inserted and
  // *batch is unchanged. Rows with a NaN score, reconstruction, kl or
  // threshold are INVALID_ARGUMENT. An empty batch is a no-op.
  Status InsertAnomalies(std::vector<AnomalyRow>* batch);

  // One page of anomalies matching `query`: at most query.limit rows and,
  // when query.max_bytes is set, no more bytes than it (but at least one
  // row); next_cursor continues right after the last row. INVALID_ARGUMENT
  // for a limit outside 1..kMaxQueryLimit, a negative max_bytes, since >=
  // until, or a cursor that is malformed or was made for another order or
  // time field.
  Status QueryAnomalies(const AnomalyQuery& query, AnomalyPage* page);

  // SQLite's EXPLAIN QUERY PLAN of `query`, one step per line: shows which
  // index a query uses.
  Status ExplainQuery(const AnomalyQuery& query, std::string* plan);

  // Anomalies per stream per bucket of `bucket_us` (buckets are aligned to
  // multiples of bucket_us) with `time_field` in [since_us, until_us).
  // Ordered by stream, then bucket; buckets with no rows are left out.
  // INVALID_ARGUMENT when bucket_us <= 0 or since_us >= until_us.
  Status CountByBucket(int64_t since_us, int64_t until_us, int64_t bucket_us,
                       TimeField time_field, std::vector<BucketCount>* out);

  // Deletes anomalies beyond `policy`, oldest scored time first, in
  // transactions of policy.batch_rows rows. Sets *deleted (may be nullptr)
  // to the rows deleted, also on error (earlier transactions stay).
  Status Prune(const RetentionPolicy& policy, int64_t* deleted);

  // ---- Models and thresholds -------------------------------------------

  // Adds `model` to the registry; its status must be kCandidate (activate
  // with ActivateModel). INVALID_ARGUMENT when (stream, version) exists or
  // version is 0. A zero created_us is set to now.
  Status RegisterModel(const ModelRow& model);

  // Makes (stream, version) the active model and retires the one active
  // before, in one transaction. Re-activating a retired version is how a
  // rollback is done. NOT_FOUND when the version is not registered;
  // FAILED_PRECONDITION when it is a reservation not yet completed (see
  // ReserveModelVersion); nothing changes on error.
  Status ActivateModel(const std::string& stream, uint32_t version);

  // The active model of `stream`; NOT_FOUND when it has none.
  Status ActiveModel(const std::string& stream, ModelRow* model);

  // Every registered model of `stream`, newest version first.
  Status ListModels(const std::string& stream, std::vector<ModelRow>* models);

  // The active model of every stream that has one, ordered by stream.
  Status ActiveModels(std::vector<ModelRow>* models);

  // Every registered model of every stream (any status, reservations
  // included), ordered by stream, then version, newest first.
  Status AllModels(std::vector<ModelRow>* models);

  // 1 + the highest version registered for `stream` (1 when none). Only a
  // hint: a training takes its version with ReserveModelVersion.
  Status NextModelVersion(const std::string& stream, uint32_t* version);

  // A training's model version, from reservation to candidate:
  //
  //   uint32_t v;
  //   s = store->ReserveModelVersion("cpu", &v);  // before writing a bundle
  //   ... train; write the bundle of version v ...
  //   if (trained) {
  //     row.stream = "cpu"; row.version = v; row.bundle_path = dir; ...
  //     s = store->CompleteCandidate(row);
  //     s = store->ActivateModel("cpu", v);
  //   } else {
  //     s = store->DeleteCandidate("cpu", v);
  //   }
  //
  // At start-up, DeleteUnfinishedCandidates forgets the reservations of
  // trainings a crash interrupted.

  // Allocates and publishes the stream's next version in one IMMEDIATE
  // transaction: *version = 1 + the highest version registered for the
  // stream (1 when none), and a row (stream, *version, bundle_path '',
  // created_us now, baseline_rows 0, losses not recorded, candidate) is
  // inserted, so that two trainings of one stream, from this or another
  // connection, never get the same version. On error nothing is inserted
  // and *version is untouched (STORAGE_LOCKED when another writer held the
  // lock past busy_timeout_ms; INTERNAL when versions are exhausted). A
  // version whose row is deleted (DeleteCandidate) is the highest no more
  // and may be handed out again: clear its bundle directory first.
  Status ReserveModelVersion(const std::string& stream, uint32_t* version);

  // Records the training's result on the candidate (row.stream,
  // row.version): bundle_path, baseline_rows, train_loss, val_loss (NaN:
  // not recorded), and created_us unless it is 0 (the reservation's time
  // stays). row.status is ignored. NOT_FOUND when no such model is
  // registered, FAILED_PRECONDITION when it is active or retired,
  // INVALID_ARGUMENT when row.bundle_path is empty; nothing changes on
  // error.
  Status CompleteCandidate(const ModelRow& row);

  // Deletes the candidate (stream, version), completed or not, of a failed
  // or cancelled training, together with any thresholds appended for it,
  // in one transaction. OK when no such model is registered;
  // FAILED_PRECONDITION (and no change) when it is active or retired.
  Status DeleteCandidate(const std::string& stream, uint32_t version);

  // Deletes every candidate whose bundle_path is '' (the reservations of
  // trainings that never completed; a model registered with an empty
  // bundle_path counts as one), with their thresholds, in one transaction.
  // Sets *deleted (may be nullptr) to the models deleted; 0 on error, when
  // nothing is deleted. Meant for start-up, before any training starts.
  Status DeleteUnfinishedCandidates(int64_t* deleted);

  // Sets the bundle path of (stream, version), whatever its status (e.g. to
  // make absolute paths relative to a state directory). NOT_FOUND when the
  // model is not registered, INVALID_ARGUMENT when `path` is empty (it
  // would turn a candidate into an unfinished reservation).
  Status SetBundlePath(const std::string& stream, uint32_t version,
                       const std::string& path);

  // Appends a threshold to the stream's history and sets threshold->id (and
  // a zero time_us to now). INVALID_ARGUMENT when the model version is not
  // registered for the stream or the value is NaN.
  Status AppendThreshold(ThresholdRow* threshold);

  // The stream's most recent threshold (by time, then id); NOT_FOUND when
  // it has none.
  Status LatestThreshold(const std::string& stream, ThresholdRow* threshold);

  // Up to `limit` (1..kMaxQueryLimit) thresholds of the stream, newest
  // first.
  Status ThresholdHistory(const std::string& stream, int64_t limit,
                          std::vector<ThresholdRow>* history);

  // ---- Health ----------------------------------------------------------

  // Notices damage done to the database from outside while it is open,
  // with a few stat() calls and no SQL: cheap enough to call after every
  // commit. CORRUPT, with a message that names the file and says what
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
  Status CheckFile();

  // Runs SQLite's PRAGMA quick_check over the whole file (every page of
  // every B-tree, without the index-content cross-checks of
  // integrity_check), after dropping this connection's cached pages so that
  // it reads what is on disk. OK when it says "ok"; CORRUPT with its first
  // findings (at most 5) otherwise, or when SQLite finds the file
  // malformed. Linear in the file: 0.5 s for 1,000,000 anomalies (500 MB)
  // in the OS page cache, about 3 s from disk (docs/storage.md). It holds a
  // read snapshot that long (the WAL cannot start over meanwhile): run it
  // on a read-only Store of its own, on a thread other than the writer's.
  Status QuickCheck();

  // ---- Sample reservoir --------------------------------------------------

  // Offers `n` records of `dim` floats (row-major at `rows`) to the stream's
  // reservoir, in one transaction: Algorithm R keeps a uniform sample of at
  // most reservoir_capacity of all records ever offered. INVALID_ARGUMENT
  // when dim is 0, differs from the dim the stream's reservoir already has
  // (call ClearReservoir first), or a value is not finite.
  // REQUIRES: rows points at n * dim floats (may be nullptr when n == 0).
  Status AddSamples(const std::string& stream, uint32_t dim, const float* rows,
                    size_t n);

  // The stream's reservoir; NOT_FOUND when it has none.
  Status LoadReservoir(const std::string& stream, Baseline* baseline);

  // Forgets the stream's reservoir (for a new dimension, or to start a
  // fresh baseline after a drift). OK when it had none.
  Status ClearReservoir(const std::string& stream);

 private:
  struct Rep;
  explicit Store(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_STORE_H_
