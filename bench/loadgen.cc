// anomalyd_loadgen: end-to-end load against a running anomalyd's score
// endpoint. DEALER connections keep --inflight requests each in flight
// (closed loop), or send --rate requests/s on a fixed schedule and measure
// each latency from its *scheduled* send time, so a stalled daemon cannot
// hide its stall by slowing the sender (coordinated omission). Every reply
// is checked: its request id, no error, one result per record in order,
// finite scores. Any failed check, error reply, unknown id or lost reply is
// an error, and any error makes the exit status 1.
//
// --protocol raw drives the benchmark suite's Python peer (bench/peer/)
// with the same rows instead: a request is one frame of raw little-endian
// float32, batch x dim, and its reply one frame of batch x 3 float32
// (reconstruction, kl, score). The frames carry no request id, so replies
// are matched to requests in send order (the peer answers each connection
// in order); a reply of the wrong size (the peer's error reply is empty) or
// with a non-finite value is an error.
//
// Prints records/s, requests/s, latency percentiles, its own CPU use and
// (with --server-pid) the server's, then one `RESULT key=value ...` line.
// Flags and defaults: --help.
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "clients/client.h"
#include "common/endpoints.h"
#include "proto/anomalyd.pb.h"

namespace anomalyd {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string protocol = "anomalyd";  // or "raw": float32 frames (bench/peer/)
  std::string endpoint = DefaultEndpoint(pb::DEFAULT_PORT_SCORE);
  std::string stream = "default";
  std::string form = "dense";
  bool columnar = false;  // ask for ScoreResponse.columns
  uint32_t batch = 1024;
  uint32_t dim = 0;  // 0: the stream's, asked from the daemon
  int connections = 1;
  int inflight = 4;
  int max_inflight = 0;  // with --rate; 0: no bound
  double rate = 0;       // requests/s over all connections; 0: closed loop
  double duration_s = 10;
  double warmup_s = 2;
  double drain_timeout_s = 10;
  bool ids = true;
  std::string csv;
  uint64_t seed = 1;
  int daemon_pid = 0;  // --server-pid
  std::string label;

  bool raw() const { return protocol == "raw"; }
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// Latency histogram in ns: exact below 256 ns, then 128 log-linear buckets
// per power of two, so any percentile is within 0.8% and memory is fixed
// however long the run.
class Histogram {
 public:
  void Add(uint64_t ns) {
    ++counts_[Index(ns)];
    ++count_;
    max_ = std::max(max_, ns);
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    max_ = std::max(max_, o.max_);
  }
  uint64_t count() const { return count_; }
  double max_us() const { return max_ / 1e3; }
  // The q-quantile in µs (bucket midpoint); 0 when empty.
  double QuantileUs(double q) const {
    if (count_ == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return (Lower(i) + Lower(i + 1)) / 2e3;
    }
    return max_us();
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr size_t kExact = 2u << kSubBits;  // 256
  static constexpr size_t kBuckets = kExact + (64 - kSubBits - 1) * (1u << kSubBits);
  static size_t Index(uint64_t v) {
    if (v < kExact) return v;
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;
    return kExact + (msb - kSubBits - 1) * (1u << kSubBits) + ((v >> shift) - (1u << kSubBits));
  }
  static double Lower(size_t i) {
    if (i < kExact) return static_cast<double>(i);
    const size_t k = i - kExact;
    const int msb = static_cast<int>(k >> kSubBits) + kSubBits + 1;
    const uint64_t sub = (1u << kSubBits) + (k & ((1u << kSubBits) - 1));
    return std::ldexp(static_cast<double>(sub), msb - kSubBits);
  }
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(kBuckets + 1);
  uint64_t count_ = 0, max_ = 0;
};

// ---------------------------------------------------------------------------
// Data: rows of raw feature values, turned into pre-serialised request bodies.

// Random finite rows: i.i.d. N(0, 1) features.
std::vector<float> RandomRows(size_t n, uint32_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(n * dim);
  for (float& x : v) x = g(rng);
  return v;
}

// Rows of a CSV with a header; columns named id, label or timestamp (any
// case) are skipped. Exits on a malformed file.
std::vector<float> CsvRows(const std::string& path, uint32_t dim) {
  std::ifstream in(path);
  std::string line, cell;
  if (!in || !std::getline(in, line)) {
    std::fprintf(stderr, "anomalyd_loadgen: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::vector<bool> skip;
  std::stringstream header(line);
  while (std::getline(header, cell, ',')) {
    std::transform(cell.begin(), cell.end(), cell.begin(), ::tolower);
    skip.push_back(cell == "id" || cell == "label" || cell == "timestamp");
  }
  std::vector<float> v;
  for (size_t row = 2; std::getline(in, line); ++row) {
    std::stringstream s(line);
    uint32_t got = 0;
    for (size_t c = 0; std::getline(s, cell, ','); ++c) {
      if (c < skip.size() && skip[c]) continue;
      v.push_back(std::strtof(cell.c_str(), nullptr));
      ++got;
    }
    if (got != dim) {
      std::fprintf(stderr, "anomalyd_loadgen: %s:%zu: %u features, expected %u\n", path.c_str(),
                   row, got, dim);
      std::exit(2);
    }
  }
  return v;
}

// The id of the record at position i of every request: unique within it.
std::string RecordId(uint32_t i) { return std::to_string(i); }

// A serialised Request holding only its score body; the request id is
// prepended per send (protobuf merges concatenated messages), so bodies are
// built once and the sender's per-request cost is one copy. With --protocol
// raw: the records' float32 values as they are, the whole request.
std::string EncodeBody(const Options& o, const float* rows, size_t n_rows, size_t first) {
  if (o.raw()) {
    std::string raw;
    raw.reserve(size_t{o.batch} * o.dim * sizeof(float));
    for (uint32_t i = 0; i < o.batch; ++i) {
      raw.append(reinterpret_cast<const char*>(rows + ((first + i) % n_rows) * o.dim),
                 o.dim * sizeof(float));
    }
    return raw;
  }
  pb::Request r;
  pb::ScoreRequest* s = r.mutable_score();
  pb::DenseBatch* dense = o.form == "dense" ? s->mutable_dense() : nullptr;
  s->set_columnar(o.columnar);
  if (dense) {
    dense->set_stream(o.stream);
    dense->set_dim(o.dim);
    dense->mutable_values()->Reserve(static_cast<int>(o.batch * o.dim));
  }
  for (uint32_t i = 0; i < o.batch; ++i) {
    const float* x = rows + ((first + i) % n_rows) * o.dim;
    const std::string id = RecordId(i);
    if (dense) {
      dense->mutable_values()->Add(x, x + o.dim);
      if (o.ids) dense->add_ids(id);
    } else {
      pb::Record* rec = s->add_records();
      rec->set_stream(o.stream);
      if (o.ids) rec->set_id(id);
      rec->mutable_features()->Add(x, x + o.dim);
    }
  }
  return r.SerializeAsString();
}

// Enough bodies to cover the rows once (a CSV) or 64Ki random rows, at
// most 256 MiB of them.
std::vector<std::string> BuildBodies(const Options& o) {
  const size_t random_rows = std::max<size_t>(o.batch, 65536);
  const std::vector<float> rows =
      o.csv.empty() ? RandomRows(random_rows, o.dim, o.seed) : CsvRows(o.csv, o.dim);
  const size_t n_rows = rows.size() / o.dim;
  if (n_rows == 0) {
    std::fprintf(stderr, "anomalyd_loadgen: no rows in %s\n", o.csv.c_str());
    std::exit(2);
  }
  const size_t body_bytes = EncodeBody(o, rows.data(), n_rows, 0).size();
  const size_t cap = std::max<size_t>(1, (size_t{256} << 20) / body_bytes);
  const size_t count = std::min(cap, std::max<size_t>(1, n_rows / o.batch));
  std::vector<std::string> bodies;
  for (size_t b = 0; b < count; ++b) {
    bodies.push_back(EncodeBody(o, rows.data(), n_rows, b * o.batch));
  }
  return bodies;
}

// ---------------------------------------------------------------------------
// One connection: a DEALER socket driven by one thread.

struct Stats {
  Histogram latency;                 // requests sent in the measured window
  Histogram send_lag;                // rate mode: actual minus scheduled send time
  uint64_t sent = 0, completed = 0;  // whole run
  // Replies that came inside the measured window.
  uint64_t window_requests = 0, window_records = 0;
  uint64_t flagged = 0, errors = 0, lost = 0;
  std::vector<std::string> first_errors;  // a few, for the report

  void Error(std::string why) {
    ++errors;
    if (first_errors.size() < 5) first_errors.push_back(std::move(why));
  }
};

class Connection {
 public:
  // Times are steady-clock ns: warm-up ends at window_begin, sending stops
  // at window_end.
  Connection(zmq::context_t& ctx, const Options& o, const std::vector<std::string>& bodies,
             int index, int64_t start, int64_t window_begin, int64_t window_end)
      : o_(o),
        bodies_(bodies),
        socket_(ctx, zmq::socket_type::dealer),
        next_id_(static_cast<uint64_t>(index + 1) << 40),
        body_(index),
        start_(start),
        window_begin_(window_begin),
        window_end_(window_end) {
    socket_.set(zmq::sockopt::linger, 0);
    // Unbounded queues: a full pipe must delay, never drop or block.
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.set(zmq::sockopt::rcvhwm, 0);
    socket_.connect(o.endpoint);
    if (o.rate > 0) interval_ns_ = 1e9 * o.connections / o.rate;
    for (uint32_t i = 0; i < o.batch; ++i) ids_.push_back(RecordId(i));
  }

  void Run() {
    prctl(PR_SET_TIMERSLACK, 1UL);  // precise wake-ups for the schedule
    double next = static_cast<double>(start_);
    for (;;) {
      const int64_t now = NowNs();
      if (now >= window_end_) break;
      if (o_.rate > 0) {
        for (; next <= now && next < window_end_ && !Full(); next += interval_ns_) {
          Send(static_cast<int64_t>(next), now);
        }
      } else {
        while (!Full()) Send(now, now);
      }
      Receive();
      int64_t wait_ns = 100'000'000;  // full: a reply frees a slot, wakes us
      if (!Full()) wait_ns = o_.rate > 0 ? int64_t(next) - NowNs() : 0;
      Wait(std::min<int64_t>(wait_ns, window_end_ - NowNs()));
    }
    Drain();
  }

  const Stats& stats() const { return stats_; }

 private:
  // No slot for another request: --inflight in a closed loop,
  // --max-inflight (0 = no bound) at a fixed rate.
  bool Full() const {
    const int cap = o_.rate > 0 ? o_.max_inflight : o_.inflight;
    return cap > 0 && static_cast<int>(inflight_.size()) >= cap;
  }

  struct InFlight {
    int64_t scheduled_ns;
    bool measured;
  };

  void Send(int64_t scheduled, int64_t now) {
    pb::Request header;
    if (!o_.raw()) header.set_request_id(next_id_);
    const std::string& body = bodies_[body_++ % bodies_.size()];
    const size_t hn = o_.raw() ? 0 : header.ByteSizeLong();
    zmq::message_t msg(hn + body.size());
    if (hn > 0) header.SerializeToArray(msg.data(), static_cast<int>(hn));
    std::memcpy(static_cast<char*>(msg.data()) + hn, body.data(), body.size());
    const bool measured = scheduled >= window_begin_;
    if (o_.raw()) sent_order_.push_back(next_id_);
    inflight_[next_id_++] = {scheduled, measured};
    if (o_.rate > 0 && measured) {
      stats_.send_lag.Add(static_cast<uint64_t>(now - scheduled));
    }
    socket_.send(msg, zmq::send_flags::none);
    ++stats_.sent;
  }

  // Blocks until the socket may have a message or `ns` passes. ppoll on
  // ZMQ_FD gives sub-millisecond timeouts (zmq::poll has 1 ms steps); the
  // fd only signals a change, so Receive() checks ZMQ_EVENTS before each
  // wait.
  void Wait(int64_t ns) {
    if (ns <= 0) return;
    if (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) return;
    pollfd p{socket_.get(zmq::sockopt::fd), POLLIN, 0};
    const timespec t{static_cast<time_t>(ns / 1'000'000'000),
                     static_cast<long>(ns % 1'000'000'000)};
    ppoll(&p, 1, &t, nullptr);
  }

  void Receive() {
    zmq::message_t msg;
    while (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) {
      if (!socket_.recv(msg, zmq::recv_flags::dontwait)) break;
      OnReply(msg, NowNs());
    }
  }

  void OnReply(const zmq::message_t& msg, int64_t now) {
    uint64_t id = 0;
    if (o_.raw()) {
      if (sent_order_.empty()) {
        stats_.Error("a reply with no request in flight");
        return;
      }
      id = sent_order_.front();  // the oldest request: replies come in order
      sent_order_.pop_front();
    } else {
      if (!reply_.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
        stats_.Error("a reply that does not parse as a Response");
        return;
      }
      id = reply_.request_id();
    }
    auto it = inflight_.find(id);
    if (it == inflight_.end()) {
      stats_.Error("a reply to unknown request id " + std::to_string(id));
      return;
    }
    const InFlight sent = it->second;
    inflight_.erase(it);
    ++stats_.completed;
    const std::string why = o_.raw() ? CheckRawReply(msg) : CheckReply();
    if (!why.empty()) {
      stats_.Error("request " + std::to_string(id) + ": " + why);
      return;
    }
    if (sent.measured && sent.scheduled_ns < window_end_) {
      stats_.latency.Add(static_cast<uint64_t>(now - sent.scheduled_ns));
    }
    if (now >= window_begin_ && now < window_end_) {
      ++stats_.window_requests;
      stats_.window_records += o_.batch;
    }
  }

  // "" when reply_ answers a request of o_.batch records correctly.
  std::string CheckReply() {
    if (reply_.has_error() && reply_.error().code() != pb::OK) {
      return pb::ErrorCode_Name(reply_.error().code()) + ": " + reply_.error().message();
    }
    if (!reply_.has_score()) return "no score body";
    if (o_.columnar) return CheckColumns(reply_.score().columns());
    const auto& results = reply_.score().results();
    if (results.size() != static_cast<int>(o_.batch)) {
      return std::to_string(results.size()) + " results for " + std::to_string(o_.batch) +
             " records";
    }
    for (int i = 0; i < results.size(); ++i) {
      const pb::ScoreResult& r = results[i];
      if (r.index() != static_cast<uint32_t>(i)) {
        return "result " + std::to_string(i) + " has index " + std::to_string(r.index());
      }
      if (o_.ids && r.id() != ids_[i]) {
        return "result " + std::to_string(i) + " has id '" + r.id() + "'";
      }
      if (!std::isfinite(r.score()) || !std::isfinite(r.reconstruction()) ||
          !std::isfinite(r.kl())) {
        return "result " + std::to_string(i) + " is not finite";
      }
      stats_.flagged += r.flagged();
    }
    return "";
  }

  // "" when a raw reply holds o_.batch finite (reconstruction, kl, score)
  // triples of float32.
  std::string CheckRawReply(const zmq::message_t& msg) {
    const size_t want = size_t{o_.batch} * 3 * sizeof(float);
    if (msg.size() != want) {
      return std::to_string(msg.size()) + " reply bytes for " + std::to_string(o_.batch) +
             " records (" + std::to_string(want) + " expected; an error reply is empty)";
    }
    const size_t n = size_t{o_.batch} * 3;
    std::vector<float>& v = raw_reply_;
    v.resize(n);
    std::memcpy(v.data(), msg.data(), want);  // the frame need not be aligned
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) return "record " + std::to_string(i / 3) + " is not finite";
    }
    return "";
  }

  // "" when the columns hold o_.batch finite verdicts (ids are implicit:
  // element i is record i).
  std::string CheckColumns(const pb::ScoreColumns& c) {
    const int n = static_cast<int>(o_.batch);
    if (c.score_size() != n || c.reconstruction_size() != n || c.kl_size() != n ||
        c.flagged_size() != n || c.p_value_size() != n) {
      return std::to_string(c.score_size()) + " scores in columns for " + std::to_string(n) +
             " records";
    }
    for (int i = 0; i < n; ++i) {
      if (!std::isfinite(c.score(i)) || !std::isfinite(c.reconstruction(i)) ||
          !std::isfinite(c.kl(i))) {
        return "column entry " + std::to_string(i) + " is not finite";
      }
      stats_.flagged += c.flagged(i);
    }
    return "";
  }

  // After the window: collect the replies still owed, then count the rest
  // as lost.
  void Drain() {
    const int64_t deadline = NowNs() + static_cast<int64_t>(o_.drain_timeout_s * 1e9);
    while (!inflight_.empty()) {
      Receive();
      const int64_t left = deadline - NowNs();
      if (left <= 0 || inflight_.empty()) break;
      Wait(std::min<int64_t>(left, 100'000'000));
    }
    if (!inflight_.empty()) {
      stats_.lost = inflight_.size();
      stats_.Error(std::to_string(inflight_.size()) + " request(s) got no reply within " +
                   std::to_string(o_.drain_timeout_s) + " s after the run");
    }
  }

  const Options& o_;
  const std::vector<std::string>& bodies_;
  zmq::socket_t socket_;
  uint64_t next_id_;
  size_t body_;
  int64_t start_, window_begin_, window_end_;
  double interval_ns_ = 0;
  std::unordered_map<uint64_t, InFlight> inflight_;
  std::deque<uint64_t> sent_order_;  // --protocol raw: ids in flight, oldest first
  std::vector<std::string> ids_;     // RecordId(i) for every i < batch
  pb::Response reply_;               // reused: parsing into it keeps its allocations
  std::vector<float> raw_reply_;     // reused: the values of a raw reply
  Stats stats_;
};

// ---------------------------------------------------------------------------
// CPU accounting and the environment.

double OwnCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// user + system seconds of process `pid` from /proc/PID/stat; -1 if gone.
double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream rest(stat.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  // After "pid (comm) " the state is field 3; utime and stime are 14, 15.
  for (int f = 3; f <= 15 && rest >> field; ++f) {
    if (f == 14) utime = std::stod(field);
    if (f == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

void PrintEnvironment(const Options& o) {
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  const std::time_t t = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::printf("anomalyd_loadgen  %s  %s x %ld  load %.2f %.2f %.2f\n", date, CpuModel().c_str(),
              sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
#ifdef ANOMALYD_BUILD_TYPE
  if (std::string(ANOMALYD_BUILD_TYPE) != "Release") {
    std::printf("WARNING: %s build; rates are not representative\n", ANOMALYD_BUILD_TYPE);
  }
#endif
  std::string mode = "inflight " + std::to_string(o.inflight);
  if (o.rate > 0) {
    mode = "rate " + std::to_string(std::llround(o.rate)) + " req/s";
    if (o.max_inflight > 0) {
      mode += ", at most " + std::to_string(o.max_inflight) + " in flight";
    }
  }
  const std::string data = o.csv.empty() ? "random N(0,1) data" : "rows of " + o.csv;
  const std::string form = o.raw() ? "raw float32 (peer)" : o.form;
  std::printf("%s  form %s  batch %u  dim %u  ids %s  connections %d  %s  %s\n", o.endpoint.c_str(),
              form.c_str(), o.batch, o.dim, o.ids ? "yes" : "no", o.connections, mode.c_str(),
              data.c_str());
}

// ---------------------------------------------------------------------------

// Asks the daemon for the stream's feature count (a status request on the
// score endpoint); exits when it does not answer or has no such stream.
uint32_t StreamDim(zmq::context_t& ctx, const Options& o) {
  Client client(ctx, o.endpoint, std::chrono::seconds(10));
  pb::Request req;
  req.mutable_status();
  pb::Response resp;
  Status s = client.Call(req, &resp);
  if (!s.ok()) {
    std::fprintf(stderr, "anomalyd_loadgen: status from %s: %s\n", o.endpoint.c_str(),
                 s.ToString().c_str());
    std::exit(2);
  }
  for (const pb::StreamStatus& st : resp.status().streams()) {
    if (st.stream() == o.stream) return st.dim();
  }
  std::fprintf(stderr, "anomalyd_loadgen: the daemon has no stream '%s'\n", o.stream.c_str());
  std::exit(2);
}

struct Totals {
  Stats all;
  double window_s = 0, own_cpu_s = 0, daemon_cpu_s = -1;
};

int Report(const Options& o, const Totals& t) {
  const Stats& s = t.all;
  const Histogram& h = s.latency;
  const double rps = s.window_requests / t.window_s, recs = s.window_records / t.window_s;
  const double own = t.own_cpu_s / t.window_s;
  const double daemon = t.daemon_cpu_s >= 0 ? t.daemon_cpu_s / t.window_s : -1;
  const double flagged = s.completed ? 100.0 * s.flagged / (double(s.completed) * o.batch) : 0;
  std::printf("requests/s    %.0f\nrecords/s     %.0f\n", rps, recs);
  std::printf(
      "latency µs    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%llu "
      "requests%s)\n",
      h.QuantileUs(0.5), h.QuantileUs(0.9), h.QuantileUs(0.99), h.QuantileUs(0.999), h.max_us(),
      static_cast<unsigned long long>(h.count()),
      o.rate > 0 ? ", from the scheduled send time" : "");
  if (o.rate > 0) {
    std::printf(
        "send lag µs   p99 %.1f  max %.1f  (sends behind their schedule: the "
        "loadgen busy, or --max-inflight reached)\n",
        s.send_lag.QuantileUs(0.99), s.send_lag.max_us());
  }
  std::printf("flagged       %.2f%% of records\n", flagged);
  std::printf("errors        %llu (lost %llu)\n", static_cast<unsigned long long>(s.errors),
              static_cast<unsigned long long>(s.lost));
  for (const std::string& e : s.first_errors) std::printf("  error: %s\n", e.c_str());
  std::printf("cpu           loadgen %.2f cores", own);
  if (daemon >= 0) std::printf(", %s %.2f cores", o.raw() ? "peer" : "daemon", daemon);
  std::printf(" (user+sys / wall over the %.1f s window)\n", t.window_s);
  std::printf(
      "RESULT label=%s protocol=%s form=%s batch=%u dim=%u connections=%d inflight=%d "
      "rate=%.0f "
      "duration_s=%.1f requests_per_s=%.1f records_per_s=%.1f p50_us=%.1f "
      "p99_us=%.1f "
      "p999_us=%.1f max_us=%.1f send_lag_p99_us=%.1f flagged_pct=%.3f "
      "errors=%llu "
      "loadgen_cpu=%.3f daemon_cpu=%.3f\n",
      o.label.empty() ? "-" : o.label.c_str(), o.protocol.c_str(), o.form.c_str(), o.batch, o.dim,
      o.connections, o.rate > 0 ? o.max_inflight : o.inflight, o.rate, t.window_s, rps, recs,
      h.QuantileUs(0.5), h.QuantileUs(0.99), h.QuantileUs(0.999), h.max_us(),
      s.send_lag.QuantileUs(0.99), flagged, static_cast<unsigned long long>(s.errors), own, daemon);
  return s.errors == 0 ? 0 : 1;
}

Totals RunLoad(zmq::context_t& ctx, const Options& o, const std::vector<std::string>& bodies) {
  const int64_t start = NowNs() + 20'000'000;  // threads ready before the first send
  const int64_t begin = start + static_cast<int64_t>(o.warmup_s * 1e9);
  const int64_t end = begin + static_cast<int64_t>(o.duration_s * 1e9);
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < o.connections; ++i) {
    conns.push_back(std::make_unique<Connection>(ctx, o, bodies, i, start, begin, end));
  }
  std::vector<std::thread> threads;
  for (auto& c : conns) {
    threads.emplace_back([&c, start] {
      std::this_thread::sleep_for(std::chrono::nanoseconds(start - NowNs()));
      c->Run();
    });
  }
  Totals t;
  std::this_thread::sleep_for(std::chrono::nanoseconds(begin - NowNs()));
  const double cpu0 = OwnCpuSeconds();
  const double dcpu0 = o.daemon_pid ? ProcessCpuSeconds(o.daemon_pid) : -1;
  const int64_t t0 = NowNs();
  std::this_thread::sleep_for(std::chrono::nanoseconds(end - NowNs()));
  t.own_cpu_s = OwnCpuSeconds() - cpu0;
  if (o.daemon_pid && dcpu0 >= 0) t.daemon_cpu_s = ProcessCpuSeconds(o.daemon_pid) - dcpu0;
  t.window_s = (NowNs() - t0) / 1e9;
  for (auto& th : threads) th.join();
  for (auto& c : conns) {
    const Stats& s = c->stats();
    t.all.latency.Merge(s.latency);
    t.all.send_lag.Merge(s.send_lag);
    t.all.sent += s.sent, t.all.completed += s.completed, t.all.flagged += s.flagged;
    t.all.window_requests += s.window_requests, t.all.window_records += s.window_records;
    t.all.errors += s.errors, t.all.lost += s.lost;
    for (const std::string& e : s.first_errors) {
      if (t.all.first_errors.size() < 5) t.all.first_errors.push_back(e);
    }
  }
  return t;
}

void ParseFlags(int argc, char** argv, Options* o) {
  CLI::App app{
      "anomalyd_loadgen: end-to-end load on a running anomalyd's score "
      "endpoint"};
  app.add_option("--protocol", o->protocol,
                 "anomalyd: protobuf requests to the daemon's score endpoint; raw: "
                 "float32 frames to the suite's Python peer (bench/peer/; needs --dim, "
                 "--form dense)")
      ->check(CLI::IsMember({"anomalyd", "raw"}))
      ->capture_default_str();
  app.add_option("--endpoint", o->endpoint, "Score endpoint")->capture_default_str();
  app.add_option("--stream", o->stream, "Stream to score")->capture_default_str();
  app.add_option("--form", o->form, "record: per-record Record messages; dense: one DenseBatch")
      ->check(CLI::IsMember({"record", "dense"}))
      ->capture_default_str();
  app.add_flag("--columnar", o->columnar, "Ask for columnar replies (ScoreResponse.columns)");
  app.add_option("--batch", o->batch, "Records per request")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--dim", o->dim, "Features per record (0: the stream's, asked from the daemon)")
      ->capture_default_str();
  app.add_option("--connections", o->connections, "DEALER sockets, one thread each")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--inflight", o->inflight, "Requests in flight per connection (closed loop)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-inflight", o->max_inflight,
                 "With --rate: most requests in flight per connection; a "
                 "send waits for a free slot, its latency still counted from "
                 "its scheduled time (0: no bound)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--rate", o->rate, "Fixed rate, requests/s over all connections (0: closed loop)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--duration", o->duration_s, "Measured seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", o->warmup_s, "Unmeasured seconds first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--drain-timeout", o->drain_timeout_s, "Seconds to wait for the last replies")
      ->capture_default_str();
  app.add_option("--ids", o->ids, "Give each record an id (unique within its request)")
      ->capture_default_str();
  app.add_option("--csv", o->csv,
                 "Take rows from this CSV (header; id/label/timestamp columns "
                 "skipped) instead of random N(0,1) values");
  app.add_option("--seed", o->seed, "Seed of the random rows")->capture_default_str();
  app.add_option("--server-pid,--daemon-pid", o->daemon_pid,
                 "Also report this process's CPU use over the window (RESULT daemon_cpu)");
  app.add_option("--label", o->label, "Tag echoed in the RESULT line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
}

}  // namespace
}  // namespace anomalyd

int main(int argc, char** argv) {
  using namespace anomalyd;
  Options o;
  ParseFlags(argc, argv, &o);
  zmq::context_t ctx(1);
  if (o.raw()) {
    // The peer has no status request and no streams: the caller knows d.
    if (o.dim == 0 || o.form != "dense") {
      std::fprintf(stderr, "anomalyd_loadgen: --protocol raw needs --dim and --form dense\n");
      return 2;
    }
    o.ids = false;
  }
  const uint32_t dim = o.raw() ? o.dim : StreamDim(ctx, o);
  if (o.dim == 0) o.dim = dim;
  if (o.dim != dim) {
    std::fprintf(stderr, "anomalyd_loadgen: --dim %u but stream '%s' has %u features\n", o.dim,
                 o.stream.c_str(), dim);
    return 2;
  }
  const std::vector<std::string> bodies = BuildBodies(o);
  PrintEnvironment(o);
  std::fflush(stdout);
  return Report(o, RunLoad(ctx, o, bodies));
}
