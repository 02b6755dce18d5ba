#include "daemon/writer_thread.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "daemon/convert.h"
#include "daemon/reply_encoder.h"

namespace anomalyd {

Writer::Writer(zmq::context_t& ctx, std::unique_ptr<Store> store, const WriterOptions& options)
    : ctx_(ctx), store_(std::move(store)), options_(options) {}

Writer::~Writer() { Stop(); }

void Writer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  room_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Writer::Submit(ScoredBatch batch) {
  {
    std::unique_lock<std::mutex> l(mu_);
    room_.wait(l, [&] {
      return stopping_ || pending_records_ == 0 ||
             pending_records_ + batch.records <= options_.max_pending_records;
    });
    pending_records_ += batch.records;
    unsettled_thresholds_ += batch.thresholds.size();
    batches_.push_back(std::move(batch));
  }
  cv_.notify_one();
}

bool Writer::HasRoom(uint64_t records) const {
  std::lock_guard<std::mutex> l(mu_);
  return pending_records_ == 0 || pending_records_ + records <= options_.max_pending_records;
}

void Writer::Post(Task task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

std::string Writer::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

void Writer::CheckFile(Store& store) {
  if (!damaged_.ok()) return;  // stays damaged until a restart
  Status s = store.CheckFile();
  if (s.ok()) return;
  damaged_ = s;
  SetHealth(s);
}

void Writer::SetHealth(const Status& s) {
  if (s.ok()) {
    if (!damaged_.ok()) return;  // a commit into a damaged file heals nothing
    if (!healthy_.exchange(true)) spdlog::info("storage recovered");
    return;
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    last_error_ = s.ToString();
  }
  if (healthy_.exchange(false)) spdlog::error("storage degraded: {}", s.ToString());
}

void Writer::Run() {
  Outbox outbox(ctx_);
  auto next_prune = std::chrono::steady_clock::now();
  const bool prune = options_.retention.max_age_us > 0 || options_.retention.max_rows > 0;
  for (;;) {
    std::vector<ScoredBatch> batches;
    std::deque<Task> tasks;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::seconds(1),
                   [&] { return stopping_ || !batches_.empty() || !tasks_.empty(); });
      for (auto& b : batches_) batches.push_back(std::move(b));
      batches_.clear();
      tasks.swap(tasks_);
      if (stopping_ && batches.empty() && tasks.empty()) break;
    }
    if (!batches.empty()) {
      Commit(batches, *store_, outbox);
      Release(batches);
    }
    for (Task& t : tasks) t(*store_, outbox);
    CheckFile(*store_);  // at least once a second, idle or not
    if (prune && std::chrono::steady_clock::now() >= next_prune) {
      int64_t deleted = 0;
      RetentionPolicy p = options_.retention;
      p.max_batches = 5;  // bounded work per pass; the rest next time
      Status s = store_->Prune(p, &deleted);
      if (!s.ok()) spdlog::warn("retention: {}", s.ToString());
      if (deleted > 0) spdlog::debug("retention pruned {} anomalies", deleted);
      next_prune =
          std::chrono::steady_clock::now() +
          std::chrono::milliseconds(static_cast<int64_t>(options_.retention_every_s * 1000));
    }
  }
}

void Writer::Release(const std::vector<ScoredBatch>& batches) {
  uint64_t records = 0;
  for (const ScoredBatch& b : batches) records += b.records;
  {
    std::lock_guard<std::mutex> l(mu_);
    pending_records_ -= records;
  }
  room_.notify_all();
}

void Writer::Track(const Status& s, const std::string& what) {
  if (s.code() == pb::INVALID_ARGUMENT) {
    spdlog::warn("{}: {}", what, s.ToString());
    return;
  }
  SetHealth(s);
  if (!s.ok()) spdlog::debug("{}: {}", what, s.ToString());
}

Status Writer::AddSamples(Store& store, const ScoredBatch::Samples& smp) {
  const size_t n = smp.values.size() / smp.dim;
  Status s = store.AddSamples(smp.stream, smp.dim, smp.values.data(), n);
  if (s.code() == pb::INVALID_ARGUMENT) {
    // The stream's dimension changed with a retrain: start afresh.
    s = store.ClearReservoir(smp.stream);
    if (s.ok()) s = store.AddSamples(smp.stream, smp.dim, smp.values.data(), n);
  }
  return s;
}

void Writer::Commit(std::vector<ScoredBatch>& batches, Store& store, Outbox& outbox) {
  // Recalibrated thresholds before any reply: a later batch of this group
  // was judged by them, and a threshold a client was told must survive a
  // crash. They are rare (one per thousands of scores).
  for (ScoredBatch& b : batches) {
    for (ThresholdRow& t : b.thresholds) {
      Track(store.AppendThreshold(&t), "threshold of '" + t.stream + "'");
    }
    unsettled_thresholds_ -= b.thresholds.size();
  }
  // One transaction for every anomaly waiting: group commit.
  std::vector<AnomalyRow> rows;
  for (ScoredBatch& b : batches) {
    for (AnomalyRow& r : b.anomalies) rows.push_back(std::move(r));
  }
  if (!rows.empty()) {
    // Into a file that is no longer the database (deleted, replaced,
    // truncated) a commit would "succeed" and be lost: not stored.
    Status s = damaged_.ok() ? store.InsertAnomalies(&rows) : damaged_;
    // A file deleted or cut just before this commit took it into nowhere.
    CheckFile(store);
    if (s.ok() && !damaged_.ok()) s = damaged_;
    Track(s, "storing " + std::to_string(rows.size()) + " anomalies");
    if (!s.ok()) unstored_ += rows.size();
    size_t k = 0;
    for (ScoredBatch& b : batches) {
      for (auto& [reply, index] : b.anomaly_results) {
        if (reply && s.ok()) {
          MarkStored(index, reply.get());
        }
        pb::Alert alert;
        alert.set_stream(rows[k].stream);
        ToProto(rows[k], alert.mutable_anomaly());
        outbox.Alert(rows[k].stream, alert.SerializeAsString());
        ++k;
      }
    }
  }
  for (ScoredBatch& b : batches) {
    for (auto& reply : b.completions) {
      if (reply->parts_left.fetch_sub(1) == 1) SendPending(outbox, *reply);
    }
  }
  // Samples after the replies: they are not on any client's critical path.
  for (ScoredBatch& b : batches) {
    for (const auto& smp : b.samples) {
      Track(AddSamples(store, smp), "reservoir of '" + smp.stream + "'");
    }
  }
}

}  // namespace anomalyd
