#include "clients/anomalyctl/online.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <thread>
#include <zmq.hpp>

#include "clients/client.h"
#include "common/clock.h"
#include "model/csv.h"

namespace anomalyd::ctl {

constexpr int64_t kMicrosPerSecond = 1000000;

std::string Iso(int64_t us) {
  // Floor division, so that times before 1970 keep a non-negative
  // sub-second part: -1 us is 1969-12-31T23:59:59.999Z, not .-000.
  int64_t secs = us / kMicrosPerSecond;
  int64_t rem = us % kMicrosPerSecond;
  if (rem < 0) {
    rem += kMicrosPerSecond;
    secs -= 1;
  }
  // ISO 8601 without an agreed expansion has four-digit years; gmtime_r
  // also fails when the year overflows an int, and time_t may be 32 bits.
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  if (static_cast<int64_t>(t) != secs || gmtime_r(&t, &tm) == nullptr ||
      tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
    return std::to_string(us) + "us";
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(rem / 1000));
  return buf;
}

namespace {

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string G(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

Status Call(const Endpoints& e, const std::string& endpoint, pb::Request req,
            pb::Response* resp) {
  static zmq::context_t ctx(1);
  Client c(ctx, endpoint, std::chrono::milliseconds(e.timeout_ms), e.curve);
  return c.Call(std::move(req), resp);
}

// `endpoint`: control, or score (which answers status too) for commands
// that a client allowed on score only must be able to run.
Status GetStatus(const Endpoints& e, const std::string& endpoint, pb::StatusResponse* out) {
  pb::Request req;
  req.mutable_status();
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, endpoint, req, &resp));
  *out = resp.status();
  return Status::OK();
}

const char* StateName(pb::TrainingState s) {
  switch (s) {
    case pb::RUNNING: return "running";
    case pb::SUCCEEDED: return "succeeded";
    case pb::FAILED: return "failed";
    case pb::CANCELLED_TRAINING: return "cancelled";
    default: return "idle";
  }
}

}  // namespace

Status ParseTime(const std::string& s, int64_t now_us, int64_t* out_us) {
  if (s.empty()) return Status::InvalidArgument("empty time");
  const std::string body = s[0] == '-' ? s.substr(1) : s;
  const char unit = body.empty() ? 0 : body.back();
  static const std::pair<char, int64_t> kUnits[] = {
      {'s', 1000000LL}, {'m', 60000000LL}, {'h', 3600000000LL}, {'d', 86400000000LL}};
  for (auto [u, scale] : kUnits) {
    if (unit == u && body.size() > 1 &&
        body.find_first_not_of("0123456789.") == body.size() - 1) {
      *out_us = now_us - static_cast<int64_t>(std::stod(body.substr(0, body.size() - 1)) * scale);
      return Status::OK();
    }
  }
  if (s.find_first_not_of("0123456789") == std::string::npos) {
    *out_us = std::stoll(s) * 1000000LL;
    return Status::OK();
  }
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) end = strptime(s.c_str(), "%Y-%m-%d", &tm);
  if (end == nullptr || (*end != 0 && std::string(end) != "Z")) {
    return Status::InvalidArgument("time '" + s +
                                   "': expected -1h / 30m / 2d, an ISO 8601 UTC time or Unix seconds");
  }
  *out_us = static_cast<int64_t>(timegm(&tm)) * 1000000LL;
  return Status::OK();
}

Status RunStatus(const Endpoints& e, bool json) {
  pb::StatusResponse s;
  ANOMALYD_RETURN_IF_ERROR(GetStatus(e, e.control, &s));
  if (json) {
    std::cout << Json(s) << "\n";
    return Status::OK();
  }
  std::printf("anomalyd %s, up since %s, device %s, queue %llu records, storage %s\n",
              s.version().c_str(), Iso(s.started_us()).c_str(),
              s.device().empty() ? "-" : s.device().c_str(),
              static_cast<unsigned long long>(s.queue_depth()),
              s.storage_ok() ? "ok" : ("DEGRADED: " + s.storage_error()).c_str());
  std::printf("%-20s %7s %5s %12s %-9s %12s %10s  %s\n", "STREAM", "VERSION", "DIM",
              "THRESHOLD", "METHOD", "SCORED", "FLAGGED", "TRAINING");
  for (const pb::StreamStatus& st : s.streams()) {
    std::string training = StateName(st.training().state());
    if (st.training().state() == pb::RUNNING) {
      training += " v" + std::to_string(st.training().target_version()) + " epoch " +
                  std::to_string(st.training().epoch()) + "/" +
                  std::to_string(st.training().max_epochs()) + " val " +
                  G(st.training().val_loss());
    } else if (!st.training().error().empty()) {
      training += ": " + st.training().error();
    }
    if (!st.error().empty()) training = "UNAVAILABLE: " + st.error() + "; " + training;
    std::printf("%-20s %7u %5u %12s %-9s %12llu %10llu  %s\n", st.stream().c_str(),
                st.model_version(), st.dim(), G(st.threshold()).c_str(),
                pb::ThresholdMethod_Name(st.threshold_method()).c_str(),
                static_cast<unsigned long long>(st.scored()),
                static_cast<unsigned long long>(st.flagged()), training.c_str());
  }
  return Status::OK();
}

Status RunOnlineScore(const Endpoints& e, const OnlineScoreArgs& args) {
  pb::StatusResponse status;
  ANOMALYD_RETURN_IF_ERROR(GetStatus(e, e.score, &status));
  const pb::StreamStatus* st = nullptr;
  for (const auto& s : status.streams()) {
    if (s.stream() == args.stream && s.dim() > 0) st = &s;
  }
  if (st == nullptr) return Status(pb::UNKNOWN_STREAM, "stream '" + args.stream + "' has no model");
  CsvTable table;
  ANOMALYD_RETURN_IF_ERROR(ReadCsv(args.data, CsvOptions{}, &table));
  std::vector<std::string> names(st->feature_names().begin(), st->feature_names().end());
  ANOMALYD_RETURN_IF_ERROR(SelectFeatures(names, args.data, &table));
  zmq::context_t ctx(1);
  Client client(ctx, e.score, std::chrono::milliseconds(e.timeout_ms), e.curve);
  const size_t d = names.size();
  std::cout << "id,score,reconstruction,kl,p_value,flagged,stored,model_version\n";
  for (size_t begin = 0; begin < table.features.rows; begin += args.batch) {
    const size_t n = std::min(args.batch, table.features.rows - begin);
    pb::Request req;
    pb::ScoreRequest* sr = req.mutable_score();
    sr->set_contributions(args.contributions);
    sr->set_columnar(true);  // one packed array per field: cheaper both ways
    pb::DenseBatch* b = sr->mutable_dense();
    b->set_stream(args.stream);
    b->set_dim(static_cast<uint32_t>(d));
    b->mutable_values()->Assign(table.features.row(begin), table.features.row(begin) + n * d);
    for (size_t i = 0; i < n; ++i) {
      b->add_ids(table.ids.empty() ? std::to_string(begin + i + 1) : table.ids[begin + i]);
    }
    if (!table.timestamps.empty()) {
      for (size_t i = 0; i < n; ++i) b->add_event_times_us(table.timestamps[begin + i]);
    }
    pb::Response resp;
    ANOMALYD_RETURN_IF_ERROR(client.Call(req, &resp).WithContext(
        "rows " + std::to_string(begin + 1) + ".." + std::to_string(begin + n)));
    const pb::ScoreColumns& c = resp.score().columns();
    if (static_cast<size_t>(c.score_size()) != n ||
        (args.contributions && static_cast<size_t>(c.contributions_size()) != n * d)) {
      return Status(pb::INTERNAL, "reply has " + std::to_string(c.score_size()) +
                                      " scores for " + std::to_string(n) + " rows");
    }
    for (size_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i);
      std::cout << b->ids(k) << "," << G(c.score(k)) << "," << G(c.reconstruction(k)) << ","
                << G(c.kl(k)) << "," << G(c.p_value(k)) << "," << (c.flagged(k) ? 1 : 0)
                << "," << (c.stored(k) ? 1 : 0) << "," << c.model_version(k);
      if (args.contributions) {
        for (size_t j = 0; j < d; ++j) std::cout << "," << G(c.contributions(static_cast<int>(i * d + j)));
      }
      std::cout << "\n";
    }
  }
  return Status::OK();
}

Status RunQuery(const Endpoints& e, const QueryArgs& a) {
  pb::Request req;
  pb::QueryRequest* q = req.mutable_query();
  const int64_t now = WallMicros();
  int64_t t = 0;
  if (!a.since.empty()) {
    ANOMALYD_RETURN_IF_ERROR(ParseTime(a.since, now, &t));
    q->set_since_us(t);
  }
  if (!a.until.empty()) {
    ANOMALYD_RETURN_IF_ERROR(ParseTime(a.until, now, &t));
    q->set_until_us(t);
  }
  q->set_by_event_time(a.event_time);
  q->set_stream(a.stream);
  if (a.has_min_score) {
    q->set_min_score(a.min_score);
    q->set_has_min_score(true);
  }
  if (a.order == "score") q->set_order(pb::HIGHEST_SCORE_FIRST);
  else if (a.order != "time") return Status::InvalidArgument("--order must be time or score");
  q->set_limit(a.limit);
  q->set_cursor(a.cursor);
  if (a.format == "csv") {
    std::cout << "id,record_id,stream,event_time,scored_time,score,threshold,model_version,top_feature\n";
  } else if (a.format == "table") {
    std::printf("%-8s %-24s %-12s %-24s %10s %10s %4s  %s\n", "ID", "RECORD", "STREAM",
                "EVENT TIME", "SCORE", "THRESHOLD", "VER", "TOP FEATURE");
  } else if (a.format != "json") {
    return Status::InvalidArgument("--format must be table, json or csv");
  }
  // Feature names per stream, to name the top feature; best effort.
  std::map<std::string, std::vector<std::string>> names;
  pb::StatusResponse status;
  if (GetStatus(e, e.score, &status).ok()) {
    for (const auto& st : status.streams()) {
      names[st.stream()].assign(st.feature_names().begin(), st.feature_names().end());
    }
  }
  zmq::context_t ctx(1);
  Client client(ctx, e.score, std::chrono::milliseconds(e.timeout_ms), e.curve);
  for (;;) {
    pb::Response resp;
    ANOMALYD_RETURN_IF_ERROR(client.Call(req, &resp));
    for (const pb::Anomaly& an : resp.query().anomalies()) {
      // The feature that carries most of the reconstruction error.
      int top = -1;
      for (int j = 0; j < an.contributions_size(); ++j) {
        if (top < 0 || an.contributions(j) > an.contributions(top)) top = j;
      }
      const auto& fn = names[an.stream()];
      std::string top_s = top < 0 ? "-"
                          : top < static_cast<int>(fn.size()) ? fn[top]
                                                              : "#" + std::to_string(top);
      if (top >= 0) {
        double sum = 0;
        for (float c : an.contributions()) sum += c;
        if (sum > 0) top_s += " (" + std::to_string(static_cast<int>(std::lround(100 * an.contributions(top) / sum))) + "%)";
      }
      if (a.format == "json") {
        std::cout << Json(an) << "\n";
      } else if (a.format == "csv") {
        std::cout << an.id() << "," << an.record_id() << "," << an.stream() << ","
                  << Iso(an.event_time_us()) << "," << Iso(an.scored_time_us()) << ","
                  << G(an.score()) << "," << G(an.threshold()) << "," << an.model_version()
                  << "," << top_s << "\n";
      } else {
        std::printf("%-8lld %-24s %-12s %-24s %10s %10s %4u  %s\n",
                    static_cast<long long>(an.id()), an.record_id().c_str(),
                    an.stream().c_str(), Iso(an.event_time_us()).c_str(),
                    G(an.score()).c_str(), G(an.threshold()).c_str(), an.model_version(),
                    top_s.c_str());
      }
    }
    const std::string& next = resp.query().next_cursor();
    if (!a.all || next.empty()) {
      if (!next.empty() && a.format != "json") std::cerr << "next cursor: " << next << "\n";
      return Status::OK();
    }
    q->set_cursor(next);
  }
}

Status RunRetrain(const Endpoints& e, const RetrainArgs& a) {
  pb::Request req;
  pb::RetrainRequest* r = req.mutable_retrain();
  r->set_stream(a.stream);
  if (!a.csv.empty() && a.from_reservoir) {
    return Status::InvalidArgument("give --csv or --from-reservoir, not both");
  }
  if (!a.csv.empty()) {
    // The daemon opens the file itself: send an absolute path.
    char* abs = realpath(a.csv.c_str(), nullptr);
    r->set_csv_path(abs ? abs : a.csv);
    std::free(abs);
  } else if (a.from_reservoir) {
    r->set_from_reservoir(true);
  } else {
    return Status::InvalidArgument("give --csv PATH or --from-reservoir");
  }
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  const uint32_t version = resp.retrain().target_version();
  std::cout << "training stream '" << a.stream << "' version " << version << "\n";
  if (!a.wait) return Status::OK();
  uint32_t last_epoch = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    pb::StatusResponse s;
    ANOMALYD_RETURN_IF_ERROR(GetStatus(e, e.control, &s));
    for (const pb::StreamStatus& st : s.streams()) {
      if (st.stream() != a.stream) continue;
      const pb::TrainingStatus& t = st.training();
      if (t.target_version() != version) continue;
      if (t.state() == pb::RUNNING && t.epoch() != last_epoch) {
        last_epoch = t.epoch();
        std::cerr << "  model " << t.member() + 1 << "/" << std::max(1u, t.members())
                  << " epoch " << t.epoch() << "/" << t.max_epochs() << "  train "
                  << G(t.train_loss()) << "  val " << G(t.val_loss()) << "\n";
      } else if (t.state() == pb::SUCCEEDED) {
        std::cout << "version " << version << " is serving (threshold " << G(st.threshold())
                  << ")\n";
        return Status::OK();
      } else if (t.state() == pb::FAILED || t.state() == pb::CANCELLED_TRAINING) {
        return Status(pb::TRAINING_FAILED, t.error());
      }
    }
  }
}

Status RunModels(const Endpoints& e, const std::string& stream, bool json) {
  pb::Request req;
  req.mutable_models()->set_stream(stream);
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  if (json) {
    std::cout << Json(resp.models()) << "\n";
    return Status::OK();
  }
  std::printf("%-20s %7s %-7s %-24s %10s %10s  %s\n", "STREAM", "VERSION", "ACTIVE",
              "CREATED", "ROWS", "VAL LOSS", "BUNDLE");
  for (const pb::ModelInfo& m : resp.models().models()) {
    std::printf("%-20s %7u %-7s %-24s %10llu %10s  %s\n", m.stream().c_str(), m.version(),
                m.active() ? "yes" : "", Iso(m.created_us()).c_str(),
                static_cast<unsigned long long>(m.baseline_rows()), G(m.val_loss()).c_str(),
                m.bundle_path().c_str());
  }
  return Status::OK();
}

Status RunRollback(const Endpoints& e, const std::string& stream, uint32_t to) {
  pb::Request req;
  req.mutable_rollback()->set_stream(stream);
  req.mutable_rollback()->set_to_version(to);
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  std::cout << "stream '" << stream << "' now serves version " << to << "\n";
  return Status::OK();
}

Status RunCalibrate(const Endpoints& e, const CalibrateArgs& a) {
  pb::Request req;
  pb::CalibrateRequest* c = req.mutable_calibrate();
  c->set_stream(a.stream);
  pb::ThresholdMethod m;
  if (a.method == "pot") m = pb::POT;
  else if (a.method == "quantile") m = pb::QUANTILE;
  else if (a.method == "fixed") m = pb::FIXED;
  else return Status::InvalidArgument("--method must be pot, quantile or fixed");
  c->set_method(m);
  c->set_contamination(a.contamination);
  c->set_risk(a.risk);
  c->set_value(a.value);
  c->set_force(a.force);
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  for (const pb::StreamStatus& st : resp.status().streams()) {
    if (st.stream() == a.stream) {
      std::cout << "stream '" << a.stream << "' threshold " << G(st.threshold()) << " ("
                << a.method << ")\n";
    }
  }
  return Status::OK();
}

Status RunReload(const Endpoints& e) {
  pb::Request req;
  req.mutable_reload();
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  std::cout << "reload requested\n";
  return Status::OK();
}

Status RunTail(const Endpoints& e, const std::string& stream, int64_t count) {
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, stream);
  SetCurveClient(sub, e.curve);
  sub.connect(e.alerts);
  std::printf("%-24s %-12s %-24s %10s %10s %4s\n", "SCORED", "STREAM", "RECORD", "SCORE",
              "THRESHOLD", "VER");
  std::fflush(stdout);
  for (int64_t seen = 0; count <= 0 || seen < count;) {
    zmq::message_t topic, body;
    if (!sub.recv(topic) || !sub.recv(body)) continue;
    pb::Alert a;
    if (!a.ParseFromArray(body.data(), static_cast<int>(body.size()))) continue;
    if (!stream.empty() && a.stream() != stream) continue;  // prefix match only
    const pb::Anomaly& an = a.anomaly();
    std::printf("%-24s %-12s %-24s %10s %10s %4u\n", Iso(an.scored_time_us()).c_str(),
                an.stream().c_str(), an.record_id().c_str(), G(an.score()).c_str(),
                G(an.threshold()).c_str(), an.model_version());
    std::fflush(stdout);
    ++seen;
  }
  return Status::OK();
}

}  // namespace anomalyd::ctl
