// The subcommands of anomalyctl that talk to a running anomalyd.
#ifndef ANOMALYD_CLIENTS_ANOMALYCTL_ONLINE_H_
#define ANOMALYD_CLIENTS_ANOMALYCTL_ONLINE_H_

#include <cstdint>
#include <string>

#include "common/curve_keys.h"
#include "common/endpoints.h"
#include "proto/status.h"

namespace anomalyd::ctl {

struct Endpoints {
  std::string score = DefaultEndpoint(pb::DEFAULT_PORT_SCORE);
  std::string control = DefaultEndpoint(pb::DEFAULT_PORT_CONTROL);
  std::string alerts = DefaultEndpoint(pb::DEFAULT_PORT_ALERTS);
  int timeout_ms = 30000;
  CurveClientKeys curve;  // empty: plaintext endpoints
};

Status RunStatus(const Endpoints& e, bool json);

struct OnlineScoreArgs {
  std::string data = "-";
  std::string stream = "default";
  size_t batch = 1024;     // records per request
  bool contributions = false;
};
Status RunOnlineScore(const Endpoints& e, const OnlineScoreArgs& args);

struct QueryArgs {
  std::string since, until;  // "-1h", "2026-11-25T10:00:00Z", or Unix seconds
  std::string stream;
  double min_score = 0;
  bool has_min_score = false;
  uint32_t limit = 0;
  std::string cursor;
  std::string order = "time";   // time | score
  std::string format = "table"; // table | json | csv
  bool all = false;             // follow cursors to the end
  bool event_time = false;
};
Status RunQuery(const Endpoints& e, const QueryArgs& args);

struct RetrainArgs {
  std::string stream = "default";
  std::string csv;
  bool from_reservoir = false;
  bool wait = false;
};
Status RunRetrain(const Endpoints& e, const RetrainArgs& args);

Status RunModels(const Endpoints& e, const std::string& stream, bool json);
Status RunRollback(const Endpoints& e, const std::string& stream, uint32_t to);

struct CalibrateArgs {
  std::string stream = "default";
  std::string method = "quantile";
  double contamination = 0, risk = 0, value = 0;
  bool force = false;  // fixed: apply a value that flags most normal records
};
Status RunCalibrate(const Endpoints& e, const CalibrateArgs& args);
Status RunReload(const Endpoints& e);
Status RunTail(const Endpoints& e, const std::string& stream, int64_t count);

// Parses "-1h", "30m" (that long ago), "2026-11-25T10:00:00Z" (UTC) or
// Unix seconds into microseconds since the epoch.
Status ParseTime(const std::string& s, int64_t now_us, int64_t* out_us);

// Formats microseconds since the epoch as UTC ISO 8601 with milliseconds,
// "2026-03-01T12:00:00.250Z", rounding down (-1 is 23:59:59.999 the day
// before). Times outside years 0000-9999 come out as the plain number with
// a "us" suffix ("9223372036854775807us"). Used for every time anomalyctl
// prints; exposed for its test.
std::string Iso(int64_t us);

}  // namespace anomalyd::ctl

#endif  // ANOMALYD_CLIENTS_ANOMALYCTL_ONLINE_H_
