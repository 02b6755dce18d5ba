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

// Writes the columns of csv_out.h's ScoreColumns (daemon = true) to `out`.
struct OnlineScoreArgs {
  std::string data = "-";
  std::string out = "-";  // "-": stdout
  std::string stream = "default";
  size_t batch = 1024;  // records per request
  bool contributions = false;
};
Status RunOnlineScore(const Endpoints& e, const OnlineScoreArgs& args);

struct QueryArgs {
  std::string since, until;  // any form ParseTime (times.h) takes
  std::string stream;
  double min_score = 0;
  bool has_min_score = false;
  uint32_t limit = 0;
  std::string cursor;
  std::string order = "time";    // time | score
  std::string format = "table";  // table | json | csv
  bool all = false;              // follow cursors to the end
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
// Asks the daemon to re-read its config file and prints the outcome:
// "reloaded PATH" when it took the file. The daemon's error when it
// rejected it (it keeps running on the config it had); FAILED_PRECONDITION
// when it took the file but kept some part of the old one (printed on
// stderr, one line each).
Status RunReload(const Endpoints& e);
// Cancels the running training of `stream`; the serving model stays. With
// `wait`, returns once the training has stopped. NOT_FOUND when the stream
// is not training.
Status RunCancel(const Endpoints& e, const std::string& stream, bool wait);
// Prints alerts as the alerts endpoint publishes them. With `since` (any
// form ParseTime takes), first the stored anomalies scored since then,
// oldest first, from the score endpoint; live alerts already printed are
// skipped (by anomaly id), so the catch-up and the live part neither
// repeat nor leave a gap. Stops after `count` (0: never).
Status RunTail(const Endpoints& e, const std::string& stream, const std::string& since,
               int64_t count);

}  // namespace anomalyd::ctl

#endif  // ANOMALYD_CLIENTS_ANOMALYCTL_ONLINE_H_
