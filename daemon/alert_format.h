// The bodies of alert notifications as each receiver takes them: Prometheus
// Alertmanager's API v2 (a JSON array of postable alerts) and our webhook
// JSON (pb::AlertNotification), and the HMAC that signs webhook bodies.
// Pure functions; docs/alerts.md shows both bodies.
#ifndef ANOMALYD_DAEMON_ALERT_FORMAT_H_
#define ANOMALYD_DAEMON_ALERT_FORMAT_H_

#include <cstdint>
#include <string>

#include "common/config.h"
#include "daemon/alert_shaper.h"

namespace anomalyd {

// The alertname label of every alert anomalyd sends.
inline constexpr char kAlertName[] = "AnomalydIncident";

// POST /api/v2/alerts body for one notification; times as Iso
// (common/iso_time.h), which is RFC 3339. A firing alert ends (in
// Alertmanager's eyes) 3 x renotify_every_s after it was sent, so that
// Alertmanager resolves it by itself if the daemon stops repeating it;
// with renotify_every_s = 0 it carries no end (Alertmanager's
// resolve_timeout applies). A resolved one ends when it resolved.
std::string AlertmanagerBody(const AlertShaper::Notification& n, const std::string& instance,
                             const AlertShaping& shaping);

// The webhook body: pb::AlertNotification in protobuf's JSON mapping, every
// field present.
std::string WebhookBody(const AlertShaper::Notification& n, const std::string& instance);

// HMAC-SHA256 of `body` under `key`, as 64 lowercase hex digits.
std::string HmacSha256Hex(const std::string& key, const std::string& body);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_ALERT_FORMAT_H_
