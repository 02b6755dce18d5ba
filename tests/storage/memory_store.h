// MemoryStore: a Store (storage/store.h) in memory, for unit tests of what
// sits on top of a store (the writer thread), after leveldb's
// helpers/memenv. With fault injection: make the next calls of one method
// fail with a chosen Status, hold InsertAnomalies mid-commit.
//
//   auto owned = std::make_unique<MemoryStore>();
//   MemoryStore* store = owned.get();
//   store->FailNext(MemoryStore::Op::kInsertAnomalies,
//                   Status(pb::STORAGE_FULL, "injected"));
//   Writer writer(ctx, std::move(owned), options);
//
// What the writer thread uses keeps the contract: InsertAnomalies,
// AppendThreshold (with RegisterModel and LatestThreshold to set it up and
// read it back), AddSamples, LoadReservoir, ClearReservoir, Prune,
// CheckFile, QuickCheck, and the alert sender's methods (checkpoint,
// AnomaliesAfter, outbox). Queries, the rest of the model registry and the
// threshold history return INTERNAL "not supported by MemoryStore". A
// failed call changes nothing, as the contract says.
//
// Thread-safe, unlike a real Store: the test thread reads it (anomalies(),
// calls()) while the writer thread uses it.
#ifndef ANOMALYD_TESTS_STORAGE_MEMORY_STORE_H_
#define ANOMALYD_TESTS_STORAGE_MEMORY_STORE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace anomalyd::testing {

class MemoryStore final : public Store {
 public:
  // The methods faults can be injected into.
  enum class Op {
    kInsertAnomalies,
    kAppendThreshold,
    kAddSamples,
    kClearReservoir,
    kPrune,
    kCheckFile,
  };

  explicit MemoryStore(StoreOptions options = StoreOptions())
      : options_(options), clock_(options.clock != nullptr ? options.clock : SystemClock()) {}

  // The next `times` calls of `op` return `status` and change nothing.
  void FailNext(Op op, Status status, int times = 1) {
    std::lock_guard<std::mutex> l(mu_);
    for (int i = 0; i < times; ++i) faults_[op].push_back(status);
  }
  // Every CheckFile from now on returns `status` (OK: heals).
  void SetCheckFile(Status status) {
    std::lock_guard<std::mutex> l(mu_);
    check_file_ = std::move(status);
  }
  // Runs inside every InsertAnomalies of a non-empty batch, before its
  // commit, without the store's lock: a test may block there to hold the
  // writer mid-commit. `rows` is the batch as given.
  void SetBeforeCommit(std::function<void(const std::vector<AnomalyRow>&)> f) {
    std::lock_guard<std::mutex> l(mu_);
    before_commit_ = std::move(f);
  }

  // Committed anomalies, in commit order.
  std::vector<AnomalyRow> anomalies() const {
    std::lock_guard<std::mutex> l(mu_);
    return anomalies_;
  }
  // The sizes of the committed InsertAnomalies batches, in order.
  std::vector<size_t> commits() const {
    std::lock_guard<std::mutex> l(mu_);
    return commits_;
  }
  std::vector<ThresholdRow> thresholds() const {
    std::lock_guard<std::mutex> l(mu_);
    return thresholds_;
  }
  // Calls of `op` so far, failed ones included (an empty InsertAnomalies
  // does not count).
  int calls(Op op) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = calls_.find(op);
    return it == calls_.end() ? 0 : it->second;
  }

  // ---- Store -------------------------------------------------------------

  Status InsertAnomalies(std::vector<AnomalyRow>* batch) override {
    std::function<void(const std::vector<AnomalyRow>&)> hook;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (batch->empty()) return Status::OK();
      ANOMALYD_RETURN_IF_ERROR(Enter(Op::kInsertAnomalies));
      for (size_t i = 0; i < batch->size(); ++i) {
        const AnomalyRow& r = (*batch)[i];
        if (std::isnan(r.score) || std::isnan(r.reconstruction) || std::isnan(r.kl) ||
            std::isnan(r.threshold)) {
          return Status::InvalidArgument("anomaly " + std::to_string(i) + " has a NaN");
        }
      }
      hook = before_commit_;
    }
    if (hook) hook(*batch);
    std::lock_guard<std::mutex> l(mu_);
    const int64_t now = clock_->NowMicros();
    for (AnomalyRow& a : *batch) {
      a.id = ++last_anomaly_id_;
      if (a.scored_time_us == 0) a.scored_time_us = now;
      anomalies_.push_back(a);
    }
    commits_.push_back(batch->size());
    return Status::OK();
  }

  Status Prune(const RetentionPolicy& p, int64_t* deleted) override {
    std::lock_guard<std::mutex> l(mu_);
    if (deleted != nullptr) *deleted = 0;
    ANOMALYD_RETURN_IF_ERROR(Enter(Op::kPrune));
    if (p.batch_rows < 1 || p.batch_rows > 1'000'000 || p.max_age_us < 0 || p.max_rows < 0 ||
        p.max_batches < 0) {
      return Status::InvalidArgument("bad retention policy");
    }
    // Oldest scored time first, then lowest id.
    std::vector<size_t> order(anomalies_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const AnomalyRow& x = anomalies_[a];
      const AnomalyRow& y = anomalies_[b];
      return std::make_pair(x.scored_time_us, x.id) < std::make_pair(y.scored_time_us, y.id);
    });
    const int64_t cutoff = clock_->NowMicros() - p.max_age_us;
    const int64_t budget =
        p.max_batches > 0 ? p.max_batches * p.batch_rows : std::numeric_limits<int64_t>::max();
    std::vector<bool> gone(anomalies_.size(), false);
    int64_t n = 0;
    int64_t left = static_cast<int64_t>(anomalies_.size());
    for (size_t i : order) {
      if (n == budget) break;
      const bool old = p.max_age_us > 0 && anomalies_[i].scored_time_us < cutoff;
      const bool excess = p.max_rows > 0 && left > p.max_rows;
      if (!old && !excess) break;
      gone[i] = true;
      ++n;
      --left;
    }
    std::vector<AnomalyRow> kept;
    for (size_t i = 0; i < anomalies_.size(); ++i) {
      if (!gone[i]) kept.push_back(std::move(anomalies_[i]));
    }
    anomalies_ = std::move(kept);
    if (deleted != nullptr) *deleted = n;
    return Status::OK();
  }

  Status RegisterModel(const ModelRow& m) override {
    std::lock_guard<std::mutex> l(mu_);
    if (m.version == 0 || models_.count({m.stream, m.version})) {
      return Status::InvalidArgument("model exists or version 0");
    }
    ModelRow row = m;
    if (row.created_us == 0) row.created_us = clock_->NowMicros();
    models_[{m.stream, m.version}] = row;
    return Status::OK();
  }

  Status AppendThreshold(ThresholdRow* t) override {
    std::lock_guard<std::mutex> l(mu_);
    ANOMALYD_RETURN_IF_ERROR(Enter(Op::kAppendThreshold));
    if (std::isnan(t->value) || !models_.count({t->stream, t->model_version})) {
      return Status::InvalidArgument("threshold of an unregistered model, or NaN");
    }
    t->id = ++last_threshold_id_;
    if (t->time_us == 0) t->time_us = clock_->NowMicros();
    thresholds_.push_back(*t);
    return Status::OK();
  }

  Status LatestThreshold(const std::string& stream, ThresholdRow* t) override {
    std::lock_guard<std::mutex> l(mu_);
    const ThresholdRow* best = nullptr;
    for (const ThresholdRow& r : thresholds_) {
      if (r.stream == stream && (best == nullptr || std::make_pair(r.time_us, r.id) >=
                                                        std::make_pair(best->time_us, best->id))) {
        best = &r;
      }
    }
    if (best == nullptr) return Status::NotFound("no threshold");
    *t = *best;
    return Status::OK();
  }

  Status CheckFile() override {
    std::lock_guard<std::mutex> l(mu_);
    ANOMALYD_RETURN_IF_ERROR(Enter(Op::kCheckFile));
    return check_file_;
  }
  Status QuickCheck() override { return Status::OK(); }

  Status AddSamples(const std::string& stream, uint32_t dim, const float* rows, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    ANOMALYD_RETURN_IF_ERROR(Enter(Op::kAddSamples));
    if (dim == 0) return Status::InvalidArgument("sample dimension 0");
    if (n == 0) return Status::OK();
    for (size_t i = 0; i < n * dim; ++i) {
      if (!std::isfinite(rows[i])) return Status::InvalidArgument("not finite");
    }
    Reservoir& r = reservoirs_[stream];
    if (r.dim != 0 && r.dim != dim) {
      return Status::InvalidArgument("reservoir dimension differs");
    }
    r.dim = dim;
    const uint64_t k = static_cast<uint64_t>(options_.reservoir_capacity);
    for (size_t i = 0; i < n; ++i, ++r.seen) {
      // Algorithm R: the m-th record takes slot m while there is room,
      // else a uniform slot in [0, m] when that is below the capacity.
      const uint64_t m = r.seen;
      const uint64_t slot = m < k ? m : Mix(options_.reservoir_seed ^ m) % (m + 1);
      if (slot >= k) continue;
      std::vector<float> v(rows + i * dim, rows + (i + 1) * dim);
      if (slot < r.slots.size())
        r.slots[slot] = std::move(v);
      else
        r.slots.push_back(std::move(v));
    }
    return Status::OK();
  }

  Status LoadReservoir(const std::string& stream, Baseline* b) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = reservoirs_.find(stream);
    if (it == reservoirs_.end()) return Status::NotFound("no reservoir");
    Baseline out;
    out.dim = it->second.dim;
    out.seen = it->second.seen;
    for (const auto& v : it->second.slots) {
      out.values.insert(out.values.end(), v.begin(), v.end());
    }
    *b = std::move(out);
    return Status::OK();
  }

  Status ClearReservoir(const std::string& stream) override {
    std::lock_guard<std::mutex> l(mu_);
    ANOMALYD_RETURN_IF_ERROR(Enter(Op::kClearReservoir));
    reservoirs_.erase(stream);
    return Status::OK();
  }

  // ---- Not needed by the writer: not supported ---------------------------

  Status QueryAnomalies(const AnomalyQuery&, AnomalyPage*) override { return Unsupported(); }
  Status ExplainQuery(const AnomalyQuery&, std::string*) override { return Unsupported(); }
  Status CountByBucket(int64_t, int64_t, int64_t, TimeField, std::vector<BucketCount>*) override {
    return Unsupported();
  }
  Status ActivateModel(const std::string&, uint32_t) override { return Unsupported(); }
  Status ActiveModel(const std::string&, ModelRow*) override { return Unsupported(); }
  Status ListModels(const std::string&, std::vector<ModelRow>*) override { return Unsupported(); }
  Status ActiveModels(std::vector<ModelRow>*) override { return Unsupported(); }
  Status AllModels(std::vector<ModelRow>*) override { return Unsupported(); }
  Status NextModelVersion(const std::string&, uint32_t*) override { return Unsupported(); }
  Status ReserveModelVersion(const std::string&, uint32_t*) override { return Unsupported(); }
  Status CompleteCandidate(const ModelRow&) override { return Unsupported(); }
  Status DeleteCandidate(const std::string&, uint32_t) override { return Unsupported(); }
  Status DeleteUnfinishedCandidates(int64_t* deleted) override {
    if (deleted != nullptr) *deleted = 0;
    return Unsupported();
  }
  Status SetBundlePath(const std::string&, uint32_t, const std::string&) override {
    return Unsupported();
  }
  Status ThresholdHistory(const std::string&, int64_t, std::vector<ThresholdRow>*) override {
    return Unsupported();
  }

  Status LoadAlertCheckpoint(AlertCheckpoint* cp) override {
    std::lock_guard<std::mutex> l(mu_);
    *cp = checkpoint_;
    return Status::OK();
  }
  Status AnomaliesAfter(int64_t after_id, int64_t limit, std::vector<AnomalyRow>* rows) override {
    std::lock_guard<std::mutex> l(mu_);
    if (limit < 1 || limit > kMaxQueryLimit) return Status::InvalidArgument("limit");
    rows->clear();
    for (const AnomalyRow& a : anomalies_) {
      if (a.id > after_id && static_cast<int64_t>(rows->size()) < limit) rows->push_back(a);
    }
    return Status::OK();
  }
  Status SaveAlerts(const AlertCheckpoint& cp, std::vector<OutboxRow>* add) override {
    std::lock_guard<std::mutex> l(mu_);
    checkpoint_ = cp;
    const int64_t now = clock_->NowMicros();
    for (OutboxRow& o : *add) {
      o.id = ++last_outbox_id_;
      if (o.created_us == 0) o.created_us = now;
      outbox_[o.id] = o;
    }
    return Status::OK();
  }
  Status PendingOutbox(int64_t limit, std::vector<OutboxRow>* rows) override {
    std::lock_guard<std::mutex> l(mu_);
    if (limit < 1 || limit > kMaxQueryLimit) return Status::InvalidArgument("limit");
    rows->clear();
    for (const auto& [id, o] : outbox_) {
      if (!o.dead && static_cast<int64_t>(rows->size()) < limit) rows->push_back(o);
    }
    return Status::OK();
  }
  Status SettleOutbox(const std::vector<int64_t>& delivered,
                      const std::vector<OutboxRow>& retried) override {
    std::lock_guard<std::mutex> l(mu_);
    for (int64_t id : delivered) outbox_.erase(id);
    for (const OutboxRow& r : retried) {
      auto it = outbox_.find(r.id);
      if (it == outbox_.end()) continue;
      it->second.attempts = r.attempts;
      it->second.next_attempt_us = r.next_attempt_us;
      it->second.dead = r.dead;
      it->second.last_error = r.last_error;
    }
    return Status::OK();
  }
  Status CountOutbox(int64_t* pending, int64_t* dead) override {
    std::lock_guard<std::mutex> l(mu_);
    *pending = *dead = 0;
    for (const auto& [id, o] : outbox_) ++*(o.dead ? dead : pending);
    return Status::OK();
  }

 private:
  struct Reservoir {
    uint32_t dim = 0;
    uint64_t seen = 0;
    std::vector<std::vector<float>> slots;
  };

  static Status Unsupported() { return Status(pb::INTERNAL, "not supported by MemoryStore"); }
  // SplitMix64's finaliser: a stateless draw, so batching does not matter.
  static uint64_t Mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  // Counts a call of `op` and takes its next injected fault, if any.
  // REQUIRES: mu_ held.
  Status Enter(Op op) {
    ++calls_[op];
    auto it = faults_.find(op);
    if (it == faults_.end() || it->second.empty()) return Status::OK();
    Status s = it->second.front();
    it->second.pop_front();
    return s;
  }

  const StoreOptions options_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::map<Op, std::deque<Status>> faults_;
  std::map<Op, int> calls_;
  Status check_file_;
  std::function<void(const std::vector<AnomalyRow>&)> before_commit_;
  std::vector<AnomalyRow> anomalies_;
  std::vector<size_t> commits_;
  int64_t last_anomaly_id_ = 0;
  std::map<std::pair<std::string, uint32_t>, ModelRow> models_;
  std::vector<ThresholdRow> thresholds_;
  int64_t last_threshold_id_ = 0;
  std::map<std::string, Reservoir> reservoirs_;
  AlertCheckpoint checkpoint_;
  std::map<int64_t, OutboxRow> outbox_;
  int64_t last_outbox_id_ = 0;
};

}  // namespace anomalyd::testing

#endif  // ANOMALYD_TESTS_STORAGE_MEMORY_STORE_H_
