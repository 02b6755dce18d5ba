#include "daemon/scorer_thread.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/clock.h"
#include "daemon/reply_encoder.h"

namespace anomalyd {
namespace {

// How long the loop sleeps on an empty queue before its heartbeat.
constexpr std::chrono::milliseconds kIdleWait(100);

// Routes one stream's verdicts: into the replies through the reply
// encoder, and the rows to store into the writer's batch. Durable replies
// wait for the commit of what they flag, and of the recalibrated
// threshold they carry; one that flags nothing under a stored threshold
// goes out at once. Ingest has no reply: only its anomalies are kept.
class BatchRouter : public VerdictSink {
 public:
  BatchRouter(std::vector<WorkItem*>& items, bool durable_replies,
              bool thresholds_stored, ScoredBatch* job, ReplySink& outbox)
      : items_(items), durable_(durable_replies),
        thresholds_stored_(thresholds_stored), job_(job), outbox_(outbox) {}

  void Rejected(size_t part, const Status& s) override {
    PendingReply& reply = *items_[part]->reply;
    EncodeFailure(s, &reply);
    if (reply.parts_left.fetch_sub(1) == 1) SendPending(outbox_, reply);
  }

  void Scored(StreamVerdicts* v) override {
    size_t row = 0;  // first row of the part in the verdicts
    size_t k = 0;    // next anomaly
    for (size_t p : v->parts) {
      WorkItem& w = *items_[p];
      PendingReply& reply = *w.reply;
      const bool ingest = reply.origin.endpoint == Endpoint::kIngest;
      if (!ingest) EncodeVerdicts(w.part, *v, row, &reply);
      const size_t end = row + w.part.rows();
      uint64_t flagged = 0;
      for (; k < v->anomaly_rows.size() && v->anomaly_rows[k] < end; ++k, ++flagged) {
        const size_t i = v->anomaly_rows[k] - row;
        job_->anomalies.push_back(std::move(v->anomalies[k]));
        const bool replies_later = durable_ && !ingest;
        job_->anomaly_results.emplace_back(replies_later ? w.reply : nullptr,
                                           static_cast<int>(w.part.index[i]));
      }
      if (durable_ && (flagged > 0 || !thresholds_stored_)) {
        job_->completions.push_back(w.reply);
      } else if (reply.parts_left.fetch_sub(1) == 1) {
        SendPending(outbox_, reply);
      }
      row = end;
    }
    if (!v->samples.empty()) {
      ScoredBatch::Samples samples;
      samples.stream = v->stream;
      samples.dim = static_cast<uint32_t>(v->dim);
      samples.values = std::move(v->samples);
      job_->samples.push_back(std::move(samples));
    }
    if (v->recalibrated) job_->thresholds.push_back(std::move(*v->recalibrated));
  }

 private:
  std::vector<WorkItem*>& items_;
  const bool durable_;
  const bool thresholds_stored_;
  ScoredBatch* job_;
  ReplySink& outbox_;
};

}  // namespace

ScoringLoop::ScoringLoop(zmq::context_t& ctx, const ScoringOptions& options,
                         WorkQueue* queue, StreamRegistry* streams,
                         Writer* writer)
    : ctx_(ctx), options_(options), queue_(queue), streams_(streams),
      writer_(writer), engine_(options.engine(), streams) {}

EngineOptions ScoringOptions::engine() const {
  EngineOptions e;
  e.recalibration = recalibration;
  e.reservoir_rate = reservoir_rate;
  e.seed = seed;
  return e;
}

ScoringLoop::~ScoringLoop() { Join(); }

void ScoringLoop::Start() {
  heartbeat_us_ = SteadyMicros();
  thread_ = std::thread([this] { Run(); });
}

void ScoringLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void ScoringLoop::Reconfigure(const ScoringOptions& options) {
  std::lock_guard<std::mutex> l(options_mu_);
  pending_options_ = options;
  options_changed_ = true;
}

void ScoringLoop::ApplyPendingOptions() {
  if (options_changed_.exchange(false)) {
    std::lock_guard<std::mutex> l(options_mu_);
    options_ = pending_options_;
    engine_.Reconfigure(options_.engine());  // new windows, new settings
  }
}

void ScoringLoop::Run() {
  Outbox outbox(ctx_);
  for (;;) {
    BatcherOptions batcher;
    {
      std::lock_guard<std::mutex> l(work_mu_);
      ApplyPendingOptions();
      batcher = options_.batcher;
    }
    std::vector<WorkItem> items = queue_->PopBatch(
        batcher.max_batch, kIdleWait, std::chrono::microseconds(batcher.max_delay_us));
    heartbeat_us_ = SteadyMicros();
    if (items.empty()) {
      if (queue_->closed_and_empty()) break;
      continue;
    }
    {
      std::lock_guard<std::mutex> l(work_mu_);
      ScoreItems(items, outbox);
    }
    queue_->Done(items.size());
  }
}

bool ScoringLoop::TryScoreNow(std::vector<WorkItem>& items, ReplySink& sink) {
  // The I/O thread is the only producer: with nothing queued or being
  // scored, the loop cannot take anything before this returns, so no
  // earlier request is overtaken. The lock keeps out the loop's own
  // option updates.
  if (!queue_->idle()) return false;
  uint64_t records = 0;
  for (const WorkItem& w : items) {
    records += w.part.rows();
    // A GPU call costs ~200 us whatever its size: small requests are
    // better batched by the scorer thread than scored one by one here.
    const ServingSnapshot snap = streams_->Snapshot(w.part.stream);
    if (snap.model && !snap.model->on_cpu()) return false;
  }
  std::unique_lock<std::mutex> l(work_mu_, std::try_to_lock);
  if (!l.owns_lock()) return false;
  if (!writer_->HasRoom(records)) return false;  // Submit must not block here
  ApplyPendingOptions();
  ScoreItems(items, sink);
  return true;
}

void ScoringLoop::ScoreItems(std::vector<WorkItem>& items, ReplySink& sink) {
  std::map<std::string, std::vector<WorkItem*>> by_stream;
  for (WorkItem& w : items) by_stream[w.part.stream].push_back(&w);
  ScoredBatch job;
  for (const WorkItem& w : items) job.records += w.part.rows();
  for (auto& [stream, group] : by_stream) ScoreStream(stream, group, &job, sink);
  writer_->Submit(std::move(job));
}

void ScoringLoop::ScoreStream(const std::string& stream,
                              std::vector<WorkItem*>& items, ScoredBatch* job,
                              ReplySink& outbox) {
  std::vector<RecordPart> parts;
  parts.reserve(items.size());
  for (const WorkItem* w : items) {
    RecordPart p;
    p.values = w->part.values.data();
    p.rows = w->part.rows();
    p.dim = w->part.dim;
    p.ids = w->part.ids.data();
    p.event_times_us = w->part.event_times_us.data();
    p.labels = w->part.labels.data();
    p.contributions = w->reply->contributions;
    parts.push_back(p);
  }
  BatchRouter router(items, options_.durable_replies, writer_->thresholds_settled(),
                     job, outbox);
  const size_t n = engine_.ScoreStream(stream, parts, &router);
  if (n > 0 && options_.batch_sizes != nullptr) {
    options_.batch_sizes->Observe(static_cast<double>(n));
  }
}

}  // namespace anomalyd
