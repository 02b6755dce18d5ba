#include "daemon/writer.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "daemon/convert.h"

namespace anomalyd {

Writer::Writer(zmq::context_t& ctx, std::unique_ptr<Store> store,
               const WriterOptions& options)
    : ctx_(ctx), store_(std::move(store)), options_(options) {}

Writer::~Writer() { Stop(); }

void Writer::Start() { thread_ = std::thread([this] { Run(); }); }

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Writer::Submit(ScoredBatch batch) {
  {
    std::lock_guard<std::mutex> l(mu_);
    batches_.push_back(std::move(batch));
  }
  cv_.notify_one();
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

uint64_t Writer::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return batches_.size() + tasks_.size();
}

void Writer::SetHealth(const Status& s) {
  if (s.ok()) {
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
      cv_.wait_for(l, std::chrono::seconds(1), [&] {
        return stopping_ || !batches_.empty() || !tasks_.empty();
      });
      for (auto& b : batches_) batches.push_back(std::move(b));
      batches_.clear();
      tasks.swap(tasks_);
      if (stopping_ && batches.empty() && tasks.empty()) break;
    }
    if (!batches.empty()) Commit(batches, *store_, outbox);
    for (Task& t : tasks) t(*store_, outbox);
    if (prune && std::chrono::steady_clock::now() >= next_prune) {
      int64_t deleted = 0;
      RetentionPolicy p = options_.retention;
      p.max_batches = 5;  // bounded work per pass; the rest next time
      Status s = store_->Prune(p, &deleted);
      if (!s.ok()) spdlog::warn("retention: {}", s.ToString());
      if (deleted > 0) spdlog::debug("retention pruned {} anomalies", deleted);
      next_prune = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(options_.retention_every_s * 1000));
    }
  }
}

void Writer::Commit(std::vector<ScoredBatch>& batches, Store& store,
                    Outbox& outbox) {
  // One transaction for every anomaly waiting: group commit.
  std::vector<AnomalyRow> rows;
  for (ScoredBatch& b : batches) {
    for (AnomalyRow& r : b.anomalies) rows.push_back(std::move(r));
  }
  if (!rows.empty()) {
    Status s = store.InsertAnomalies(&rows);
    SetHealth(s);
    size_t k = 0;
    for (ScoredBatch& b : batches) {
      for (auto& [reply, index] : b.anomaly_results) {
        if (reply && s.ok()) {
          reply->response.mutable_score()->mutable_results(index)->set_stored(true);
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
  // Samples and thresholds after the replies: they are not on any
  // client's critical path.
  for (ScoredBatch& b : batches) {
    for (const auto& smp : b.samples) {
      Status s = store.AddSamples(smp.stream, smp.dim, smp.values.data(),
                                  smp.values.size() / smp.dim);
      if (s.code() == pb::INVALID_ARGUMENT) {
        // The stream's dimension changed with a retrain: start afresh.
        s = store.ClearReservoir(smp.stream);
        if (s.ok()) s = store.AddSamples(smp.stream, smp.dim, smp.values.data(),
                                         smp.values.size() / smp.dim);
      }
      if (!s.ok()) spdlog::warn("reservoir of '{}': {}", smp.stream, s.ToString());
    }
    for (ThresholdRow& t : b.thresholds) {
      Status s = store.AppendThreshold(&t);
      if (!s.ok()) spdlog::warn("threshold of '{}': {}", t.stream, s.ToString());
    }
  }
}

}  // namespace anomalyd
