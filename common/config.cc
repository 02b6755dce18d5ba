#include "common/config.h"

#include <toml++/toml.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/stream_name.h"  // kMaxStreamName

namespace anomalyd {
namespace {

// Reads the keys of one TOML table, remembering which it consumed so that
// anything left over is reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string name) : table_(table), name_(std::move(name)) {}

  Status Double(const char* key, double* out, double min, double max) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    std::optional<double> v = n->value<double>();  // accepts integers too
    if (!v) return Bad(key, "must be a number");
    if (!(*v >= min && *v <= max)) {
      return Bad(key, "must be in [" + Num(min) + ", " + Num(max) + "]");
    }
    *out = *v;
    return Status::OK();
  }
  Status Float(const char* key, float* out, double min, double max) {
    double v = *out;
    ANOMALYD_RETURN_IF_ERROR(Double(key, &v, min, max));
    *out = static_cast<float>(v);
    return Status::OK();
  }
  template <typename T>
  Status Unsigned(const char* key, T* out, uint64_t min, uint64_t max) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    std::optional<int64_t> v = n->value_exact<int64_t>();
    if (!v) return Bad(key, "must be an integer");
    if (*v < 0 || static_cast<uint64_t>(*v) < min || static_cast<uint64_t>(*v) > max) {
      return Bad(key, "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    *out = static_cast<T>(*v);
    return Status::OK();
  }
  Status Bool(const char* key, bool* out) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    std::optional<bool> v = n->value_exact<bool>();
    if (!v) return Bad(key, "must be true or false");
    *out = *v;
    return Status::OK();
  }
  Status String(const char* key, std::string* out) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    std::optional<std::string> v = n->value_exact<std::string>();
    if (!v) return Bad(key, "must be a string");
    *out = *v;
    return Status::OK();
  }
  // A string key parsed by `parse` (e.g. ParseActivation).
  template <typename E>
  Status Enum(const char* key, E* out, Status (*parse)(const std::string&, E*)) {
    std::string s;
    if (Find(key) == nullptr) return Status::OK();
    ANOMALYD_RETURN_IF_ERROR(String(key, &s));
    Status st = parse(s, out);
    return st.ok() ? st : Bad(key, st.message());
  }
  Status UnsignedList(const char* key, std::vector<uint32_t>* out, uint32_t min, uint32_t max) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    const toml::array* a = n->as_array();
    if (a == nullptr) return Bad(key, "must be an array of integers");
    std::vector<uint32_t> v;
    for (const toml::node& e : *a) {
      std::optional<int64_t> x = e.value_exact<int64_t>();
      if (!x || *x < min || *x > max) {
        return Bad(key, "entries must be integers in [" + std::to_string(min) + ", " +
                            std::to_string(max) + "]");
      }
      v.push_back(static_cast<uint32_t>(*x));
    }
    *out = std::move(v);
    return Status::OK();
  }

  Status StringList(const char* key, std::vector<std::string>* out) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    const toml::array* a = n->as_array();
    if (a == nullptr) return Bad(key, "must be an array of strings");
    std::vector<std::string> v;
    for (const toml::node& e : *a) {
      std::optional<std::string> x = e.value_exact<std::string>();
      if (!x) return Bad(key, "must be an array of strings");
      v.push_back(*x);
    }
    *out = std::move(v);
    return Status::OK();
  }

  // INVALID_ARGUMENT naming the first key that no getter asked for.
  Status CheckUnknown() const {
    if (table_ == nullptr) return Status::OK();
    for (const auto& [k, v] : *table_) {
      if (!used_.count(std::string(k.str()))) {
        return Status::InvalidArgument("unknown key '" + name_ + "." + std::string(k.str()) + "'");
      }
    }
    return Status::OK();
  }

  // The node of `key` (nullptr when absent), marked as known.
  const toml::node* Find(const char* key) {
    used_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }
  // INVALID_ARGUMENT "table.key: why".
  Status Bad(const char* key, const std::string& why) const {
    return Status::InvalidArgument(name_ + "." + key + ": " + why);
  }

 private:
  static std::string Num(double v) {
    std::ostringstream ss;
    ss << v;
    return ss.str();
  }

  const toml::table* table_;
  std::string name_;
  std::set<std::string> used_;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

Status ReadModel(TableReader& r, ModelOptions* m) {
  ANOMALYD_RETURN_IF_ERROR(r.UnsignedList("hidden", &m->hidden, 1, 65536));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("latent", &m->latent, 0, 1024));
  ANOMALYD_RETURN_IF_ERROR(r.Enum("activation", &m->activation, ParseActivation));
  ANOMALYD_RETURN_IF_ERROR(r.Enum("likelihood", &m->likelihood, ParseLikelihood));
  ANOMALYD_RETURN_IF_ERROR(r.Float("beta", &m->beta, 0, 1e6));
  ANOMALYD_RETURN_IF_ERROR(r.Float("score_beta", &m->score_beta, -1, 1e6));
  ANOMALYD_RETURN_IF_ERROR(r.Float("density_weight", &m->density_weight, 0, 1e6));
  ANOMALYD_RETURN_IF_ERROR(r.Enum("normaliser", &m->normaliser, ParseNormaliserKind));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("ensemble", &m->ensemble, 1, 16));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("samples", &m->samples, 1, 1000));
  return r.CheckUnknown();
}

Status ReadTraining(TableReader& r, TrainOptions* t) {
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_epochs", &t->max_epochs, 0, 100000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("batch_size", &t->batch_size, 1, 1 << 20));
  ANOMALYD_RETURN_IF_ERROR(r.Double("learning_rate", &t->learning_rate, 1e-9, 10));
  ANOMALYD_RETURN_IF_ERROR(r.Double("weight_decay", &t->weight_decay, 0, 10));
  ANOMALYD_RETURN_IF_ERROR(r.Double("validation_split", &t->validation_split, 0, 0.49));
  ANOMALYD_RETURN_IF_ERROR(r.Double("holdout_split", &t->holdout_split, 0.01, 0.49));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("patience", &t->patience, 0, 100000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("kl_warmup_epochs", &t->kl_warmup_epochs, 0, 100000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("seed", &t->seed, 0, std::numeric_limits<int64_t>::max()));
  ANOMALYD_RETURN_IF_ERROR(r.String("device", &t->device));
  return r.CheckUnknown();
}

Status ReadThreshold(TableReader& r, ThresholdOptions* t) {
  ANOMALYD_RETURN_IF_ERROR(r.Enum("method", &t->method, ParseThresholdMethod));
  ANOMALYD_RETURN_IF_ERROR(r.Double("contamination", &t->contamination, 1e-9, 0.5));
  ANOMALYD_RETURN_IF_ERROR(r.Double("risk", &t->risk, 1e-12, 0.5));
  ANOMALYD_RETURN_IF_ERROR(r.Double("initial_quantile", &t->initial_quantile, 0.5, 0.9999));
  ANOMALYD_RETURN_IF_ERROR(r.Double("value", &t->fixed_value, -kInf, kInf));
  return r.CheckUnknown();
}

Status ReadDaemon(TableReader& r, DaemonOptions* d) {
  ANOMALYD_RETURN_IF_ERROR(r.String("state_dir", &d->state_dir));
  ANOMALYD_RETURN_IF_ERROR(r.String("log_level", &d->log_level));
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
  if (!kLevels.count(d->log_level)) {
    return Status::InvalidArgument(
        "daemon.log_level: must be one of trace, "
        "debug, info, warn, error, off");
  }
  if (d->state_dir.empty()) {
    return Status::InvalidArgument("daemon.state_dir: must not be empty");
  }
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("threads", &d->threads, 0, 1024));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_trainings", &d->max_trainings, 1, 64));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_training_states", &d->max_training_states, 0, 1 << 20));
  return r.CheckUnknown();
}

Status ReadEndpoints(TableReader& r, EndpointOptions* e) {
  ANOMALYD_RETURN_IF_ERROR(r.String("score", &e->score));
  ANOMALYD_RETURN_IF_ERROR(r.String("ingest", &e->ingest));
  ANOMALYD_RETURN_IF_ERROR(r.String("control", &e->control));
  ANOMALYD_RETURN_IF_ERROR(r.String("alerts", &e->alerts));
  ANOMALYD_RETURN_IF_ERROR(r.String("metrics", &e->metrics));
  if (e->score.empty()) return Status::InvalidArgument("endpoints.score: must not be empty");
  if (e->control.empty()) return Status::InvalidArgument("endpoints.control: must not be empty");
  return r.CheckUnknown();
}

Status ReadBatcher(TableReader& r, BatcherOptions* b) {
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_batch", &b->max_batch, 1, 1 << 20));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_delay_us", &b->max_delay_us, 0, 10'000'000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("queue_records", &b->queue_records, 1, 1ull << 32));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("inline_max_records", &b->inline_max_records, 0, 1 << 20));
  return r.CheckUnknown();
}

Status ReadLimits(TableReader& r, LimitOptions* l) {
  ANOMALYD_RETURN_IF_ERROR(
      r.Unsigned("max_message_bytes", &l->max_message_bytes, 1024, 1ull << 31));
  ANOMALYD_RETURN_IF_ERROR(
      r.Unsigned("max_records_per_request", &l->max_records_per_request, 1, 1 << 24));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("default_query_limit", &l->default_query_limit, 1, 10000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_reply_bytes", &l->max_reply_bytes, 4096, 1ull << 31));
  ANOMALYD_RETURN_IF_ERROR(
      r.Unsigned("max_client_reply_bytes", &l->max_client_reply_bytes, 4096, 1ull << 40));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_csv_bytes", &l->max_csv_bytes, 1, 1ull << 40));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_pending_queries", &l->max_pending_queries, 1, 1 << 20));
  return r.CheckUnknown();
}

Status ReadStorage(TableReader& r, StorageOptions* s) {
  ANOMALYD_RETURN_IF_ERROR(r.String("path", &s->path));
  ANOMALYD_RETURN_IF_ERROR(r.String("url", &s->url));
  if (!s->path.empty() && !s->url.empty()) {
    return Status::InvalidArgument(
        "storage.path and storage.url: set one of them, not both "
        "(storage.url = \"sqlite:///abs/file.db\" names a SQLite file too)");
  }
  ANOMALYD_RETURN_IF_ERROR(r.String("synchronous", &s->synchronous));
  if (s->synchronous != "off" && s->synchronous != "normal" && s->synchronous != "full") {
    return Status::InvalidArgument("storage.synchronous: must be off, normal or full");
  }
  ANOMALYD_RETURN_IF_ERROR(r.String("durability", &s->durability));
  if (s->durability != "commit" && s->durability != "async") {
    return Status::InvalidArgument("storage.durability: must be commit or async");
  }
  ANOMALYD_RETURN_IF_ERROR(
      r.Unsigned("reservoir_capacity", &s->reservoir_capacity, 1, 100'000'000));
  ANOMALYD_RETURN_IF_ERROR(r.Double("reservoir_rate", &s->reservoir_rate, 0, 1));
  ANOMALYD_RETURN_IF_ERROR(r.Double("retention_days", &s->retention_days, 0, 1e6));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("retention_rows", &s->retention_rows, 0, 1ull << 40));
  return r.CheckUnknown();
}

Status ReadRecalibration(TableReader& r, RecalibrationOptions* o) {
  ANOMALYD_RETURN_IF_ERROR(r.Bool("enabled", &o->enabled));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("every_scores", &o->every_scores, 1, 1ull << 40));
  ANOMALYD_RETURN_IF_ERROR(r.Double("every_seconds", &o->every_seconds, 0, 1e9));
  ANOMALYD_RETURN_IF_ERROR(r.Double("min_interval_seconds", &o->min_interval_seconds, 0, 1e9));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("window", &o->window, 10, 100'000'000));
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("min_samples", &o->min_samples, 1, 100'000'000));
  ANOMALYD_RETURN_IF_ERROR(r.Double("max_step", &o->max_step, 0, 10));
  ANOMALYD_RETURN_IF_ERROR(r.Double("max_drift", &o->max_drift, 0, 100));
  if (o->min_samples > o->window) {
    return Status::InvalidArgument("recalibration.min_samples: must be <= recalibration.window");
  }
  return r.CheckUnknown();
}

Status ReadAuth(TableReader& r, AuthOptions* a) {
  ANOMALYD_RETURN_IF_ERROR(r.Bool("enabled", &a->enabled));
  ANOMALYD_RETURN_IF_ERROR(r.String("server_secret_key", &a->server_secret_key));
  ANOMALYD_RETURN_IF_ERROR(r.String("clients_dir", &a->clients_dir));
  ANOMALYD_RETURN_IF_ERROR(r.String("control_clients_dir", &a->control_clients_dir));
  ANOMALYD_RETURN_IF_ERROR(r.StringList("endpoints", &a->endpoints));
  static const std::set<std::string> kCurveEndpoints = {"score", "ingest", "control", "alerts"};
  for (const std::string& e : a->endpoints) {
    if (!kCurveEndpoints.count(e)) {
      return Status::InvalidArgument("auth.endpoints: '" + e +
                                     "' is not one of score, ingest, control, alerts");
    }
  }
  ANOMALYD_RETURN_IF_ERROR(r.String("metrics_token_file", &a->metrics_token_file));
  ANOMALYD_RETURN_IF_ERROR(r.StringList("metrics_allow", &a->metrics_allow));
  if (a->enabled && a->server_secret_key.empty()) {
    return Status::InvalidArgument("auth.server_secret_key: must be set when auth is enabled");
  }
  if (a->enabled && a->clients_dir.empty()) {
    return Status::InvalidArgument("auth.clients_dir: must be set when auth is enabled");
  }
  return r.CheckUnknown();
}

Status ReadShaping(TableReader& r, AlertShaping* a) {
  ANOMALYD_RETURN_IF_ERROR(r.Bool("enabled", &a->enabled));
  ANOMALYD_RETURN_IF_ERROR(r.String("group_by", &a->group_by));
  if (a->group_by != "stream" && a->group_by != "feature") {
    return r.Bad("group_by", "must be stream or feature");
  }
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("min_count", &a->min_count, 1, 1u << 30));
  ANOMALYD_RETURN_IF_ERROR(r.Double("min_duration_s", &a->min_duration_s, 0, 1e7));
  ANOMALYD_RETURN_IF_ERROR(r.Double("resolve_after_s", &a->resolve_after_s, 1, 1e7));
  ANOMALYD_RETURN_IF_ERROR(r.Double("renotify_every_s", &a->renotify_every_s, 0, 1e8));
  ANOMALYD_RETURN_IF_ERROR(
      r.Double("suppress_after_retrain_s", &a->suppress_after_retrain_s, 0, 1e7));
  return Status::OK();
}

Status CheckHttpUrl(TableReader& r, const char* key, const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return r.Bad(key, "must start with http:// or https://");
  }
  return Status::OK();
}

Status ReadAlerts(TableReader& r, AlertOptions* a) {
  ANOMALYD_RETURN_IF_ERROR(r.String("alertmanager_url", &a->alertmanager_url));
  if (!a->alertmanager_url.empty()) {
    ANOMALYD_RETURN_IF_ERROR(CheckHttpUrl(r, "alertmanager_url", a->alertmanager_url));
  }
  ANOMALYD_RETURN_IF_ERROR(r.StringList("webhooks", &a->webhooks));
  for (const std::string& url : a->webhooks) {
    ANOMALYD_RETURN_IF_ERROR(CheckHttpUrl(r, "webhooks", url));
  }
  ANOMALYD_RETURN_IF_ERROR(r.String("webhook_secret_file", &a->webhook_secret_file));
  ANOMALYD_RETURN_IF_ERROR(r.Double("timeout_s", &a->timeout_s, 0.01, 600));
  ANOMALYD_RETURN_IF_ERROR(r.Double("retry_initial_s", &a->retry_initial_s, 0.01, 86400));
  ANOMALYD_RETURN_IF_ERROR(r.Double("retry_max_s", &a->retry_max_s, 0.01, 86400));
  if (a->retry_max_s < a->retry_initial_s) {
    return r.Bad("retry_max_s", "must be >= alerts.retry_initial_s");
  }
  ANOMALYD_RETURN_IF_ERROR(r.Unsigned("max_attempts", &a->max_attempts, 1, 1000000));
  ANOMALYD_RETURN_IF_ERROR(r.Double("max_age_s", &a->max_age_s, 1, 1e9));
  ANOMALYD_RETURN_IF_ERROR(r.Double("poll_interval_s", &a->poll_interval_s, 0.01, 60));
  ANOMALYD_RETURN_IF_ERROR(ReadShaping(r, &a->shaping));
  return r.CheckUnknown();
}

Status ReadStreams(const toml::table* t, const AlertShaping& shaping,
                   std::map<std::string, StreamConfig>* out) {
  if (t == nullptr) return Status::OK();
  for (const auto& [name, node] : *t) {
    const std::string stream(name.str());
    if (stream.empty() || stream.size() > kMaxStreamName) {
      return Status::InvalidArgument("streams: names must be 1.." + std::to_string(kMaxStreamName) +
                                     " bytes");
    }
    if (!node.is_table()) {
      return Status::InvalidArgument("streams." + stream + ": must be a table");
    }
    TableReader r(node.as_table(), "streams." + stream);
    StreamConfig sc;
    sc.alerts = shaping;
    ANOMALYD_RETURN_IF_ERROR(r.String("baseline", &sc.baseline));
    if (const toml::node* a = r.Find("alerts")) {
      if (!a->is_table()) {
        return Status::InvalidArgument("streams." + stream + ".alerts: must be a table");
      }
      TableReader ar(a->as_table(), "streams." + stream + ".alerts");
      ANOMALYD_RETURN_IF_ERROR(ReadShaping(ar, &sc.alerts));
      ANOMALYD_RETURN_IF_ERROR(ar.CheckUnknown());
    }
    ANOMALYD_RETURN_IF_ERROR(r.CheckUnknown());
    (*out)[stream] = sc;
  }
  return Status::OK();
}

const toml::table* Section(const toml::table& root, const char* name, Status* st) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    *st = Status::InvalidArgument(std::string("'") + name + "' must be a table");
  }
  return n->as_table();
}

// Merges one "a.b.c=value" override into `root`.
Status ApplyOverride(const std::string& o, toml::table* root) {
  const size_t eq = o.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Status::InvalidArgument("override '" + o + "': expected section.key=value");
  }
  const std::string path = o.substr(0, eq);
  std::string value = o.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (parts.size() < 2) {
    return Status::InvalidArgument("override '" + o + "': expected section.key=value");
  }
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};  // a bare word: a string
  }
  toml::table* t = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* n = t->get(parts[i]);
    if (n == nullptr) {
      t->insert(parts[i], toml::table{});
      n = t->get(parts[i]);
    }
    if (!n->is_table()) {
      return Status::InvalidArgument("override '" + o + "': " + parts[i] + " is not a table");
    }
    t = n->as_table();
  }
  t->insert_or_assign(parts.back(), *parsed.get("v"));
  return Status::OK();
}

}  // namespace

Status ParseConfig(std::string_view text, const std::string& source, Config* config,
                   const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream ss;
    ss << source << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return Status::InvalidArgument(ss.str());
  }
  for (const std::string& o : overrides) {
    ANOMALYD_RETURN_IF_ERROR(ApplyOverride(o, &root));
  }
  Config c;
  Status st;
  static const std::set<std::string> kSections = {
      "model",  "training", "threshold",     "daemon",  "endpoints", "batcher",
      "limits", "storage",  "recalibration", "streams", "auth",      "alerts"};
  for (const auto& [k, v] : root) {
    if (!kSections.count(std::string(k.str()))) {
      return Status::InvalidArgument(source + ": unknown key '" + std::string(k.str()) + "'");
    }
  }
  TableReader model(Section(root, "model", &st), "model");
  TableReader training(Section(root, "training", &st), "training");
  TableReader threshold(Section(root, "threshold", &st), "threshold");
  TableReader daemon(Section(root, "daemon", &st), "daemon");
  TableReader endpoints(Section(root, "endpoints", &st), "endpoints");
  TableReader batcher(Section(root, "batcher", &st), "batcher");
  TableReader limits(Section(root, "limits", &st), "limits");
  TableReader storage(Section(root, "storage", &st), "storage");
  TableReader recal(Section(root, "recalibration", &st), "recalibration");
  TableReader auth(Section(root, "auth", &st), "auth");
  TableReader alerts(Section(root, "alerts", &st), "alerts");
  const toml::table* streams = Section(root, "streams", &st);
  ANOMALYD_RETURN_IF_ERROR(st.WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadModel(model, &c.train.model).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadTraining(training, &c.train).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadThreshold(threshold, &c.train.threshold).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadDaemon(daemon, &c.daemon).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadEndpoints(endpoints, &c.endpoints).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadBatcher(batcher, &c.batcher).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadLimits(limits, &c.limits).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadStorage(storage, &c.storage).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadRecalibration(recal, &c.recalibration).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadAuth(auth, &c.auth).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadAlerts(alerts, &c.alerts).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadStreams(streams, c.alerts.shaping, &c.streams).WithContext(source));
  c.recalibration.threshold = c.train.threshold;
  *config = std::move(c);
  return Status::OK();
}

Status LoadConfig(const std::string& path, Config* config,
                  const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, config, overrides);
}

}  // namespace anomalyd

namespace anomalyd {

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

}  // namespace anomalyd
