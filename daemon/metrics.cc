#include "daemon/metrics.h"

#include <cmath>
#include <cstdio>

namespace anomalyd {
namespace {

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Label values escaped as the text format requires.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void RenderAlerts(const AlertStats& a, std::string* out) {
  Header(out, "anomalyd_alert_notifications_total", "counter",
         "Alert notifications made (each goes to every receiver), by status.");
  *out += "anomalyd_alert_notifications_total{status=\"firing\"} " + std::to_string(a.firing_sent) +
          "\n";
  *out += "anomalyd_alert_notifications_total{status=\"resolved\"} " +
          std::to_string(a.resolved_sent) + "\n";
  Header(out, "anomalyd_alert_deliveries_total", "counter",
         "Delivery attempts by receiver and outcome.");
  for (const auto& [sink, n] : a.delivered) {
    *out += "anomalyd_alert_deliveries_total{receiver=\"" + Escape(sink) +
            "\",outcome=\"delivered\"} " + std::to_string(n) + "\n";
  }
  for (const auto& [sink, n] : a.failed) {
    *out += "anomalyd_alert_deliveries_total{receiver=\"" + Escape(sink) +
            "\",outcome=\"failed\"} " + std::to_string(n) + "\n";
  }
  Header(out, "anomalyd_alert_outbox_notifications", "gauge",
         "Notifications waiting in the outbox for delivery.");
  *out += "anomalyd_alert_outbox_notifications " + std::to_string(a.outbox_pending) + "\n";
  Header(out, "anomalyd_alert_dead_letters", "gauge",
         "Notifications given up after alerts.max_attempts (kept in the outbox).");
  *out += "anomalyd_alert_dead_letters " + std::to_string(a.dead_letters) + "\n";
  Header(out, "anomalyd_alert_incidents", "gauge", "Open incidents by state.");
  *out +=
      "anomalyd_alert_incidents{state=\"pending\"} " + std::to_string(a.incidents_pending) + "\n";
  *out += "anomalyd_alert_incidents{state=\"firing\"} " + std::to_string(a.incidents_firing) + "\n";
  Header(out, "anomalyd_alert_records_skipped_total", "counter",
         "Flagged records that joined no incident, by reason.");
  *out += "anomalyd_alert_records_skipped_total{reason=\"stale\"} " +
          std::to_string(a.skipped_stale) + "\n";
  *out += "anomalyd_alert_records_skipped_total{reason=\"retrain\"} " +
          std::to_string(a.skipped_suppressed) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i]++;
  count_++;
  sum_micro_ += static_cast<uint64_t>(std::llround(std::max(0.0, v) * 1e6));
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load();
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    *out += name + "_bucket{le=\"" + Num(le) + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_sum " + Num(static_cast<double>(sum_micro_.load()) / 1e6) + "\n";
  *out += name + "_count " + std::to_string(count_.load()) + "\n";
}

Metrics::Metrics()
    // Records per scored batch: powers of 4 up to the largest max_batch
    // that makes sense.
    : batch_size_({1, 4, 16, 64, 256, 1024, 4096, 16384}),
      // Request latency from receipt to reply, 50 us .. 1 s.
      latency_({50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
                250e-3, 1.0}) {}

void Metrics::CountTraining(pb::TrainingState outcome) {
  switch (outcome) {
    case pb::SUCCEEDED:
      trainings_succeeded_++;
      break;
    case pb::CANCELLED_TRAINING:
      trainings_cancelled_++;
      break;
    default:
      trainings_failed_++;
  }
}

void Metrics::CountError(pb::ErrorCode code) {
  const size_t i = static_cast<size_t>(code);
  errors_[i < errors_.size() ? i : errors_.size() - 1]++;
}

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  Header(&out, "anomalyd_requests_total", "counter", "Requests received, all endpoints.");
  out += "anomalyd_requests_total " + std::to_string(requests_.load()) + "\n";
  Header(&out, "anomalyd_replies_dropped_total", "counter",
         "Replies not delivered: the client disconnected, or left more than "
         "the reply queue's bound unread.");
  out += "anomalyd_replies_dropped_total " + std::to_string(dropped_replies_.load()) + "\n";
  Header(&out, "anomalyd_requests_scored_inline_total", "counter",
         "Score requests the I/O thread scored itself (small, scorer idle; "
         "batcher.inline_max_records).");
  out += "anomalyd_requests_scored_inline_total " + std::to_string(scored_inline_.load()) + "\n";
  Header(&out, "anomalyd_build_info", "gauge", "Always 1; the version is a label.");
  out += "anomalyd_build_info{version=\"" ANOMALYD_VERSION "\"} 1\n";
  // Every code from the start (0 until it happens), so that rate() and
  // alerts see the first error as an increase.
  Header(&out, "anomalyd_errors_total", "counter", "Requests answered with an error, by code.");
  uint64_t other = 0;  // codes this build does not name (none today)
  for (size_t i = 1; i < errors_.size(); ++i) {
    const uint64_t n = errors_[i].load();
    if (!pb::ErrorCode_IsValid(static_cast<int>(i))) {
      other += n;
      continue;
    }
    out += "anomalyd_errors_total{code=\"" + pb::ErrorCode_Name(static_cast<pb::ErrorCode>(i)) +
           "\"} " + std::to_string(n) + "\n";
  }
  if (other > 0) out += "anomalyd_errors_total{code=\"OTHER\"} " + std::to_string(other) + "\n";
  Header(&out, "anomalyd_records_scored_total", "counter", "Records scored, by stream.");
  for (const auto& s : g.streams) {
    out += "anomalyd_records_scored_total{stream=\"" + Escape(s.stream()) + "\"} " +
           std::to_string(s.scored()) + "\n";
  }
  Header(&out, "anomalyd_records_flagged_total", "counter", "Records flagged, by stream.");
  for (const auto& s : g.streams) {
    out += "anomalyd_records_flagged_total{stream=\"" + Escape(s.stream()) + "\"} " +
           std::to_string(s.flagged()) + "\n";
  }
  Header(&out, "anomalyd_threshold", "gauge", "Current threshold, by stream.");
  for (const auto& s : g.streams) {
    if (s.model_version() == 0) continue;
    out += "anomalyd_threshold{stream=\"" + Escape(s.stream()) + "\"} " + Num(s.threshold()) + "\n";
  }
  Header(&out, "anomalyd_model_version", "gauge", "Serving model version, by stream.");
  for (const auto& s : g.streams) {
    out += "anomalyd_model_version{stream=\"" + Escape(s.stream()) + "\"} " +
           std::to_string(s.model_version()) + "\n";
  }
  Header(&out, "anomalyd_score_p_value", "histogram",
         "Scored records by p-value (share of the model's held-out baseline "
         "scores at or above the record's score), by stream.");
  for (const auto& [stream, c] : g.counts) {
    const std::string label = "stream=\"" + Escape(stream) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kPValueBounds.size(); ++i) {
      cumulative += c.p_value_buckets[i];
      out += "anomalyd_score_p_value_bucket{" + label + ",le=\"" + Num(kPValueBounds[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "anomalyd_score_p_value_bucket{" + label + ",le=\"+Inf\"} " +
           std::to_string(cumulative) + "\n";
    out += "anomalyd_score_p_value_sum{" + label + "} " + Num(c.p_value_sum) + "\n";
    out += "anomalyd_score_p_value_count{" + label + "} " + std::to_string(cumulative) + "\n";
  }
  Header(&out, "anomalyd_model_created_timestamp_seconds", "gauge",
         "When the serving model was trained, Unix seconds, by stream.");
  for (const auto& [stream, us] : g.model_created_us) {
    out += "anomalyd_model_created_timestamp_seconds{stream=\"" + Escape(stream) + "\"} " +
           Num(static_cast<double>(us) / 1e6) + "\n";
  }
  Header(&out, "anomalyd_trainings_total", "counter",
         "Trainings that ended, by outcome (succeeded, failed, cancelled).");
  out += "anomalyd_trainings_total{outcome=\"succeeded\"} " +
         std::to_string(trainings_succeeded_.load()) + "\n";
  out += "anomalyd_trainings_total{outcome=\"failed\"} " +
         std::to_string(trainings_failed_.load()) + "\n";
  out += "anomalyd_trainings_total{outcome=\"cancelled\"} " +
         std::to_string(trainings_cancelled_.load()) + "\n";
  Header(&out, "anomalyd_batch_size_records", "histogram", "Records per scored batch.");
  batch_size_.Render("anomalyd_batch_size_records", &out);
  Header(&out, "anomalyd_request_latency_seconds", "histogram",
         "Time from receiving a score request to sending its reply.");
  latency_.Render("anomalyd_request_latency_seconds", &out);
  Header(&out, "anomalyd_queue_records", "gauge", "Records waiting to be scored.");
  out += "anomalyd_queue_records " + std::to_string(g.queue_records) + "\n";
  Header(&out, "anomalyd_queue_capacity_records", "gauge",
         "Records that may wait to be scored (batcher.queue_records); beyond, BUSY.");
  out += "anomalyd_queue_capacity_records " + std::to_string(g.queue_capacity) + "\n";
  Header(&out, "anomalyd_storage_healthy", "gauge", "1 when the last SQLite commit succeeded.");
  out += std::string("anomalyd_storage_healthy ") + (g.storage_ok ? "1" : "0") + "\n";
  Header(&out, "anomalyd_anomalies_unstored_total", "counter",
         "Flagged records that could not be stored (storage faults).");
  out += "anomalyd_anomalies_unstored_total " + std::to_string(g.anomalies_unstored) + "\n";
  Header(&out, "anomalyd_start_time_seconds", "gauge", "Start time, Unix seconds.");
  out += "anomalyd_start_time_seconds " + Num(static_cast<double>(g.started_us) / 1e6) + "\n";
  if (g.alerts_on) RenderAlerts(g.alerts, &out);
  if (g.process_ok) {
    const ProcessStats& p = g.process;
    Header(&out, "process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
    out += "process_cpu_seconds_total " + Num(p.cpu_seconds) + "\n";
    Header(&out, "process_resident_memory_bytes", "gauge", "Resident memory size, bytes.");
    out += "process_resident_memory_bytes " + std::to_string(p.resident_bytes) + "\n";
    Header(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size, bytes.");
    out += "process_virtual_memory_bytes " + std::to_string(p.virtual_bytes) + "\n";
    Header(&out, "process_open_fds", "gauge", "Open file descriptors.");
    out += "process_open_fds " + std::to_string(p.open_fds) + "\n";
    if (p.max_fds >= 0) {
      Header(&out, "process_max_fds", "gauge", "Limit of open file descriptors.");
      out += "process_max_fds " + std::to_string(p.max_fds) + "\n";
    }
    Header(&out, "process_start_time_seconds", "gauge", "Start time, Unix seconds.");
    out += "process_start_time_seconds " + Num(static_cast<double>(g.started_us) / 1e6) + "\n";
  }
  return out;
}

}  // namespace anomalyd
