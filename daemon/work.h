// Units of work passed between the daemon's threads, and the bounded queue
// in front of the scorer.
#ifndef ANOMALYD_DAEMON_WORK_H_
#define ANOMALYD_DAEMON_WORK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/metrics.h"
#include "daemon/protocol.h"
#include "proto/anomalyd.pb.h"

namespace anomalyd {

// Which socket a request came in on, and how to route its reply.
enum class Endpoint : char { kScore = 'S', kControl = 'C', kIngest = 'I' };

struct Origin {
  Endpoint endpoint = Endpoint::kScore;
  std::vector<std::string> envelope;  // ROUTER routing frames, echoed back
};

// The reply of one score request, filled by the scorer part by part and
// sent once the last part is done (after its commit, with durability
// "commit"). Parts are scored and completed by one thread at a time, handed
// on through queues, so the response needs no lock of its own.
struct PendingReply {
  Origin origin;
  uint64_t request_id = 0;
  bool contributions = false;
  bool columnar = false;  // verdicts go to response.score.columns
  std::atomic<int> parts_left{0};
  pb::Response response;  // results (or columns) pre-sized to the records
  std::chrono::steady_clock::time_point received;
  Histogram* latency = nullptr;  // observes receipt-to-reply time; may be null
};

struct WorkItem {
  std::shared_ptr<PendingReply> reply;
  ScorePart part;
};

// Bounded multi-producer queue of work items, bounded by records. Thread-safe.
class WorkQueue {
 public:
  explicit WorkQueue(uint64_t capacity_records) : capacity_(capacity_records) {}

  // Enqueues unless it would exceed the capacity (then false: BUSY) or the
  // queue is closed.
  bool TryPush(WorkItem item) {
    const uint64_t n = item.part.rows();
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closed_ || records_ + n > capacity_) return false;
      records_ += n;
      ++unfinished_;
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
    return true;
  }

  // Waits until an item is there (or `wait` passes, or the queue is closed
  // and empty), then takes items while the first `max_records` are not
  // exceeded. When `linger` > 0 and fewer than max_records were waiting,
  // waits up to `linger` for more. Returns an empty vector on timeout.
  std::vector<WorkItem> PopBatch(uint64_t max_records,
                                 std::chrono::microseconds wait,
                                 std::chrono::microseconds linger) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, wait, [&] { return !items_.empty() || closed_; })) return {};
    if (linger.count() > 0 && records_ < max_records && !closed_) {
      const auto deadline = std::chrono::steady_clock::now() + linger;
      cv_.wait_until(l, deadline, [&] { return records_ >= max_records || closed_; });
    }
    std::vector<WorkItem> out;
    uint64_t taken = 0;
    while (!items_.empty()) {
      const uint64_t n = items_.front().part.rows();
      if (!out.empty() && taken + n > max_records) break;
      taken += n;
      records_ -= n;
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return out;
  }

  // After Close, TryPush fails and PopBatch returns what is left, then
  // empty vectors at once.
  void Close() {
    {
      std::lock_guard<std::mutex> l(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // The consumer finished `items` items it popped.
  void Done(size_t items) { unfinished_.fetch_sub(items); }
  // No item waits or is being scored.
  bool idle() const { return unfinished_.load() == 0; }

  bool closed_and_empty() const {
    std::lock_guard<std::mutex> l(mu_);
    return closed_ && items_.empty();
  }
  uint64_t records() const {
    std::lock_guard<std::mutex> l(mu_);
    return records_;
  }

 private:
  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WorkItem> items_;
  uint64_t records_ = 0;
  bool closed_ = false;
  std::atomic<uint64_t> unfinished_{0};  // pushed and not yet Done
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_WORK_H_
