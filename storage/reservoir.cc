// SqliteStore: the per-stream reservoir of normal records (Algorithm R).
//
// The random choice for the m-th record ever offered to a stream (m from 0)
// is a pure function of (seed, stream, m): no generator state needs to be
// persisted beside the seen-count, and the reservoir does not depend on how
// records were split into batches or across restarts.
#include <cmath>
#include <map>

#include "storage/codec.h"
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a: stable across builds and platforms, unlike std::hash.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// Uniform in [0, m] for the m-th record (Lemire's multiply-shift; its bias
// is below m / 2^64).
uint64_t Draw(uint64_t stream_key, uint64_t m) {
  const uint64_t r = SplitMix64(stream_key ^ SplitMix64(m));
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * (m + 1)) >>
                               64);
}

}  // namespace

Status SqliteStore::AddSamples(const std::string& stream, uint32_t dim,
                               const float* rows, size_t n) {
  if (dim == 0) return Status::InvalidArgument("sample dimension 0");
  if (n == 0) return Status::OK();
  for (size_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(rows[i])) {
      return Status::InvalidArgument("sample " + std::to_string(i / dim) +
                                     " has a value that is not finite");
    }
  }
  Rep& r = *rep_;
  const std::string what = "adding " + std::to_string(n) +
                           " samples to the reservoir of stream '" + stream +
                           "'";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.reservoir_get, "SELECT dim, seen FROM reservoirs WHERE stream = ?1"));
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.reservoir_add,
      "INSERT INTO reservoirs (stream, dim, seen) VALUES (?1, ?2, 0)"));
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.reservoir_seen, "UPDATE reservoirs SET seen = ?2 WHERE stream = ?1"));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.sample_put,
                 "INSERT OR REPLACE INTO samples (stream, slot, vals) "
                 "VALUES (?1, ?2, ?3)"));
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.sample_trim, "DELETE FROM samples WHERE stream = ?1 AND slot >= ?2"));

  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kImmediate, what));
  uint64_t seen = 0;
  {
    sqlite::Statement& s = r.reservoir_get;
    sqlite::ResetOnExit reset(&s);
    s.BindText(1, stream);
    bool row = false;
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (row) {
      if (s.ColumnInt64(0) != dim) {
        return Status::InvalidArgument(
            what + ": the reservoir holds records of dimension " +
            std::to_string(s.ColumnInt64(0)) + ", not " + std::to_string(dim) +
            " (ClearReservoir first)");
      }
      seen = static_cast<uint64_t>(s.ColumnInt64(1));
    }
    if (!row) {
      r.reservoir_add.BindText(1, stream);
      r.reservoir_add.BindInt64(2, dim);
      ANOMALYD_RETURN_IF_ERROR(r.reservoir_add.Run(what));
    }
  }

  // Algorithm R. Only the last record chosen for a slot in this batch is
  // written; slots are written in order for locality.
  const uint64_t k = static_cast<uint64_t>(r.options.reservoir_capacity);
  const uint64_t key = SplitMix64(r.options.reservoir_seed) ^ Fnv1a(stream);
  std::map<uint64_t, size_t> chosen;  // slot -> row in `rows`
  for (size_t i = 0; i < n; ++i) {
    const uint64_t m = seen + i;
    const uint64_t slot = m < k ? m : Draw(key, m);
    if (slot < k) chosen[slot] = i;
  }
  sqlite::Statement& put = r.sample_put;
  for (const auto& [slot, i] : chosen) {
    put.BindText(1, stream);
    put.BindInt64(2, static_cast<int64_t>(slot));
    put.BindBlob(3, rows + i * dim, size_t{dim} * sizeof(float));
    ANOMALYD_RETURN_IF_ERROR(put.Run(what));
  }
  // A capacity lowered since the last open: drop the slots beyond it.
  r.sample_trim.BindText(1, stream);
  r.sample_trim.BindInt64(2, static_cast<int64_t>(k));
  ANOMALYD_RETURN_IF_ERROR(r.sample_trim.Run(what));
  r.reservoir_seen.BindText(1, stream);
  r.reservoir_seen.BindInt64(2, static_cast<int64_t>(seen + n));
  ANOMALYD_RETURN_IF_ERROR(r.reservoir_seen.Run(what));
  return txn.Commit(what);
}

Status SqliteStore::LoadReservoir(const std::string& stream,
                                  Baseline* baseline) {
  Rep& r = *rep_;
  const std::string what = "loading the reservoir of stream '" + stream + "'";
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.reservoir_get, "SELECT dim, seen FROM reservoirs WHERE stream = ?1"));
  ANOMALYD_RETURN_IF_ERROR(
      r.Prepared(&r.samples_get,
                 "SELECT vals FROM samples WHERE stream = ?1 AND slot < ?2 "
                 "ORDER BY slot"));
  // One read transaction, so the seen-count and the rows agree.
  sqlite::Transaction txn(&r.db);
  ANOMALYD_RETURN_IF_ERROR(
      txn.Begin(sqlite::Transaction::Mode::kDeferred, what));
  Baseline out;
  {
    sqlite::Statement& s = r.reservoir_get;
    sqlite::ResetOnExit reset(&s);
    s.BindText(1, stream);
    bool row = false;
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (!row) {
      return Status::NotFound("stream '" + stream + "' has no reservoir");
    }
    out.dim = static_cast<uint32_t>(s.ColumnInt64(0));
    out.seen = static_cast<uint64_t>(s.ColumnInt64(1));
  }
  sqlite::Statement& s = r.samples_get;
  sqlite::ResetOnExit reset(&s);
  s.BindText(1, stream);
  s.BindInt64(2, r.options.reservoir_capacity);
  const size_t row_bytes = size_t{out.dim} * sizeof(float);
  std::vector<float> row_values;
  for (;;) {
    bool row = false;
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (!row) break;
    std::string_view blob = s.ColumnBlob(0);
    if (blob.size() != row_bytes) {
      return Status::Corrupt(what + ": a sample of " +
                             std::to_string(blob.size()) + " bytes, not " +
                             std::to_string(row_bytes));
    }
    ANOMALYD_RETURN_IF_ERROR(codec::DecodeFloats(blob, &row_values));
    out.values.insert(out.values.end(), row_values.begin(), row_values.end());
  }
  s.Reset();
  ANOMALYD_RETURN_IF_ERROR(txn.Commit(what));
  *baseline = std::move(out);
  return Status::OK();
}

Status SqliteStore::ClearReservoir(const std::string& stream) {
  Rep& r = *rep_;
  ANOMALYD_RETURN_IF_ERROR(r.Prepared(
      &r.reservoir_clear, "DELETE FROM reservoirs WHERE stream = ?1"));
  r.reservoir_clear.BindText(1, stream);
  // ON DELETE CASCADE removes the stream's samples in the same statement.
  return r.reservoir_clear.Run("clearing the reservoir of stream '" + stream +
                               "'");
}

}  // namespace anomalyd
