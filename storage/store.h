// Store: everything anomalyd must not forget: flagged anomalies, the model
// registry, the threshold history and a bounded reservoir of normal records
// per stream. This is the contract every backend keeps; the backends are
// SqliteStore (storage/sqlite_store.h, the format in docs/storage.md) and
// whatever storage/open.h adds later. Callers open a store from a URL:
//
//   StoreSpec spec;
//   spec.url = "sqlite:///var/lib/anomalyd/anomalyd.db";
//   std::unique_ptr<Store> store;
//   Status s = OpenStore(spec, &store);           // storage/open.h
//   if (s.ok()) s = store->InsertAnomalies(&rows);
//
// Every method returns a Status; errors carry a typed code: STORAGE_FULL
// (no room: the disk, a quota or a configured size bound),
// STORAGE_READ_ONLY, STORAGE_LOCKED (a lock held by another writer did not
// come free within the backend's lock timeout), SCHEMA_TOO_NEW, CORRUPT,
// IO_ERROR (the storage cannot be reached or read), INVALID_ARGUMENT (bad
// input; nothing written), NOT_FOUND, FAILED_PRECONDITION (a model in the
// wrong state). A failed write leaves the store as it was before the call,
// and the Store stays usable (the next write may succeed). Nothing here
// aborts or throws.
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

// Settings every backend takes. A backend's own settings (SQLite's pragmas,
// a server's timeouts) are in its header: SqliteOptions in
// storage/sqlite_store.h.
struct StoreOptions {
  // Open for reading only: no migration, no writes (each write returns
  // STORAGE_READ_ONLY). For readers such as query tools. Default: false.
  bool read_only = false;

  // Create the database when it does not exist (ignored when read_only).
  // Default: true.
  bool create_if_missing = true;

  // Rows kept per stream by the sample reservoir. Changing it between opens
  // keeps a valid sample, but uniformity holds only while it is constant.
  // INVALID_ARGUMENT at open outside 1..100,000,000. Default: 10,000.
  int64_t reservoir_capacity = 10000;

  // Seed of the reservoir's random choices. The same seed and the same
  // records give the same reservoir, however they are batched. Default: 1.
  uint64_t reservoir_seed = 1;

  // Source of "now". nullptr: SystemClock(). Not owned; must outlive the
  // Store. Default: nullptr.
  Clock* clock = nullptr;
};

// Checks the fields of `options` every backend shares: INVALID_ARGUMENT
// naming the field. Backends call it in their Open.
Status CheckStoreOptions(const StoreOptions& options);

// A connection to one anomalyd database. Not thread-safe: use each Store
// from one thread at a time. One writer Store per database; readers (other
// threads or processes) open their own Store, typically read_only, and see
// each write once it is committed, without blocking the writer.
//
// Open a Store with OpenStore (storage/open.h), or with a backend's own
// Open (SqliteStore::Open) when the backend is known.
class Store {
 public:
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Closes the connection; what was committed stays.
  virtual ~Store() = default;

  // ---- Anomalies --------------------------------------------------------

  // Inserts all of *batch in one transaction and returns after the commit
  // (as durable as the backend's settings say; see SqliteOptions::sync). On
  // success sets each row's id (see AnomalyRow::id) and fills a zero
  // scored_time_us with now. On error nothing is inserted
  // and *batch is unchanged. Rows with a NaN score, reconstruction, kl or
  // threshold are INVALID_ARGUMENT. An empty batch is a no-op.
  virtual Status InsertAnomalies(std::vector<AnomalyRow>* batch) = 0;

  // One page of anomalies matching `query`: at most query.limit rows and,
  // when query.max_bytes is set, no more bytes than it (but at least one
  // row); next_cursor continues right after the last row. INVALID_ARGUMENT
  // for a limit outside 1..kMaxQueryLimit, a negative max_bytes, since >=
  // until, or a cursor that is malformed or was made for another order or
  // time field.
  virtual Status QueryAnomalies(const AnomalyQuery& query, AnomalyPage* page) = 0;

  // How the backend would run `query`, as text, one step per line (for
  // SQLite, its EXPLAIN QUERY PLAN): shows which index a query uses. For
  // operators and tests; the text is backend-specific and not stable.
  // INVALID_ARGUMENT as QueryAnomalies.
  virtual Status ExplainQuery(const AnomalyQuery& query, std::string* plan) = 0;

  // Anomalies per stream per bucket of `bucket_us` (buckets are aligned to
  // multiples of bucket_us) with `time_field` in [since_us, until_us).
  // Ordered by stream, then bucket; buckets with no rows are left out.
  // INVALID_ARGUMENT when bucket_us <= 0 or since_us >= until_us.
  virtual Status CountByBucket(int64_t since_us, int64_t until_us, int64_t bucket_us,
                               TimeField time_field, std::vector<BucketCount>* out) = 0;

  // Deletes anomalies beyond `policy`, oldest scored time first (then
  // lowest id), in transactions of policy.batch_rows rows. Sets *deleted
  // (may be nullptr) to the rows deleted, also on error (earlier
  // transactions stay). INVALID_ARGUMENT when batch_rows is outside
  // 1..1,000,000 or a bound is negative.
  virtual Status Prune(const RetentionPolicy& policy, int64_t* deleted) = 0;

  // ---- Models and thresholds -------------------------------------------

  // Adds `model` to the registry; its status must be kCandidate (activate
  // with ActivateModel). INVALID_ARGUMENT when (stream, version) exists or
  // version is 0. A zero created_us is set to now.
  virtual Status RegisterModel(const ModelRow& model) = 0;

  // Makes (stream, version) the active model and retires the one active
  // before, in one transaction. Re-activating a retired version is how a
  // rollback is done. NOT_FOUND when the version is not registered;
  // FAILED_PRECONDITION when it is a reservation not yet completed (see
  // ReserveModelVersion); nothing changes on error.
  virtual Status ActivateModel(const std::string& stream, uint32_t version) = 0;

  // The active model of `stream`; NOT_FOUND when it has none.
  virtual Status ActiveModel(const std::string& stream, ModelRow* model) = 0;

  // Every registered model of `stream`, newest version first.
  virtual Status ListModels(const std::string& stream, std::vector<ModelRow>* models) = 0;

  // The active model of every stream that has one, ordered by stream.
  virtual Status ActiveModels(std::vector<ModelRow>* models) = 0;

  // Every registered model of every stream (any status, reservations
  // included), ordered by stream, then version, newest first.
  virtual Status AllModels(std::vector<ModelRow>* models) = 0;

  // 1 + the highest version registered for `stream` (1 when none). Only a
  // hint: a training takes its version with ReserveModelVersion.
  virtual Status NextModelVersion(const std::string& stream, uint32_t* version) = 0;

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

  // Allocates and publishes the stream's next version in one transaction
  // that holds the write lock: *version = 1 + the highest version
  // registered for the stream (1 when none), and a row (stream, *version,
  // bundle_path '', created_us now, baseline_rows 0, losses not recorded,
  // candidate) is inserted, so that two trainings of one stream, from this
  // or another connection, never get the same version. On error nothing is
  // inserted and *version is untouched (STORAGE_LOCKED when another writer
  // held the lock too long; INTERNAL when versions are exhausted). A
  // version whose row is deleted (DeleteCandidate) is the highest no more
  // and may be handed out again: clear its bundle directory first.
  virtual Status ReserveModelVersion(const std::string& stream, uint32_t* version) = 0;

  // Records the training's result on the candidate (row.stream,
  // row.version): bundle_path, baseline_rows, train_loss, val_loss (NaN:
  // not recorded), and created_us unless it is 0 (the reservation's time
  // stays). row.status is ignored. NOT_FOUND when no such model is
  // registered, FAILED_PRECONDITION when it is active or retired,
  // INVALID_ARGUMENT when row.bundle_path is empty; nothing changes on
  // error.
  virtual Status CompleteCandidate(const ModelRow& row) = 0;

  // Deletes the candidate (stream, version), completed or not, of a failed
  // or cancelled training, together with any thresholds appended for it,
  // in one transaction. OK when no such model is registered;
  // FAILED_PRECONDITION (and no change) when it is active or retired.
  virtual Status DeleteCandidate(const std::string& stream, uint32_t version) = 0;

  // Deletes every candidate whose bundle_path is '' (the reservations of
  // trainings that never completed; a model registered with an empty
  // bundle_path counts as one), with their thresholds, in one transaction.
  // Sets *deleted (may be nullptr) to the models deleted; 0 on error, when
  // nothing is deleted. Meant for start-up, before any training starts.
  virtual Status DeleteUnfinishedCandidates(int64_t* deleted) = 0;

  // Sets the bundle path of (stream, version), whatever its status (e.g. to
  // make absolute paths relative to a state directory). NOT_FOUND when the
  // model is not registered, INVALID_ARGUMENT when `path` is empty (it
  // would turn a candidate into an unfinished reservation).
  virtual Status SetBundlePath(const std::string& stream, uint32_t version,
                               const std::string& path) = 0;

  // Appends a threshold to the stream's history and sets threshold->id (and
  // a zero time_us to now). INVALID_ARGUMENT when the model version is not
  // registered for the stream or the value is NaN.
  virtual Status AppendThreshold(ThresholdRow* threshold) = 0;

  // The stream's most recent threshold (by time, then id); NOT_FOUND when
  // it has none.
  virtual Status LatestThreshold(const std::string& stream, ThresholdRow* threshold) = 0;

  // Up to `limit` (1..kMaxQueryLimit) thresholds of the stream, newest
  // first.
  virtual Status ThresholdHistory(const std::string& stream, int64_t limit,
                                  std::vector<ThresholdRow>* history) = 0;

  // ---- Health ----------------------------------------------------------

  // Notices, cheaply, that the storage under this connection is no longer
  // the one opened or no longer whole, through damage done from outside
  // while it is open (for a file: removed, replaced, truncated). Cheap
  // enough to call after every commit (microseconds, no query). CORRUPT,
  // with a message that names the storage and says what happened, when it
  // finds such damage; IO_ERROR when it cannot look; OK otherwise, and
  // when the backend has nothing such to check. Once it has reported
  // damage, writes that "succeed" may be lost: the daemon stops counting
  // anomalies as stored until a restart. What a backend checks, and what it
  // cannot see, is in its header (SqliteStore::CheckFile).
  virtual Status CheckFile() = 0;

  // Reads the whole database looking for damage (for SQLite, PRAGMA
  // quick_check), bypassing this connection's caches so that it sees what
  // is stored now. OK when it finds none; CORRUPT with its first findings
  // otherwise. Linear in the size of the database (seconds for millions of
  // anomalies), and it may hold a read snapshot that long: run it on a
  // read-only Store of its own, on a thread other than the writer's. The
  // daemon runs it once at start-up.
  virtual Status QuickCheck() = 0;

  // ---- Sample reservoir --------------------------------------------------

  // Offers `n` records of `dim` floats (row-major at `rows`) to the stream's
  // reservoir, in one transaction: Algorithm R keeps a uniform sample of at
  // most reservoir_capacity of all records ever offered. INVALID_ARGUMENT
  // when dim is 0, differs from the dim the stream's reservoir already has
  // (call ClearReservoir first), or a value is not finite.
  // REQUIRES: rows points at n * dim floats (may be nullptr when n == 0).
  virtual Status AddSamples(const std::string& stream, uint32_t dim, const float* rows,
                            size_t n) = 0;

  // The stream's reservoir; NOT_FOUND when it has none.
  virtual Status LoadReservoir(const std::string& stream, Baseline* baseline) = 0;

  // Forgets the stream's reservoir (for a new dimension, or to start a
  // fresh baseline after a drift). OK when it had none.
  virtual Status ClearReservoir(const std::string& stream) = 0;

  // ---- Alert delivery ----------------------------------------------------
  //
  // The anomalies table is the durable source of alerts: an anomaly is
  // committed with an id above the alert cursor, so none can be committed
  // without being shaped into alerts later, after any crash. The alert
  // sender keeps its cursor and shaping state here, and the notifications
  // it has still to deliver (the outbox):
  //
  //   AlertCheckpoint cp;
  //   s = store->LoadAlertCheckpoint(&cp);
  //   s = store->AnomaliesAfter(cp.cursor, 1000, &rows);
  //   ... shape rows; cp.cursor = rows.back().id; cp.state = ...;
  //   s = store->SaveAlerts(cp, &notifications);    // one transaction
  //   s = store->PendingOutbox(100, &due);
  //   ... deliver; then
  //   s = store->SettleOutbox(delivered_ids, retried_rows);

  // The saved checkpoint; cursor 0 and an empty state when none was saved.
  virtual Status LoadAlertCheckpoint(AlertCheckpoint* checkpoint) = 0;

  // Up to `limit` (1..kMaxQueryLimit) anomalies with id > after_id, by id,
  // into *rows (replaced). INVALID_ARGUMENT for a limit out of range.
  virtual Status AnomaliesAfter(int64_t after_id, int64_t limit, std::vector<AnomalyRow>* rows) = 0;

  // In one transaction: saves `checkpoint` and appends *notifications to
  // the outbox, setting their ids (increasing, never reused) and a zero
  // created_us to now. On error nothing is written and the ids are
  // untouched.
  virtual Status SaveAlerts(const AlertCheckpoint& checkpoint,
                            std::vector<OutboxRow>* notifications) = 0;

  // Up to `limit` (1..kMaxQueryLimit) outbox rows that are not dead, by id,
  // into *rows (replaced).
  virtual Status PendingOutbox(int64_t limit, std::vector<OutboxRow>* rows) = 0;

  // In one transaction: deletes the rows whose ids are in `delivered`, and
  // stores attempts, next_attempt_us, dead and last_error of each row in
  // `retried` (by id; other fields are ignored). Ids no longer in the
  // outbox are skipped.
  virtual Status SettleOutbox(const std::vector<int64_t>& delivered,
                              const std::vector<OutboxRow>& retried) = 0;

  // Rows of the outbox waiting for delivery, and dead letters.
  virtual Status CountOutbox(int64_t* pending, int64_t* dead) = 0;
};

}  // namespace anomalyd

#endif  // ANOMALYD_STORAGE_STORE_H_
