#include "daemon/alert_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>

#include "common/clock.h"
#include "daemon/alert_format.h"

namespace anomalyd {
namespace {

// Anomalies read per pass: bounds the memory of a catch-up after a long
// stop, and the size of one SaveAlerts transaction's work.
constexpr int64_t kReadBatch = 1000;
// Outbox rows looked at per pass.
constexpr int64_t kDeliverBatch = 200;

int64_t Micros(double seconds) { return static_cast<int64_t>(seconds * 1e6); }

bool Is2xx(int status) { return status >= 200 && status < 300; }

// A status that retrying cannot mend: the receiver refused the request
// itself (4xx), except for time-outs and rate limits.
bool IsPermanent(int status) {
  return status >= 400 && status < 500 && status != 408 && status != 429;
}

}  // namespace

std::vector<AlertSender::Sink> AlertSender::Sinks(const AlertOptions& o) {
  std::vector<Sink> sinks;
  if (!o.alertmanager_url.empty()) {
    std::string base = o.alertmanager_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    sinks.push_back(Sink{"alertmanager", base + "/api/v2/alerts", true});
  }
  for (size_t i = 0; i < o.webhooks.size(); ++i) {
    sinks.push_back(Sink{"webhook:" + std::to_string(i), o.webhooks[i], false});
  }
  return sinks;
}

AlertSender::AlertSender(AlertSenderOptions options, std::unique_ptr<Store> reader, Writer* writer,
                         const StreamRegistry* streams, std::unique_ptr<HttpPoster> poster)
    : options_(std::move(options)),
      sinks_(Sinks(options_.alerts)),
      reader_(std::move(reader)),
      writer_(writer),
      streams_(streams),
      poster_(poster ? std::move(poster) : MakeHttpPoster()),
      shaper_(options_.alerts.shaping, options_.stream_shaping) {}

AlertSender::~AlertSender() { Stop(); }

Status AlertSender::Start() {
  AlertCheckpoint cp;
  ANOMALYD_RETURN_IF_ERROR(reader_->LoadAlertCheckpoint(&cp));
  ANOMALYD_RETURN_IF_ERROR(shaper_.LoadState(cp.state));
  cursor_ = cp.cursor;
  saved_state_ = cp.state;
  spdlog::info("alerts: {} receiver(s), from anomaly {} with {} open incident(s)", sinks_.size(),
               cursor_, shaper_.pending() + shaper_.firing());
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

void AlertSender::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertSender::Reload(const AlertShaping& defaults,
                         const std::map<std::string, AlertShaping>& streams,
                         const std::string& webhook_secret) {
  auto o = std::make_unique<AlertSenderOptions>(options_);
  o->alerts.shaping = defaults;
  o->stream_shaping = streams;
  o->webhook_secret = webhook_secret;
  std::lock_guard<std::mutex> l(mu_);
  reload_ = std::move(o);
}

AlertStats AlertSender::Stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void AlertSender::Run() {
  const auto interval = std::chrono::microseconds(Micros(options_.alerts.poll_interval_s));
  for (;;) {
    {
      std::unique_ptr<AlertSenderOptions> reload;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stopping_) return;
        reload.swap(reload_);
      }
      if (reload) {
        options_.alerts.shaping = reload->alerts.shaping;
        options_.stream_shaping = reload->stream_shaping;
        options_.webhook_secret = reload->webhook_secret;
        shaper_.SetShaping(options_.alerts.shaping, options_.stream_shaping);
      }
    }
    const bool more = Round();
    std::unique_lock<std::mutex> l(mu_);
    if (!more) cv_.wait_for(l, interval, [&] { return stopping_; });
  }
}

bool AlertSender::Round() {
  const int64_t now = WallMicros();
  bool more = false;
  if (!Shape(now, &more)) return false;
  Deliver(now);
  int64_t pending = 0, dead = 0;
  if (reader_->CountOutbox(&pending, &dead).ok()) {
    std::lock_guard<std::mutex> l(mu_);
    stats_.outbox_pending = pending;
    stats_.dead_letters = dead;
  }
  std::lock_guard<std::mutex> l(mu_);
  stats_.incidents_pending = shaper_.pending();
  stats_.incidents_firing = shaper_.firing();
  return more;
}

const std::vector<std::string>& AlertSender::FeatureNames(const AnomalyRow& row) {
  auto& [version, names] = names_[row.stream];
  if (version != row.model_version) {
    names.clear();
    const ServingSnapshot snap = streams_->Snapshot(row.stream);
    // A record scored by another version may have other features: then
    // they are named by position.
    if (snap.model && snap.version == row.model_version) {
      const auto& n = snap.model->meta().feature_names();
      names.assign(n.begin(), n.end());
      version = row.model_version;
    }
  }
  return names;
}

bool AlertSender::Suppressed(const AnomalyRow& row) const {
  uint32_t version = 0;
  int64_t since = 0;
  if (!streams_->RetrainedAt(row.stream, &version, &since)) return false;
  const AlertShaping& sh = shaper_.ShapingOf(row.stream);
  return row.model_version == version &&
         row.scored_time_us < since + Micros(sh.suppress_after_retrain_s);
}

bool AlertSender::Shape(int64_t now, bool* more) {
  std::vector<AnomalyRow> rows;
  Status s = reader_->AnomaliesAfter(cursor_, kReadBatch, &rows);
  std::vector<AlertShaper::Notification> notes;
  int64_t cursor = cursor_;
  uint64_t stale = 0, suppressed = 0;
  const std::string before = saved_state_;
  if (s.ok()) {
    for (const AnomalyRow& row : rows) {
      cursor = row.id;
      if (row.scored_time_us < now - Micros(options_.alerts.max_age_s)) {
        ++stale;
      } else if (Suppressed(row)) {
        ++suppressed;
      } else {
        shaper_.Observe(row, FeatureNames(row), &notes);
      }
    }
    shaper_.Tick(now, &notes);
    for (AlertShaper::Notification& n : notes) shaper_.Refresh(&n);
  }
  *more = s.ok() && static_cast<int64_t>(rows.size()) == kReadBatch;
  std::string state = s.ok() ? shaper_.SaveState() : before;
  if (s.ok() && cursor == cursor_ && notes.empty() && state == before) return true;
  if (s.ok()) {
    std::vector<OutboxRow> outbox = ToOutbox(notes);
    AlertCheckpoint cp{cursor, state};
    s = OnWriter([&](Store& store) { return store.SaveAlerts(cp, &outbox); });
  }
  if (!s.ok()) {
    // Undone: the same records are shaped again next pass.
    (void)shaper_.LoadState(before);
    if (!warned_) spdlog::warn("alerts: cannot save the alert state: {}", s.ToString());
    warned_ = true;
    *more = false;
    return false;
  }
  warned_ = false;
  cursor_ = cursor;
  saved_state_ = state;
  std::lock_guard<std::mutex> l(mu_);
  stats_.skipped_stale += stale;
  stats_.skipped_suppressed += suppressed;
  for (const auto& n : notes) ++(n.resolved ? stats_.resolved_sent : stats_.firing_sent);
  return true;
}

std::vector<OutboxRow> AlertSender::ToOutbox(
    const std::vector<AlertShaper::Notification>& notes) const {
  std::vector<OutboxRow> rows;
  for (const AlertShaper::Notification& n : notes) {
    for (const Sink& sink : sinks_) {
      OutboxRow r;
      r.sink = sink.name;
      r.payload = sink.alertmanager ? AlertmanagerBody(n, options_.instance,
                                                       shaper_.ShapingOf(n.incident.stream()))
                                    : WebhookBody(n, options_.instance);
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

HttpHeaders AlertSender::HeadersFor(const Sink& sink, const OutboxRow& row) const {
  HttpHeaders h = {{"User-Agent", "anomalyd"}};
  if (sink.alertmanager) return h;
  h.emplace_back("X-Anomalyd-Delivery", std::to_string(row.id));
  if (!options_.webhook_secret.empty()) {
    h.emplace_back("X-Anomalyd-Signature",
                   "sha256=" + HmacSha256Hex(options_.webhook_secret, row.payload));
  }
  return h;
}

void AlertSender::Deliver(int64_t now) {
  std::vector<OutboxRow> rows;
  Status s = reader_->PendingOutbox(kDeliverBatch, &rows);
  if (!s.ok()) {
    spdlog::debug("alerts: reading the outbox: {}", s.ToString());
    return;
  }
  std::vector<int64_t> delivered;
  std::vector<OutboxRow> retried;
  std::map<std::string, std::string> down;  // sink -> why, this pass
  std::map<std::string, uint64_t> ok_count, failed_count;
  auto fail = [&](OutboxRow r, const std::string& why, bool permanent) {
    ++r.attempts;
    r.last_error = why;
    r.dead = permanent || r.attempts >= options_.alerts.max_attempts;
    const double wait = std::min(options_.alerts.retry_max_s,
                                 options_.alerts.retry_initial_s *
                                     static_cast<double>(1ull << std::min(r.attempts - 1, 40u)));
    r.next_attempt_us = now + Micros(wait);
    if (r.dead)
      spdlog::warn("alerts: notification {} to {} is a dead letter: {}", r.id, r.sink, why);
    ++failed_count[r.sink];
    retried.push_back(std::move(r));
  };
  for (OutboxRow& row : rows) {
    if (row.next_attempt_us > now) continue;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) break;
    }
    auto sink = std::find_if(sinks_.begin(), sinks_.end(),
                             [&](const Sink& k) { return k.name == row.sink; });
    if (sink == sinks_.end()) {
      fail(row, "no receiver '" + row.sink + "' in the config", /*permanent=*/true);
      continue;
    }
    // A receiver that just failed is not asked again this pass: its due
    // notifications wait together.
    if (auto d = down.find(row.sink); d != down.end()) {
      fail(row, d->second, /*permanent=*/false);
      continue;
    }
    int status = 0;
    Status p = poster_->Post(sink->url, HeadersFor(*sink, row), row.payload,
                             options_.alerts.timeout_s, &status);
    if (p.ok() && Is2xx(status)) {
      delivered.push_back(row.id);
      ++ok_count[row.sink];
      continue;
    }
    const std::string why = p.ok() ? "HTTP " + std::to_string(status) : p.message();
    const bool permanent = p.ok() && IsPermanent(status);
    if (!permanent) down[row.sink] = why;
    fail(row, why, permanent);
  }
  if (delivered.empty() && retried.empty()) return;
  s = OnWriter([&](Store& store) { return store.SettleOutbox(delivered, retried); });
  // Unsettled, the rows are tried again (at least once, not at most once).
  if (!s.ok()) spdlog::warn("alerts: cannot settle deliveries: {}", s.ToString());
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [k, n] : ok_count) stats_.delivered[k] += n;
  for (const auto& [k, n] : failed_count) stats_.failed[k] += n;
}

Status AlertSender::OnWriter(std::function<Status(Store&)> f) {
  auto done = std::make_shared<std::promise<Status>>();
  std::future<Status> result = done->get_future();
  writer_->Post([f = std::move(f), done](Store& store, Outbox&) {
    Status s;
    try {
      s = f(store);
    } catch (const std::exception& e) {
      s = Status(pb::INTERNAL, e.what());
    }
    done->set_value(s);
  });
  return result.get();
}

}  // namespace anomalyd
