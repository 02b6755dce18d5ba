// anomalyd's configuration file (TOML). config/anomalyd.toml documents every
// key with its default. Unknown keys and bad values are errors that name the
// key ("training.batch_size: must be >= 1").
#ifndef ANOMALYD_COMMON_CONFIG_H_
#define ANOMALYD_COMMON_CONFIG_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/endpoints.h"
#include "engine/recalibrator.h"
#include "model/model.h"
#include "proto/status.h"

namespace anomalyd {

// [daemon]
struct DaemonOptions {
  std::string state_dir = "state";  // SQLite file and bundles live here
  std::string log_level = "info";   // trace|debug|info|warn|error|off
  int threads = 0;                  // scoring threads of LibTorch; 0 = cores
  // Trainings that may run at once (each is a thread and a model in
  // memory); a retrain beyond gets BUSY.
  uint32_t max_trainings = 2;
  // Streams without a model whose last training outcome status still shows
  // (a failed retrain under a new name); the oldest are forgotten beyond.
  uint32_t max_training_states = 64;
};

// [endpoints]: ZeroMQ addresses; "" disables one (not score/control).
// Defaults: tcp://127.0.0.1 on the ports of proto's DefaultPort.
struct EndpointOptions {
  std::string score = DefaultEndpoint(pb::DEFAULT_PORT_SCORE);
  std::string ingest = DefaultEndpoint(pb::DEFAULT_PORT_INGEST);
  std::string control = DefaultEndpoint(pb::DEFAULT_PORT_CONTROL);
  std::string alerts = DefaultEndpoint(pb::DEFAULT_PORT_ALERTS);
  // Prometheus text format over HTTP (GET /metrics); "" turns it off.
  std::string metrics = DefaultEndpoint(pb::DEFAULT_PORT_METRICS);
};

// [batcher]
struct BatcherOptions {
  uint32_t max_batch = 4096;  // records scored as one tensor, at most
  // How long a batch below max_batch may wait for more records. 0: score
  // as soon as the scorer is free (batches then grow with the load).
  uint32_t max_delay_us = 0;
  uint64_t queue_records = 1 << 18;  // records waiting; beyond: BUSY
  // A request of at most this many records that finds the scorer idle and
  // no other request waiting is scored on the I/O thread (lower latency);
  // 0: always through the scorer thread.
  uint32_t inline_max_records = 64;
};

// [limits]
struct LimitOptions {
  uint64_t max_message_bytes = 16 << 20;
  uint32_t max_records_per_request = 65536;
  uint32_t default_query_limit = 100;
  // A query page stops before its rows pass this many bytes (at least one
  // row is always sent); its cursor continues after the last row sent.
  uint64_t max_reply_bytes = 16 << 20;
  // Replies of 4 KiB or more queued for one client that does not read
  // them; a reply beyond is dropped and counted (replies_dropped_total).
  uint64_t max_client_reply_bytes = 64 << 20;
  // Largest CSV a retrain reads (fstat'ed before reading); TOO_LARGE beyond.
  uint64_t max_csv_bytes = 256 << 20;
  // Anomaly queries and model listings waiting for the query thread;
  // beyond, BUSY.
  uint32_t max_pending_queries = 64;
};

// [storage]
struct StorageOptions {
  std::string path;  // "" = <state_dir>/anomalyd.db
  // Where the store is, as a URL (storage/open.h): "sqlite:///abs/file.db",
  // "sqlite:rel/file.db", or a bare path. "" = SQLite at `path`. At most
  // one of path and url is set.
  std::string url;
  std::string synchronous = "normal";  // off | normal | full
  // commit: a reply leaves after its flagged records are committed;
  // async: replies first, commits right after (lower latency, a crash can
  // lose anomalies that were already reported as flagged).
  std::string durability = "commit";
  int64_t reservoir_capacity = 10000;  // normal records kept per stream
  // Share of normal records offered to the reservoir (uniform thinning keeps
  // the sample uniform while sparing the writer most of the traffic).
  double reservoir_rate = 0.05;
  double retention_days = 0;   // prune anomalies older; 0 = keep
  int64_t retention_rows = 0;  // keep at most this many; 0 = no bound
};

// [auth]: CURVE encryption and client keys on the ZeroMQ endpoints, checked
// through ZAP (RFC 27). Key files: common/curve_keys.h.
struct AuthOptions {
  bool enabled = false;
  std::string server_secret_key;  // NAME.key_secret; no group/other access
  // NAME.key files of the clients allowed on score, ingest and alerts.
  std::string clients_dir;
  // Clients allowed on control (and, being trusted, on the others too);
  // "" = the clients_dir ones.
  std::string control_clients_dir;
  // The endpoints that require CURVE (metrics is HTTP and cannot).
  std::vector<std::string> endpoints = {"score", "ingest", "control", "alerts"};
  // The metrics endpoint (plain HTTP) takes neither CURVE nor ZAP: it has
  // its own rules. A file holding a bearer token that GET /metrics must
  // send ("Authorization: Bearer TOKEN"); "" = none. Mode 0600.
  std::string metrics_token_file;
  // Source IP addresses allowed on the metrics endpoint; empty = any.
  std::vector<std::string> metrics_allow;
};

// How one stream's flagged records become alerts: [alerts] sets it for
// every stream, [streams.NAME.alerts] a stream's own (keys not given there
// come from [alerts]). docs/alerts.md explains the states.
struct AlertShaping {
  bool enabled = true;  // false: this stream's anomalies raise no alerts
  // "stream": one incident per stream; "feature": one per stream and top
  // feature (the feature with the largest contribution).
  std::string group_by = "stream";
  // An incident fires once it has this many flagged records and has lasted
  // min_duration_s (from its first record); before that it is pending.
  uint32_t min_count = 1;
  double min_duration_s = 0;
  // Hysteresis: an incident resolves once no flagged record joined it for
  // this long (a pending one is dropped silently).
  double resolve_after_s = 300;
  // A firing incident is notified again this often (0: never).
  double renotify_every_s = 3600;
  // Flagged records scored in the first seconds after a retrained model
  // starts serving count toward no incident.
  double suppress_after_retrain_s = 120;
};

// [alerts]: delivery of alerts to Prometheus Alertmanager and webhooks,
// from a durable outbox in the store. No receiver: nothing is delivered
// (the ZeroMQ PUB endpoint works either way).
struct AlertOptions {
  // Alertmanager's base URL (its v2 API under /api/v2/alerts), e.g.
  // "http://127.0.0.1:9093"; "" = none.
  std::string alertmanager_url;
  // URLs that get each notification as a JSON POST.
  std::vector<std::string> webhooks;
  // A file holding the HMAC-SHA256 key of webhook signatures (header
  // X-Anomalyd-Signature: sha256=HEX); "" = unsigned. Mode 0600.
  std::string webhook_secret_file;
  double timeout_s = 5;        // per delivery attempt (connect + reply)
  double retry_initial_s = 1;  // first retry after this; doubles each time
  double retry_max_s = 300;    // longest wait between two attempts
  // Failed attempts after which a notification becomes a dead letter.
  uint32_t max_attempts = 10;
  // Anomalies scored longer ago than this when the sender first sees them
  // (after a long outage of the daemon) raise no alert.
  double max_age_s = 86400;
  double poll_interval_s = 0.25;  // how often the sender looks for work
  AlertShaping shaping;           // the keys of AlertShaping, in [alerts]
};

// [streams.NAME]
struct StreamConfig {
  std::string baseline;  // CSV trained at start-up when NAME has no model
  AlertShaping alerts;   // [streams.NAME.alerts]; [alerts]' by default
};

struct Config {
  // [model], [training] and [threshold]: how models are trained and scored.
  TrainOptions train;
  DaemonOptions daemon;
  EndpointOptions endpoints;
  BatcherOptions batcher;
  LimitOptions limits;
  StorageOptions storage;
  RecalibrationOptions recalibration;  // its .threshold mirrors [threshold]
  AuthOptions auth;
  AlertOptions alerts;
  std::map<std::string, StreamConfig> streams;
};

// Command-line overrides: "section.key=value" (or "streams.NAME.key=value"),
// the value written as in TOML; a bare word that is not a number, boolean
// or array is taken as a string (daemon.log_level=debug).

// Parses TOML text; `source` names it in messages. On failure *config is
// unspecified and the status is INVALID_ARGUMENT naming the key (or the
// line and column of a syntax error).
Status ParseConfig(std::string_view text, const std::string& source, Config* config,
                   const std::vector<std::string>& overrides = {});

// `s` as a TOML basic string, quotes included: for building overrides
// from command-line values (`--state-dir`) that may hold any character.
std::string TomlString(std::string_view s);

// Reads and parses a file. IO_ERROR when it cannot be read.
Status LoadConfig(const std::string& path, Config* config,
                  const std::vector<std::string>& overrides = {});

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_CONFIG_H_
