#include "clients/anomalyctl/online.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>
#include <zmq.hpp>

#include "clients/anomalyctl/csv_out.h"
#include "clients/anomalyctl/times.h"
#include "clients/client.h"
#include "common/clock.h"
#include "model/csv.h"

namespace anomalyd::ctl {

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

Status Call(const Endpoints& e, const std::string& endpoint, pb::Request req, pb::Response* resp) {
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
    case pb::RUNNING:
      return "running";
    case pb::SUCCEEDED:
      return "succeeded";
    case pb::FAILED:
      return "failed";
    case pb::CANCELLED_TRAINING:
      return "cancelled";
    default:
      return "idle";
  }
}

}  // namespace

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
  std::printf("%-20s %7s %5s %12s %-9s %12s %10s  %s\n", "STREAM", "VERSION", "DIM", "THRESHOLD",
              "METHOD", "SCORED", "FLAGGED", "TRAINING");
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
  ScoreColumns columns;
  columns.daemon = true;
  columns.contributions = args.contributions;
  columns.features = names;
  Output out;
  ANOMALYD_RETURN_IF_ERROR(out.Open(args.out));
  std::ostream& os = out.os();
  os << ScoreHeader(columns);
  zmq::context_t ctx(1);
  Client client(ctx, e.score, std::chrono::milliseconds(e.timeout_ms), e.curve);
  const size_t d = names.size();
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
    ANOMALYD_RETURN_IF_ERROR(
        client.Call(req, &resp)
            .WithContext("rows " + std::to_string(begin + 1) + ".." + std::to_string(begin + n)));
    const pb::ScoreColumns& c = resp.score().columns();
    if (static_cast<size_t>(c.score_size()) != n ||
        (args.contributions && static_cast<size_t>(c.contributions_size()) != n * d)) {
      return Status(pb::INTERNAL, "reply has " + std::to_string(c.score_size()) + " scores for " +
                                      std::to_string(n) + " rows");
    }
    for (size_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i);
      ScoreLine line;
      line.id = b->ids(k);
      line.reconstruction = c.reconstruction(k);
      line.kl = c.kl(k);
      line.score = c.score(k);
      line.p_value = c.p_value(k);
      line.flagged = c.flagged(k);
      line.stored = c.stored(k);
      line.model_version = c.model_version(k);
      if (args.contributions) line.contributions = c.contributions().data() + i * d;
      os << ScoreRow(columns, line);
    }
  }
  return out.Close(args.out);
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
  if (a.order == "score")
    q->set_order(pb::HIGHEST_SCORE_FIRST);
  else if (a.order == "oldest")
    q->set_order(pb::OLDEST_FIRST);
  else if (a.order != "time")
    return Status::InvalidArgument("--order must be time, score or oldest");
  q->set_limit(a.limit);
  q->set_cursor(a.cursor);
  if (a.format == "csv") {
    std::cout
        << "id,record_id,stream,event_time,scored_time,score,threshold,model_version,top_feature\n";
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
      std::string top_s = top < 0                             ? "-"
                          : top < static_cast<int>(fn.size()) ? fn[top]
                                                              : "#" + std::to_string(top);
      if (top >= 0) {
        double sum = 0;
        for (float c : an.contributions()) sum += c;
        if (sum > 0)
          top_s +=
              " (" +
              std::to_string(static_cast<int>(std::lround(100 * an.contributions(top) / sum))) +
              "%)";
      }
      if (a.format == "json") {
        std::cout << Json(an) << "\n";
      } else if (a.format == "csv") {
        std::cout << an.id() << "," << CsvField(an.record_id()) << "," << CsvField(an.stream())
                  << "," << Iso(an.event_time_us()) << "," << Iso(an.scored_time_us()) << ","
                  << G(an.score()) << "," << G(an.threshold()) << "," << an.model_version() << ","
                  << CsvField(top_s) << "\n";
      } else {
        std::printf("%-8lld %-24s %-12s %-24s %10s %10s %4u  %s\n", static_cast<long long>(an.id()),
                    an.record_id().c_str(), an.stream().c_str(), Iso(an.event_time_us()).c_str(),
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
        std::cerr << "  model " << t.member() + 1 << "/" << std::max(1u, t.members()) << " epoch "
                  << t.epoch() << "/" << t.max_epochs() << "  train " << G(t.train_loss())
                  << "  val " << G(t.val_loss()) << "\n";
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
  std::printf("%-20s %7s %-7s %-24s %10s %10s  %s\n", "STREAM", "VERSION", "ACTIVE", "CREATED",
              "ROWS", "VAL LOSS", "BUNDLE");
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
  if (a.method == "pot")
    m = pb::POT;
  else if (a.method == "quantile")
    m = pb::QUANTILE;
  else if (a.method == "fixed")
    m = pb::FIXED;
  else
    return Status::InvalidArgument("--method must be pot, quantile or fixed");
  c->set_method(m);
  c->set_contamination(a.contamination);
  c->set_risk(a.risk);
  c->set_value(a.value);
  c->set_force(a.force);
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  for (const pb::StreamStatus& st : resp.status().streams()) {
    if (st.stream() == a.stream) {
      std::cout << "stream '" << a.stream << "' threshold " << G(st.threshold()) << " (" << a.method
                << ")\n";
    }
  }
  return Status::OK();
}

Status RunReload(const Endpoints& e) {
  pb::Request req;
  req.mutable_reload();
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  if (!resp.has_reload()) {
    std::cout << "reload requested (this daemon does not report the outcome; see its log)\n";
    return Status::OK();
  }
  const pb::ReloadResponse& r = resp.reload();
  std::cout << "reloaded " << r.config_path() << "\n";
  if (r.kept_size() == 0) return Status::OK();
  for (const std::string& kept : r.kept()) std::cerr << "  kept: " << kept << "\n";
  return Status(pb::FAILED_PRECONDITION,
                "reload: " + std::to_string(r.kept_size()) +
                    " part(s) of the old config kept (above); the rest is in force");
}

Status RunCancel(const Endpoints& e, const std::string& stream, bool wait) {
  // The version in training, to know when that training is over.
  uint32_t version = 0;
  pb::StatusResponse before;
  ANOMALYD_RETURN_IF_ERROR(GetStatus(e, e.control, &before));
  for (const pb::StreamStatus& st : before.streams()) {
    if (st.stream() == stream) version = st.training().target_version();
  }
  pb::Request req;
  req.mutable_cancel_retrain()->set_stream(stream);
  pb::Response resp;
  ANOMALYD_RETURN_IF_ERROR(Call(e, e.control, req, &resp));
  if (!wait) {
    std::cout << "stream '" << stream << "': cancelling the training of version " << version
              << "; the serving model stays\n";
    return Status::OK();
  }
  // A training checks for cancellation between batches: it stops within
  // moments, unless the daemon is stuck.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(e.timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pb::StatusResponse s;
    ANOMALYD_RETURN_IF_ERROR(GetStatus(e, e.control, &s));
    for (const pb::StreamStatus& st : s.streams()) {
      const pb::TrainingStatus& t = st.training();
      if (st.stream() != stream || t.target_version() != version || t.state() == pb::RUNNING) {
        continue;
      }
      std::cout << "stream '" << stream << "': training of version " << version << " "
                << StateName(t.state()) << "; serving version " << st.model_version() << "\n";
      return Status::OK();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status(pb::FAILED_PRECONDITION, "stream '" + stream + "' still training " +
                                             std::to_string(e.timeout_ms) +
                                             " ms after the cancel (--timeout-ms)");
}

namespace {

void PrintTailLine(const pb::Anomaly& an) {
  std::printf("%-24s %-12s %-24s %10s %10s %4u\n", Iso(an.scored_time_us()).c_str(),
              an.stream().c_str(), an.record_id().c_str(), G(an.score()).c_str(),
              G(an.threshold()).c_str(), an.model_version());
  std::fflush(stdout);
}

}  // namespace

Status RunTail(const Endpoints& e, const std::string& stream, const std::string& since,
               int64_t count) {
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, stream);
  SetCurveClient(sub, e.curve);
  sub.connect(e.alerts);
  std::printf("%-24s %-12s %-24s %10s %10s %4s\n", "SCORED", "STREAM", "RECORD", "SCORE",
              "THRESHOLD", "VER");
  std::fflush(stdout);
  int64_t seen = 0;
  int64_t caught_up_to = 0;  // the highest anomaly id the catch-up printed
  if (!since.empty()) {
    pb::Request req;
    pb::QueryRequest* q = req.mutable_query();
    int64_t t = 0;
    ANOMALYD_RETURN_IF_ERROR(ParseTime(since, WallMicros(), &t).WithContext("--since"));
    // Subscribed first, queried second: an alert published after the
    // subscription took hold is either in the pages (committed before the
    // query read) or arrives live. The subscription reaches the daemon a
    // moment after connect.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    q->set_since_us(t);
    q->set_stream(stream);
    q->set_order(pb::OLDEST_FIRST);
    Client client(ctx, e.score, std::chrono::milliseconds(e.timeout_ms), e.curve);
    for (;;) {
      pb::Response resp;
      ANOMALYD_RETURN_IF_ERROR(client.Call(req, &resp));
      for (const pb::Anomaly& an : resp.query().anomalies()) {
        PrintTailLine(an);
        caught_up_to = std::max(caught_up_to, an.id());
        if (count > 0 && ++seen >= count) return Status::OK();
      }
      if (resp.query().next_cursor().empty()) break;
      q->set_cursor(resp.query().next_cursor());
    }
  }
  while (count <= 0 || seen < count) {
    zmq::message_t topic, body;
    if (!sub.recv(topic) || !sub.recv(body)) continue;
    pb::Alert a;
    if (!a.ParseFromArray(body.data(), static_cast<int>(body.size()))) continue;
    if (!stream.empty() && a.stream() != stream) continue;  // prefix match only
    // Already printed by the catch-up (an unstored anomaly has id 0).
    if (a.anomaly().id() != 0 && a.anomaly().id() <= caught_up_to) continue;
    PrintTailLine(a.anomaly());
    ++seen;
  }
  return Status::OK();
}

}  // namespace anomalyd::ctl
