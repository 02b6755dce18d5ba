// SqliteStore: operators' queries over anomalies (pages, EXPLAIN, bucket
// counts).
#include <cmath>
#include <limits>
#include <map>
#include <string_view>

#include "storage/codec.h"
#include "storage/sqlite_store.h"
#include "storage/sqlite_store_rep.h"

namespace anomalyd {
namespace {

const char* TimeColumn(TimeField f) {
  return f == TimeField::kEvent ? "event_time_us" : "scored_time_us";
}

// The SELECT of one page. Filters become named parameters; the keyset
// condition is a row-value comparison on (order key, id), which SQLite
// turns into a range on the matching index (see docs/storage.md). When the
// cursor already bounds the time from above, `until` is left out so that
// SQLite starts the range scan at the cursor, not at `until`: a page then
// costs the same however deep it is.
std::string PageSql(const AnomalyQuery& q, const codec::Cursor* cursor) {
  const bool has_cursor = cursor != nullptr;
  const bool asc = q.order == AnomalyOrder::kTimeAsc;
  const bool cursor_bounds_until = has_cursor && q.order == AnomalyOrder::kTimeDesc && q.until_us &&
                                   cursor->time_us < *q.until_us;
  // Oldest first, the same from below: the cursor replaces `since`.
  const bool cursor_bounds_since =
      has_cursor && asc && q.since_us && cursor->time_us >= *q.since_us;
  const std::string t = TimeColumn(q.time_field);
  const bool by_score = q.order == AnomalyOrder::kScoreDesc;
  const std::string key = by_score ? "score" : t;
  const std::string columns = std::string("SELECT ") + kAnomalyColumns + " FROM anomalies WHERE ";
  // Score order has no index of its own: the ids of the page are chosen
  // from a time index, which holds score and stream (a covering scan plus a
  // top-N sort, no table reads), and only those rows are then read.
  std::string sql = by_score ? "SELECT id FROM anomalies WHERE 1" : columns + "1";
  if (q.since_us && !cursor_bounds_since) sql += " AND " + t + " >= :since";
  if (q.until_us && !cursor_bounds_until) sql += " AND " + t + " < :until";
  if (q.stream) sql += " AND stream = :stream";
  if (q.min_score) sql += " AND score >= :min_score";
  if (q.model_version) sql += " AND model_version = :model_version";
  if (has_cursor) {
    sql += " AND (" + key + ", id) " + (asc ? ">" : "<") + " (:after_key, :after_id)";
  }
  const std::string order =
      asc ? " ORDER BY " + key + " ASC, id ASC" : " ORDER BY " + key + " DESC, id DESC";
  sql += order + " LIMIT :limit";
  if (by_score) sql = columns + "id IN (" + sql + ")" + order;
  return sql;
}

Status CheckQuery(const AnomalyQuery& q, codec::Cursor* cursor) {
  if (q.limit < 1 || q.limit > kMaxQueryLimit) {
    return Status::InvalidArgument("limit " + std::to_string(q.limit) + " is outside 1.." +
                                   std::to_string(kMaxQueryLimit));
  }
  if (q.since_us && q.until_us && *q.since_us >= *q.until_us) {
    return Status::InvalidArgument("since must be before until");
  }
  if (q.min_score && std::isnan(*q.min_score)) {
    return Status::InvalidArgument("min_score is NaN");
  }
  if (q.max_bytes < 0) {
    return Status::InvalidArgument("max_bytes must be >= 0");
  }
  if (q.cursor.empty()) return Status::OK();
  ANOMALYD_RETURN_IF_ERROR(codec::DecodeCursor(q.cursor, cursor));
  if (cursor->order != q.order ||
      (q.order != AnomalyOrder::kScoreDesc && cursor->time_field != q.time_field)) {
    return Status::InvalidArgument("cursor was made for a query with another order or time field");
  }
  return Status::OK();
}

void BindQuery(const AnomalyQuery& q, const codec::Cursor* cursor, sqlite::Statement* s) {
  if (q.since_us && s->ParamIndex(":since") > 0) {
    s->BindInt64(s->ParamIndex(":since"), *q.since_us);
  }
  if (q.until_us && s->ParamIndex(":until") > 0) {
    s->BindInt64(s->ParamIndex(":until"), *q.until_us);
  }
  if (q.stream) s->BindText(s->ParamIndex(":stream"), *q.stream);
  if (q.min_score) s->BindDouble(s->ParamIndex(":min_score"), *q.min_score);
  if (q.model_version) {
    s->BindInt64(s->ParamIndex(":model_version"), *q.model_version);
  }
  if (cursor != nullptr) {
    if (q.order == AnomalyOrder::kScoreDesc) {
      s->BindDouble(s->ParamIndex(":after_key"), cursor->score);
    } else {
      s->BindInt64(s->ParamIndex(":after_key"), cursor->time_us);
    }
    s->BindInt64(s->ParamIndex(":after_id"), cursor->id);
  }
  // One row more than asked tells whether another page follows.
  s->BindInt64(s->ParamIndex(":limit"), q.limit + 1);
}

// The row's size on the wire, as AnomalyQuery::max_bytes counts it.
int64_t WireBytes(const AnomalyRow& a) {
  // Fixed fields (id, times, score, losses, threshold, version) plus the
  // encoding's tags and lengths: a generous round figure.
  constexpr int64_t kFixedBytes = 64;
  int64_t n = kFixedBytes + static_cast<int64_t>(a.record_id.size()) +
              static_cast<int64_t>(a.stream.size()) +
              4 * static_cast<int64_t>(a.features.size() + a.contributions.size());
  for (const auto& [key, value] : a.labels) {
    n += static_cast<int64_t>(key.size() + value.size());
  }
  return n;
}

// The cursor of the page that follows `last`.
std::string CursorAfter(const AnomalyQuery& q, const AnomalyRow& last) {
  codec::Cursor next;
  next.order = q.order;
  next.time_field = q.time_field;
  next.time_us = q.time_field == TimeField::kEvent ? last.event_time_us : last.scored_time_us;
  next.score = last.score;
  next.id = last.id;
  return codec::EncodeCursor(next);
}

}  // namespace

Status ReadAnomalyRow(const sqlite::Statement& s, AnomalyRow* a) {
  a->id = s.ColumnInt64(0);
  a->record_id = s.ColumnText(1);
  a->stream = s.ColumnText(2);
  a->event_time_us = s.ColumnInt64(3);
  a->scored_time_us = s.ColumnInt64(4);
  a->score = s.ColumnDouble(5);
  a->reconstruction = static_cast<float>(s.ColumnDouble(6));
  a->kl = static_cast<float>(s.ColumnDouble(7));
  a->threshold = static_cast<float>(s.ColumnDouble(8));
  a->model_version = static_cast<uint32_t>(s.ColumnInt64(9));
  const std::string ctx = "anomaly " + std::to_string(a->id);
  ANOMALYD_RETURN_IF_ERROR(codec::DecodeFloats(s.ColumnBlob(10), &a->features).WithContext(ctx));
  ANOMALYD_RETURN_IF_ERROR(
      codec::DecodeFloats(s.ColumnBlob(11), &a->contributions).WithContext(ctx));
  return codec::DecodeLabels(s.ColumnBlob(12), &a->labels).WithContext(ctx);
}

Status SqliteStore::QueryAnomalies(const AnomalyQuery& q, AnomalyPage* page) {
  codec::Cursor cursor;
  ANOMALYD_RETURN_IF_ERROR(CheckQuery(q, &cursor));
  const bool has_cursor = !q.cursor.empty();
  const std::string sql = PageSql(q, has_cursor ? &cursor : nullptr);
  sqlite::Statement& s = rep_->queries[sql];
  if (!s.is_prepared()) {
    Status st = s.Prepare(rep_->db, sql);
    if (!st.ok()) {
      rep_->queries.erase(sql);
      return st;
    }
  }
  sqlite::ResetOnExit reset(&s);
  BindQuery(q, has_cursor ? &cursor : nullptr, &s);

  page->rows.clear();
  page->next_cursor.clear();
  const std::string what = "querying anomalies";
  int64_t bytes = 0;
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, what));
    if (!row) break;
    // The statement returns limit + 1 rows: one more means another page.
    if (static_cast<int64_t>(page->rows.size()) == q.limit) {
      page->next_cursor = CursorAfter(q, page->rows.back());
      break;
    }
    page->rows.emplace_back();
    ANOMALYD_RETURN_IF_ERROR(ReadAnomalyRow(s, &page->rows.back()));
    bytes += WireBytes(page->rows.back());
    if (q.max_bytes > 0 && bytes > q.max_bytes && page->rows.size() > 1) {
      // This row is the first of the next page.
      page->rows.pop_back();
      page->next_cursor = CursorAfter(q, page->rows.back());
      break;
    }
  }
  return Status::OK();
}

Status SqliteStore::ExplainQuery(const AnomalyQuery& q, std::string* plan) {
  codec::Cursor cursor;
  ANOMALYD_RETURN_IF_ERROR(CheckQuery(q, &cursor));
  const std::string sql = "EXPLAIN QUERY PLAN " + PageSql(q, q.cursor.empty() ? nullptr : &cursor);
  sqlite::Statement s;
  ANOMALYD_RETURN_IF_ERROR(s.Prepare(rep_->db, sql));
  sqlite::ResetOnExit reset(&s);
  plan->clear();
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "explaining a query"));
    if (!row) break;
    *plan += s.ColumnText(3) + "\n";
  }
  return Status::OK();
}

Status SqliteStore::CountByBucket(int64_t since_us, int64_t until_us, int64_t bucket_us,
                                  TimeField time_field, std::vector<BucketCount>* out) {
  if (bucket_us <= 0) return Status::InvalidArgument("bucket_us must be > 0");
  if (since_us >= until_us) {
    return Status::InvalidArgument("since must be before until");
  }
  // Counted here rather than with GROUP BY: SQLite would sort every row of
  // the range by (stream, bucket), while this reads the covering time index
  // in time order, so each stream's buckets arrive already ordered.
  const std::string t = TimeColumn(time_field);
  const std::string sql = "SELECT stream, " + t + " FROM anomalies WHERE " + t + " >= :since AND " +
                          t + " < :until ORDER BY " + t;
  sqlite::Statement& s = rep_->queries[sql];
  if (!s.is_prepared()) ANOMALYD_RETURN_IF_ERROR(s.Prepare(rep_->db, sql));
  sqlite::ResetOnExit reset(&s);
  s.BindInt64(s.ParamIndex(":since"), since_us);
  s.BindInt64(s.ParamIndex(":until"), until_us);
  std::map<std::string, std::vector<BucketCount>, std::less<>> by_stream;
  std::string_view last_stream;
  std::vector<BucketCount>* counts = nullptr;
  bool row = false;
  for (;;) {
    ANOMALYD_RETURN_IF_ERROR(s.Step(&row, "counting anomalies per bucket"));
    if (!row) break;
    const std::string_view stream = s.ColumnBlob(0);
    if (counts == nullptr || stream != last_stream) {
      auto it = by_stream.find(stream);
      if (it == by_stream.end()) {
        it = by_stream.emplace(std::string(stream), std::vector<BucketCount>()).first;
      }
      counts = &it->second;
      last_stream = it->first;  // stable: map nodes do not move
    }
    // Floor to a multiple of the bucket, also for times before 1970.
    const int64_t time = s.ColumnInt64(1);
    const int64_t rem = time % bucket_us;
    int64_t bucket = 0;
    if (__builtin_sub_overflow(time, rem < 0 ? rem + bucket_us : rem, &bucket)) {
      bucket = std::numeric_limits<int64_t>::min();  // times near INT64_MIN
    }
    if (counts->empty() || counts->back().bucket_start_us != bucket) {
      counts->push_back(
          {last_stream.empty() ? std::string() : std::string(last_stream), bucket, 0});
    }
    ++counts->back().count;
  }
  out->clear();
  for (auto& [stream, counts_of] : by_stream) {
    for (BucketCount& c : counts_of) out->push_back(std::move(c));
  }
  return Status::OK();
}

}  // namespace anomalyd
