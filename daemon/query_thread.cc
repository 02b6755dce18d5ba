#include "daemon/query_thread.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/convert.h"
#include "daemon/outbox.h"
#include "daemon/protocol.h"

namespace anomalyd {
namespace {

// Nice value of the query thread: the scheduler then gives scoring (nice 0)
// most of a busy core, while queries still progress when it is idle.
constexpr int kQueryNice = 10;

AnomalyQuery ToQuery(const pb::QueryRequest& q, const QueryOptions& o) {
  AnomalyQuery aq;
  if (q.since_us() != 0) aq.since_us = q.since_us();
  if (q.until_us() != 0) aq.until_us = q.until_us();
  aq.time_field = q.by_event_time() ? TimeField::kEvent : TimeField::kScored;
  if (!q.stream().empty()) aq.stream = q.stream();
  if (q.has_min_score()) aq.min_score = q.min_score();
  if (q.model_version() != 0) aq.model_version = q.model_version();
  aq.order = q.order() == pb::HIGHEST_SCORE_FIRST ? AnomalyOrder::kScoreDesc
             : q.order() == pb::OLDEST_FIRST      ? AnomalyOrder::kTimeAsc
                                                  : AnomalyOrder::kTimeDesc;
  aq.limit = q.limit() == 0 ? o.default_limit : q.limit();
  aq.cursor = q.cursor();
  aq.max_bytes = static_cast<int64_t>(o.max_reply_bytes);
  return aq;
}

}  // namespace

QueryThread::QueryThread(zmq::context_t& ctx, std::unique_ptr<Store> reader,
                         const QueryOptions& options, Metrics* metrics)
    : ctx_(ctx), reader_(std::move(reader)), options_(options), metrics_(metrics) {}

QueryThread::~QueryThread() { Stop(); }

void QueryThread::Start() {
  thread_ = std::thread([this] { Run(); });
}

void QueryThread::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool QueryThread::Submit(Origin origin, pb::Request request, std::vector<std::string> streams) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || jobs_.size() >= options_.max_pending) return false;
    jobs_.push_back(Job{std::move(origin), std::move(request), std::move(streams)});
  }
  cv_.notify_one();
  return true;
}

void QueryThread::Run() {
  // A thread's nice value is its own on Linux (setpriority on its tid).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kQueryNice) != 0) {
    spdlog::debug("query thread: cannot lower its priority");
  }
  Outbox outbox(ctx_);
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and everything answered
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    outbox.Reply(job.origin, Answer(job));
  }
}

std::string QueryThread::Answer(const Job& job) {
  const uint64_t id = job.request.request_id();
  pb::Response r;
  r.set_request_id(id);
  Status s;
  if (job.request.has_query()) {
    AnomalyPage page;
    s = reader_->QueryAnomalies(ToQuery(job.request.query(), options_), &page);
    if (s.ok()) {
      pb::QueryResponse* qr = r.mutable_query();
      for (const AnomalyRow& row : page.rows) ToProto(row, qr->add_anomalies());
      qr->set_next_cursor(page.next_cursor);
    }
  } else {
    std::vector<std::string> names = job.streams;
    if (!job.request.models().stream().empty()) names = {job.request.models().stream()};
    pb::ModelsResponse* mr = r.mutable_models();
    for (const std::string& n : names) {
      std::vector<ModelRow> rows;
      s = reader_->ListModels(n, &rows);
      if (!s.ok()) break;
      for (const ModelRow& m : rows) ToProto(m, mr->add_models());
    }
  }
  if (!s.ok()) {
    metrics_->CountError(s.code());
    return EncodeError(id, s);
  }
  return r.SerializeAsString();
}

}  // namespace anomalyd
