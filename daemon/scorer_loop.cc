#include "daemon/scorer_loop.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "daemon/clock.h"
#include "daemon/convert.h"

namespace anomalyd {
namespace {

// How long the loop sleeps on an empty queue before its heartbeat.
constexpr std::chrono::milliseconds kIdleWait(100);

// Record `index` of a columnar reply from row `row` of the scores.
void SetColumns(uint32_t index, size_t d, const ScoreOutput& out, size_t row,
                bool flagged, float threshold, uint32_t version,
                bool contributions, pb::ScoreColumns* c) {
  const int i = static_cast<int>(index);
  c->set_reconstruction(i, out.reconstruction[row]);
  c->set_kl(i, out.kl[row]);
  c->set_score(i, out.score[row]);
  c->set_p_value(i, out.p_value[row]);
  c->set_flagged(i, flagged);
  c->set_threshold(i, threshold);
  c->set_model_version(i, version);
  if (contributions) {
    std::copy(out.contributions.begin() + row * d,
              out.contributions.begin() + (row + 1) * d,
              c->mutable_contributions()->begin() + index * d);
  }
}

}  // namespace

ScoringLoop::ScoringLoop(zmq::context_t& ctx, const ScoringOptions& options,
                         WorkQueue* queue, StreamRegistry* streams,
                         Writer* writer)
    : ctx_(ctx), options_(options), queue_(queue), streams_(streams),
      writer_(writer), rng_(options.seed) {}

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
    recal_.clear();  // new recalibration settings start new windows
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
  ++batches_;
}

void ScoringLoop::Fail(std::vector<WorkItem*>& items, const Status& s,
                       ReplySink& outbox) {
  for (WorkItem* w : items) {
    pb::Error* e = w->reply->response.mutable_error();
    e->set_code(s.code());
    e->set_message(s.message());
    e->set_record_index(-1);
    if (w->reply->parts_left.fetch_sub(1) == 1) SendPending(outbox, *w->reply);
  }
}

void ScoringLoop::ScoreStream(const std::string& stream,
                              std::vector<WorkItem*>& items, ScoredBatch* job,
                              ReplySink& outbox) {
  const ServingSnapshot snap = streams_->Snapshot(stream);
  if (!snap.model) {
    Fail(items, Status(pb::UNKNOWN_STREAM, "stream '" + stream + "' has no model"), outbox);
    return;
  }
  const size_t d = snap.model->dim();
  // A retrain may change the dimension between validation and scoring.
  std::vector<WorkItem*> ok, wrong;
  for (WorkItem* w : items) (w->part.dim == d ? ok : wrong).push_back(w);
  if (!wrong.empty()) {
    Fail(wrong, Status(pb::WRONG_DIMENSION, "stream '" + stream +
                                                "' was retrained with " +
                                                std::to_string(d) + " features"),
         outbox);
  }
  if (ok.empty()) return;

  // One tensor for the whole group; a lone item is scored in place.
  std::vector<float> joined;
  const float* values = ok.front()->part.values.data();
  size_t n = ok.front()->part.rows();
  bool contributions = ok.front()->reply->contributions;
  if (ok.size() > 1) {
    n = 0;
    for (WorkItem* w : ok) n += w->part.rows();
    joined.reserve(n * d);  // one allocation, each value copied once
    n = 0;
    for (WorkItem* w : ok) {
      joined.insert(joined.end(), w->part.values.begin(), w->part.values.end());
      n += w->part.rows();
      contributions = contributions || w->reply->contributions;
    }
    values = joined.data();
  }
  if (options_.batch_sizes != nullptr) options_.batch_sizes->Observe(static_cast<double>(n));
  ScoreOptions opts;
  opts.contributions = contributions;
  opts.finite_checked = true;  // ValidateScoreRequest checked every value
  ScoreOutput out;
  Status s = snap.model->Score(values, n, opts, &out);
  if (!s.ok()) {
    spdlog::error("scoring stream '{}' failed: {}", stream, s.ToString());
    Fail(ok, s, outbox);
    return;
  }

  const float threshold = static_cast<float>(snap.threshold);
  // Contributions are stored with every anomaly; when the batch was scored
  // without them, score the (few) flagged rows again with them.
  std::vector<float> flagged_contrib;
  std::vector<int64_t> contrib_row(n, -1);
  if (!contributions) {
    std::vector<float> rows;
    int64_t k = 0;
    for (size_t r = 0; r < n; ++r) {
      if (out.score[r] > threshold) {
        rows.insert(rows.end(), values + r * d, values + (r + 1) * d);
        contrib_row[r] = k++;
      }
    }
    if (k > 0) {
      ScoreOptions with;
      with.contributions = true;
      with.finite_checked = true;
      ScoreOutput again;
      if (snap.model->Score(rows.data(), static_cast<size_t>(k), with, &again).ok()) {
        flagged_contrib = std::move(again.contributions);
      }
    }
  }

  const int64_t now_us = WallMicros();
  std::bernoulli_distribution sample(options_.reservoir_rate);
  ScoredBatch::Samples samples;
  samples.stream = stream;
  samples.dim = static_cast<uint32_t>(d);
  uint64_t flagged = 0;
  size_t row = 0;
  // Durable replies wait for the commit of what they flag, and of the
  // recalibrated threshold they carry; one that flags nothing under a
  // stored threshold goes out at once.
  const bool thresholds_stored = writer_->thresholds_settled();
  for (WorkItem* w : ok) {
    const ScorePart& part = w->part;
    PendingReply& reply = *w->reply;
    const uint64_t flagged_before = flagged;
    auto* results = reply.response.mutable_score()->mutable_results();
    for (size_t i = 0; i < part.rows(); ++i, ++row) {
      const bool is_anomaly = out.score[row] > threshold;
      const float* x = part.values.data() + i * d;
      if (reply.origin.endpoint != Endpoint::kIngest && reply.columnar) {
        SetColumns(part.index[i], d, out, row, is_anomaly, threshold, snap.version,
                   reply.contributions,
                   reply.response.mutable_score()->mutable_columns());
      } else if (reply.origin.endpoint != Endpoint::kIngest) {
        pb::ScoreResult* r = results->Mutable(static_cast<int>(part.index[i]));
        r->set_id(part.ids[i]);
        r->set_index(part.index[i]);
        r->set_reconstruction(out.reconstruction[row]);
        r->set_kl(out.kl[row]);
        r->set_score(out.score[row]);
        r->set_flagged(is_anomaly);
        r->set_threshold(threshold);
        r->set_model_version(snap.version);
        r->set_p_value(out.p_value[row]);
        if (reply.contributions) {
          r->mutable_contributions()->Assign(out.contributions.begin() + row * d,
                                             out.contributions.begin() + (row + 1) * d);
        }
      }
      if (is_anomaly) {
        ++flagged;
        AnomalyRow a;
        a.record_id = part.ids[i];
        a.stream = stream;
        a.event_time_us = part.event_times_us[i] ? part.event_times_us[i] : now_us;
        a.scored_time_us = now_us;
        a.score = out.score[row];
        a.reconstruction = out.reconstruction[row];
        a.kl = out.kl[row];
        a.threshold = threshold;
        a.model_version = snap.version;
        a.features.assign(x, x + d);
        if (contributions) {
          a.contributions.assign(out.contributions.begin() + row * d,
                                 out.contributions.begin() + (row + 1) * d);
        } else if (!flagged_contrib.empty()) {
          const size_t k = static_cast<size_t>(contrib_row[row]);
          a.contributions.assign(flagged_contrib.begin() + k * d,
                                 flagged_contrib.begin() + (k + 1) * d);
        }
        a.labels = part.labels[i];
        job->anomalies.push_back(std::move(a));
        const bool replies_later =
            options_.durable_replies && reply.origin.endpoint != Endpoint::kIngest;
        job->anomaly_results.emplace_back(replies_later ? w->reply : nullptr,
                                          static_cast<int>(part.index[i]));
      } else if (options_.reservoir_rate > 0 && sample(rng_)) {
        samples.values.insert(samples.values.end(), x, x + d);
      }
    }
    if (options_.durable_replies && (flagged > flagged_before || !thresholds_stored)) {
      job->completions.push_back(w->reply);
    } else if (reply.parts_left.fetch_sub(1) == 1) {
      SendPending(outbox, reply);
    }
  }
  if (!samples.values.empty()) job->samples.push_back(std::move(samples));
  streams_->CountScored(stream, n, flagged);

  // Recalibration: a window per stream, restarted when the model or an
  // operator changed the stream (its epoch moved). A threshold an operator
  // fixed stays fixed.
  if (snap.method == pb::FIXED) return;
  Recal& rc = recal_[stream];
  if (rc.epoch != snap.epoch || !rc.r) {
    rc.epoch = snap.epoch;
    rc.r = std::make_unique<Recalibrator>(options_.recalibration, snap.threshold,
                                          SteadyMicros());
  }
  rc.r->Add(out.score.data(), n);
  pb::ThresholdParams params;
  Status err;
  // An unchanged threshold is neither stored nor logged: at millions of
  // records a second a recalibration is due many times a second, and a
  // flood pinned at max_drift would otherwise log and store each one.
  if (rc.r->MaybeRecalibrate(SteadyMicros(), &params, &err)) {
    if (params.value() != snap.threshold &&
        streams_->SetRecalibrated(stream, params.value(), snap.epoch)) {
      ThresholdRow t;
      t.stream = stream;
      t.model_version = snap.version;
      t.method = std::string("recalibrated-") + ThresholdMethodName(params.method());
      t.value = params.value();
      t.window = params.sample_count();
      job->thresholds.push_back(std::move(t));
      spdlog::info("stream '{}': threshold recalibrated to {} from {} scores",
                   stream, params.value(), params.sample_count());
    }
  } else if (!err.ok()) {
    spdlog::warn("stream '{}': recalibration failed: {}", stream, err.ToString());
  }
}

}  // namespace anomalyd
