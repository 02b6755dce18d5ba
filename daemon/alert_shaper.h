// AlertShaper: turns flagged records into incidents and incidents into a few
// notifications (fired, re-notified, resolved), per stream's AlertShaping
// (common/config.h). Pure: no clock, no I/O; time comes from the records'
// scored times and from Tick's `now`, so a replay after a restart decides
// as the first pass did. docs/alerts.md draws the states:
//
//   (none) --record--> pending --min_count and min_duration--> firing
//   pending --quiet resolve_after_s--> (dropped, no notification)
//   firing --every renotify_every_s--> firing (a repeat notification)
//   firing --quiet resolve_after_s--> resolved (notified, then forgotten)
//
//   AlertShaper shaper(defaults, per_stream);
//   std::vector<AlertShaper::Notification> out;
//   for (const AnomalyRow& r : rows) shaper.Observe(r, names, &out);
//   shaper.Tick(now_us, &out);
//   std::string state = shaper.SaveState();  // kept in the store
//
// Not thread-safe: the alert sender's thread owns it.
#ifndef ANOMALYD_DAEMON_ALERT_SHAPER_H_
#define ANOMALYD_DAEMON_ALERT_SHAPER_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/config.h"
#include "proto/anomalyd.pb.h"
#include "proto/status.h"
#include "storage/types.h"

namespace anomalyd {

class AlertShaper {
 public:
  struct Notification {
    bool resolved = false;  // else firing
    bool repeat = false;    // a re-notification of a firing incident
    int64_t at_us = 0;      // when it was decided (scored or tick time)
    pb::Incident incident;  // as it stands at that moment
  };

  // `defaults` for every stream, `per_stream` for those with their own.
  AlertShaper(AlertShaping defaults, std::map<std::string, AlertShaping> per_stream);
  AlertShaper(const AlertShaper&) = delete;
  AlertShaper& operator=(const AlertShaper&) = delete;

  // New shaping (a reload). Open incidents stay and follow the new rules.
  void SetShaping(AlertShaping defaults, std::map<std::string, AlertShaping> per_stream);
  const AlertShaping& ShapingOf(const std::string& stream) const;

  // Adds one flagged record (REQUIRES: records come in id order).
  // `feature_names` names its features (may be shorter: "f<i>" then). A
  // stream whose shaping is disabled is ignored. Appends what fires.
  void Observe(const AnomalyRow& row, const std::vector<std::string>& feature_names,
               std::vector<Notification>* out);
  // Resolves, drops and re-notifies by the time `now_us`; appends what it
  // decides.
  void Tick(int64_t now_us, std::vector<Notification>* out);

  // The open incidents, as a serialised pb::AlertShaperState.
  std::string SaveState() const;
  // Replaces the open incidents with a saved state ("" = none).
  // CORRUPT when it does not parse.
  Status LoadState(const std::string& state);

  // Brings a firing notification made earlier in this pass up to date with
  // its incident as it stands now (count, worst record), when still open:
  // a burst read in one pass is told whole, not as its first record.
  void Refresh(Notification* n) const;

  size_t pending() const;
  size_t firing() const;

 private:
  using Key = std::tuple<std::string, std::string>;  // stream, feature
  void Resolve(pb::Incident* inc, int64_t at_us, std::vector<Notification>* out);

  AlertShaping defaults_;
  std::map<std::string, AlertShaping> per_stream_;
  uint64_t next_id_ = 1;
  std::map<Key, pb::Incident> open_;
};

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_ALERT_SHAPER_H_
