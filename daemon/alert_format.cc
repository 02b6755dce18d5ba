#include "daemon/alert_format.h"

#include <google/protobuf/util/json_util.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

#include "common/iso_time.h"

namespace anomalyd {
namespace {

// `all_fields`: print fields at their default value too (else left out).
std::string Json(const google::protobuf::Message& m, bool all_fields) {
  google::protobuf::util::JsonPrintOptions o;
  o.always_print_primitive_fields = all_fields;
  o.preserve_proto_field_names = false;  // json_name where set, else lowerCamelCase
  std::string out;
  // Only fails on messages with unknown Any types, which these have not.
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string Summary(const AlertShaper::Notification& n) {
  const pb::Incident& inc = n.incident;
  std::string s = std::to_string(inc.count()) + " flagged record" + (inc.count() == 1 ? "" : "s") +
                  " on stream '" + inc.stream() + "'";
  if (!inc.feature().empty()) s += " led by feature '" + inc.feature() + "'";
  s += " since " + Iso(inc.first_scored_us());
  s += "; highest score " + Number(inc.max_score()) + " (threshold " + Number(inc.threshold()) +
       ", record '" + inc.max_record_id() + "')";
  if (n.resolved) s += "; quiet since " + Iso(inc.last_scored_us());
  return s;
}

}  // namespace

std::string AlertmanagerBody(const AlertShaper::Notification& n, const std::string& instance,
                             const AlertShaping& shaping) {
  const pb::Incident& inc = n.incident;
  pb::AlertmanagerAlert a;
  auto& labels = *a.mutable_labels();
  labels["alertname"] = kAlertName;
  labels["stream"] = inc.stream();
  if (!inc.feature().empty()) labels["feature"] = inc.feature();
  labels["instance"] = instance;
  labels["severity"] = "warning";
  auto& ann = *a.mutable_annotations();
  ann["summary"] = Summary(n);
  ann["incident_id"] = std::to_string(inc.id());
  ann["count"] = std::to_string(inc.count());
  ann["max_score"] = Number(inc.max_score());
  ann["threshold"] = Number(inc.threshold());
  ann["max_record_id"] = inc.max_record_id();
  ann["model_version"] = std::to_string(inc.model_version());
  std::string top;
  for (const std::string& f : inc.top_features()) top += (top.empty() ? "" : ",") + f;
  ann["top_features"] = top;
  a.set_starts_at(Iso(inc.first_scored_us()));
  if (n.resolved) {
    a.set_ends_at(Iso(n.at_us));
  } else if (shaping.renotify_every_s > 0) {
    a.set_ends_at(Iso(n.at_us + static_cast<int64_t>(3 * shaping.renotify_every_s * 1e6)));
  }
  // Empty fields left out: Alertmanager reads "endsAt": "" as a bad time.
  return "[" + Json(a, /*all_fields=*/false) + "]";
}

std::string WebhookBody(const AlertShaper::Notification& n, const std::string& instance) {
  pb::AlertNotification m;
  m.set_format(1);
  m.set_status(n.resolved ? "resolved" : "firing");
  m.set_repeat(n.repeat);
  m.set_sent_us(n.at_us);
  m.set_instance(instance);
  *m.mutable_incident() = n.incident;
  return Json(m, /*all_fields=*/true);
}

std::string HmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

}  // namespace anomalyd
