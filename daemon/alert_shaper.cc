#include "daemon/alert_shaper.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace anomalyd {
namespace {

constexpr size_t kTopFeatures = 3;  // what a person reads in one line

int64_t Micros(double seconds) { return static_cast<int64_t>(seconds * 1e6); }

std::string FeatureName(const std::vector<std::string>& names, size_t i) {
  return i < names.size() ? names[i] : "f" + std::to_string(i);
}

// Feature indices of `row`, largest contribution first (at most k).
std::vector<size_t> TopFeatures(const AnomalyRow& row, size_t k) {
  std::vector<size_t> idx(row.contributions.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](size_t a, size_t b) {
    return row.contributions[a] > row.contributions[b];
  });
  idx.resize(k);
  return idx;
}

}  // namespace

AlertShaper::AlertShaper(AlertShaping defaults, std::map<std::string, AlertShaping> per_stream)
    : defaults_(std::move(defaults)), per_stream_(std::move(per_stream)) {}

void AlertShaper::SetShaping(AlertShaping defaults,
                             std::map<std::string, AlertShaping> per_stream) {
  defaults_ = std::move(defaults);
  per_stream_ = std::move(per_stream);
}

const AlertShaping& AlertShaper::ShapingOf(const std::string& stream) const {
  auto it = per_stream_.find(stream);
  return it == per_stream_.end() ? defaults_ : it->second;
}

void AlertShaper::Observe(const AnomalyRow& row, const std::vector<std::string>& feature_names,
                          std::vector<Notification>* out) {
  const AlertShaping& sh = ShapingOf(row.stream);
  if (!sh.enabled) return;
  const std::vector<size_t> top = TopFeatures(row, kTopFeatures);
  const std::string feature =
      sh.group_by == "feature" && !top.empty() ? FeatureName(feature_names, top[0]) : "";
  const Key key{row.stream, feature};
  const int64_t t = row.scored_time_us;
  auto it = open_.find(key);
  // A gap longer than the hysteresis ends the incident even if no Tick ran
  // in between (a replay after a restart): the record opens a new one.
  if (it != open_.end() && t - it->second.last_scored_us() >= Micros(sh.resolve_after_s)) {
    Resolve(&it->second, it->second.last_scored_us() + Micros(sh.resolve_after_s), out);
    open_.erase(it);
    it = open_.end();
  }
  if (it == open_.end()) {
    pb::Incident inc;
    inc.set_id(next_id_++);
    inc.set_stream(row.stream);
    inc.set_feature(feature);
    inc.set_first_scored_us(t);
    inc.set_max_score(-std::numeric_limits<double>::infinity());
    it = open_.emplace(key, std::move(inc)).first;
  }
  pb::Incident& inc = it->second;
  inc.set_count(inc.count() + 1);
  inc.set_last_scored_us(std::max(inc.last_scored_us(), t));
  if (row.score > inc.max_score()) {
    inc.set_max_score(row.score);
    inc.set_max_record_id(row.record_id);
    inc.set_threshold(row.threshold);
    inc.set_model_version(row.model_version);
    inc.clear_top_features();
    for (size_t i : top) inc.add_top_features(FeatureName(feature_names, i));
  }
  if (!inc.firing() && inc.count() >= sh.min_count &&
      inc.last_scored_us() - inc.first_scored_us() >= Micros(sh.min_duration_s)) {
    inc.set_firing(true);
    inc.set_fired_us(t);
    inc.set_notified_us(t);
    out->push_back(Notification{false, false, t, inc});
  }
}

void AlertShaper::Tick(int64_t now_us, std::vector<Notification>* out) {
  for (auto it = open_.begin(); it != open_.end();) {
    pb::Incident& inc = it->second;
    const AlertShaping& sh = ShapingOf(inc.stream());
    if (now_us - inc.last_scored_us() >= Micros(sh.resolve_after_s)) {
      Resolve(&inc, now_us, out);
      it = open_.erase(it);
      continue;
    }
    if (inc.firing() && sh.renotify_every_s > 0 &&
        now_us - inc.notified_us() >= Micros(sh.renotify_every_s)) {
      inc.set_notified_us(now_us);
      out->push_back(Notification{false, true, now_us, inc});
    }
    ++it;
  }
}

void AlertShaper::Resolve(pb::Incident* inc, int64_t at_us, std::vector<Notification>* out) {
  if (!inc->firing()) return;  // a pending incident ends unannounced
  inc->set_notified_us(at_us);
  out->push_back(Notification{true, false, at_us, *inc});
}

std::string AlertShaper::SaveState() const {
  pb::AlertShaperState st;
  st.set_next_incident_id(next_id_);
  for (const auto& [key, inc] : open_) *st.add_incidents() = inc;
  return st.SerializeAsString();
}

Status AlertShaper::LoadState(const std::string& state) {
  pb::AlertShaperState st;
  if (!st.ParseFromString(state)) {
    return Status::Corrupt("the saved alert state does not parse");
  }
  open_.clear();
  next_id_ = std::max<uint64_t>(1, st.next_incident_id());
  for (const pb::Incident& inc : st.incidents()) {
    open_[Key{inc.stream(), inc.feature()}] = inc;
  }
  return Status::OK();
}

void AlertShaper::Refresh(Notification* n) const {
  if (n->resolved) return;
  auto it = open_.find(Key{n->incident.stream(), n->incident.feature()});
  if (it == open_.end() || it->second.id() != n->incident.id()) return;
  n->incident = it->second;
}

size_t AlertShaper::pending() const {
  return std::count_if(open_.begin(), open_.end(),
                       [](const auto& kv) { return !kv.second.firing(); });
}

size_t AlertShaper::firing() const { return open_.size() - pending(); }

}  // namespace anomalyd
