#include "daemon/config.h"

#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace anomalyd {
namespace {

// Reads the keys of one TOML table, remembering which it consumed so that
// anything left over is reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string name)
      : table_(table), name_(std::move(name)) {}

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
    if (*v < 0 || static_cast<uint64_t>(*v) < min ||
        static_cast<uint64_t>(*v) > max) {
      return Bad(key, "must be in [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
    }
    *out = static_cast<T>(*v);
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
  Status UnsignedList(const char* key, std::vector<uint32_t>* out,
                      uint32_t min, uint32_t max) {
    const toml::node* n = Find(key);
    if (n == nullptr) return Status::OK();
    const toml::array* a = n->as_array();
    if (a == nullptr) return Bad(key, "must be an array of integers");
    std::vector<uint32_t> v;
    for (const toml::node& e : *a) {
      std::optional<int64_t> x = e.value_exact<int64_t>();
      if (!x || *x < min || *x > max) {
        return Bad(key, "entries must be integers in [" + std::to_string(min) +
                            ", " + std::to_string(max) + "]");
      }
      v.push_back(static_cast<uint32_t>(*x));
    }
    *out = std::move(v);
    return Status::OK();
  }

  // INVALID_ARGUMENT naming the first key that no getter asked for.
  Status CheckUnknown() const {
    if (table_ == nullptr) return Status::OK();
    for (const auto& [k, v] : *table_) {
      if (!used_.count(std::string(k.str()))) {
        return Status::InvalidArgument("unknown key '" + name_ + "." +
                                       std::string(k.str()) + "'");
      }
    }
    return Status::OK();
  }

 private:
  const toml::node* Find(const char* key) {
    used_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }
  Status Bad(const char* key, const std::string& why) const {
    return Status::InvalidArgument(name_ + "." + key + ": " + why);
  }
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

const toml::table* Section(const toml::table& root, const char* name,
                           Status* st) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    *st = Status::InvalidArgument(std::string("'") + name + "' must be a table");
  }
  return n->as_table();
}

}  // namespace

Status ParseConfig(std::string_view text, const std::string& source,
                   Config* config) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream ss;
    ss << source << ":" << e.source().begin.line << ":"
       << e.source().begin.column << ": " << e.description();
    return Status::InvalidArgument(ss.str());
  }
  Config c;
  Status st;
  static const std::set<std::string> kSections = {"model", "training", "threshold"};
  for (const auto& [k, v] : root) {
    if (!kSections.count(std::string(k.str()))) {
      return Status::InvalidArgument(source + ": unknown key '" +
                                     std::string(k.str()) + "'");
    }
  }
  TableReader model(Section(root, "model", &st), "model");
  TableReader training(Section(root, "training", &st), "training");
  TableReader threshold(Section(root, "threshold", &st), "threshold");
  ANOMALYD_RETURN_IF_ERROR(st.WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadModel(model, &c.train.model).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadTraining(training, &c.train).WithContext(source));
  ANOMALYD_RETURN_IF_ERROR(ReadThreshold(threshold, &c.train.threshold).WithContext(source));
  *config = std::move(c);
  return Status::OK();
}

Status LoadConfig(const std::string& path, Config* config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open config file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, config);
}

}  // namespace anomalyd
