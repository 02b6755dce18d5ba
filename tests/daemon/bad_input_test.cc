// The bad-input corpus: malformed and hostile messages for every endpoint of
// one real anomalyd (real binary, real sockets), each with the typed error
// it must get. After every case the daemon must still score a valid request
// correctly and answer status. The score and control endpoints reply; the
// ingest endpoint replies to nobody, so its errors are read back from the
// metrics endpoint's per-code counters. The alerts endpoint takes nothing
// from clients but subscriptions; the metrics endpoint is plain HTTP.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <climits>
#include <cmath>
#include <functional>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "clients/client.h"
#include "tests/daemon/daemon_process.h"
#include "tests/daemon/daemon_wire.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::DaemonProcess;
using testing::FindStream;
using testing::GetStatus;

// The limits the daemon runs with: small, so that "too large" is cheap.
constexpr int kMaxMessageBytes = 65536;
constexpr int kMaxRecords = 100;
// How long a case may take to be answered or counted.
constexpr int kReplyTimeoutMs = 10000;

enum class Target { kScore, kControl, kIngest };

const char* TargetName(Target t) {
  switch (t) {
    case Target::kScore:
      return "score";
    case Target::kControl:
      return "control";
    case Target::kIngest:
      return "ingest";
  }
  return "?";
}

// One entry of the corpus: the frames a client sends (a DEALER on score
// and control, a PUSH on ingest) and the code the daemon must answer with.
// OK marks hostile but legal input, which must simply be served.
struct Case {
  std::string name;
  Target target;
  std::vector<std::string> frames;
  ErrorCode code;
};

std::string Bytes(const pb::Request& r) { return r.SerializeAsString(); }

// A record on the baseline's manifold (b = 2a, d = c - a): never flagged.
std::vector<float> CentralRecord() { return {0.5f, 1.0f, 10.0f, 9.5f}; }

pb::Request ValidScore(const std::string& id = "v") {
  return testing::ScoreRequest({CentralRecord()}, "default", id, /*dense=*/false);
}
pb::Request ValidDense(size_t rows) {
  return testing::ScoreRequest(std::vector<std::vector<float>>(rows, CentralRecord()), "default",
                               "d", /*dense=*/true);
}

// `base` changed by `edit`.
pb::Request Edit(pb::Request base, const std::function<void(pb::Request*)>& edit) {
  edit(&base);
  return base;
}
pb::Request EditScore(const std::function<void(pb::ScoreRequest*)>& edit) {
  return Edit(ValidScore(), [&](pb::Request* r) { edit(r->mutable_score()); });
}
pb::Request EditDense(size_t rows, const std::function<void(pb::DenseBatch*)>& edit) {
  return Edit(ValidDense(rows), [&](pb::Request* r) { edit(r->mutable_score()->mutable_dense()); });
}
pb::Request Query(const std::function<void(pb::QueryRequest*)>& edit) {
  pb::Request r;
  edit(r.mutable_query());
  return r;
}

// A request that proto3 refuses to parse: a string field (the record's
// stream) holding bytes that are not UTF-8.
std::string NonUtf8Stream() {
  std::string b =
      Bytes(EditScore([](pb::ScoreRequest* s) { s->mutable_records(0)->set_stream("@@@@"); }));
  b.replace(b.find("@@@@"), 4, "\xff\xfe\xc0\x80");
  return b;
}

// Unknown-field groups nested `depth` deep (field 15: start 0x7b, end 0x7c).
std::string NestedGroups(size_t depth) {
  return std::string(depth, '\x7b') + std::string(depth, '\x7c');
}

// Malformed framing and encoding: the same for every endpoint.
std::vector<Case> FramingCases(Target t) {
  const std::string good = Bytes(ValidScore());
  pb::Response reply;
  reply.set_request_id(7);
  reply.mutable_error()->set_code(pb::INTERNAL);
  pb::Alert alert;
  alert.set_stream("default");
  alert.mutable_anomaly()->set_record_id("x");
  pb::Request id_only;
  id_only.set_request_id(9);
  std::vector<Case> c = {
      {"garbage bytes", t, {"\xff\xfe\x01 not protobuf"}, pb::MALFORMED},
      {"binary noise", t, {std::string("\x00\x01\x02\x03\xff\xff\xff\xff", 8)}, pb::MALFORMED},
      {"truncated protobuf", t, {good.substr(0, good.size() - 3)}, pb::MALFORMED},
      {"truncated to one byte", t, {good.substr(0, 1)}, pb::MALFORMED},
      {"zero-length message", t, {""}, pb::UNKNOWN_REQUEST},
      {"request id only", t, {Bytes(id_only)}, pb::UNKNOWN_REQUEST},
      {"wrong envelope: a Response", t, {reply.SerializeAsString()}, pb::UNKNOWN_REQUEST},
      {"wrong envelope: an Alert", t, {alert.SerializeAsString()}, pb::UNKNOWN_REQUEST},
      {"missing envelope: bare ScoreRequest",
       t,
       {ValidScore().score().SerializeAsString()},
       pb::UNKNOWN_REQUEST},
      {"unknown request type (field 99)",
       t,
       {std::string("\x08\x05\x98\x06\x01", 5)},
       pb::UNKNOWN_REQUEST},
      {"known field with the wrong wire type",
       t,
       {std::string("\x50\x01", 2)},
       pb::UNKNOWN_REQUEST},
      {"length past the end", t, {std::string("\x52\xff\xff\xff\xff\x0f", 6)}, pb::MALFORMED},
      {"overlong varint", t, {"\x08" + std::string(10, '\xff') + "\x01"}, pb::MALFORMED},
      {"packed floats not a multiple of 4",
       t,
       {std::string("\x52\x09\x0a\x07\x22\x05\x00\x00\x80\x3f\x00", 11)},
       pb::MALFORMED},
      {"string field not UTF-8", t, {NonUtf8Stream()}, pb::MALFORMED},
      {"groups nested 30000 deep", t, {NestedGroups(30000)}, pb::MALFORMED},
      {"oversized message", t, {std::string(kMaxMessageBytes + 4000, 'x')}, pb::TOO_LARGE},
      {"oversized valid request", t, {Bytes(ValidDense(kMaxMessageBytes / 16))}, pb::TOO_LARGE},
      {"extra frame", t, {good, "extra"}, pb::MALFORMED},
      {"three frames", t, {good, good, good}, pb::MALFORMED},
  };
  if (t != Target::kIngest) {
    // A REQ-style empty delimiter before the payload is valid framing;
    // more empty frames are not, and the reply still finds the client.
    c.push_back({"empty frames around the request", t, {"", "", good}, pb::MALFORMED});
    c.push_back({"delimiter and empty payload", t, {"", ""}, pb::UNKNOWN_REQUEST});
  }
  return c;
}

// Score requests the validator must refuse (score and ingest endpoints).
std::vector<Case> ScoreCases(Target t) {
  const float kNaN = std::nanf("");
  const float kInf = INFINITY;
  auto many_records = [](pb::ScoreRequest* s) {
    for (int i = 1; i <= kMaxRecords; ++i) {
      pb::Record* r = s->add_records();
      *r = s->records(0);
      r->set_id("x" + std::to_string(i));
    }
  };
  return {
      {"empty batch",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { s->clear_records(); }))},
       pb::EMPTY_BATCH},
      {"dense batch without values",
       t,
       {Bytes(EditDense(1,
                        [](pb::DenseBatch* b) {
                          b->clear_values();
                          b->clear_ids();
                        }))},
       pb::EMPTY_BATCH},
      {"more records than the maximum", t, {Bytes(EditScore(many_records))}, pb::TOO_LARGE},
      {"more dense rows than the maximum", t, {Bytes(ValidDense(kMaxRecords + 1))}, pb::TOO_LARGE},
      {"one feature too many",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { s->mutable_records(0)->add_features(1); }))},
       pb::WRONG_DIMENSION},
      {"no features",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { s->mutable_records(0)->clear_features(); }))},
       pb::WRONG_DIMENSION},
      {"dense dim 3 for a 4-feature stream",
       t,
       {Bytes(EditDense(3,
                        [](pb::DenseBatch* b) {
                          b->set_dim(3);
                          b->clear_ids();
                        }))},
       pb::WRONG_DIMENSION},
      {"NaN feature",
       t,
       {Bytes(
           EditScore([&](pb::ScoreRequest* s) { s->mutable_records(0)->set_features(2, kNaN); }))},
       pb::NON_FINITE},
      {"+Inf feature",
       t,
       {Bytes(
           EditScore([&](pb::ScoreRequest* s) { s->mutable_records(0)->set_features(0, kInf); }))},
       pb::NON_FINITE},
      {"-Inf feature",
       t,
       {Bytes(
           EditScore([&](pb::ScoreRequest* s) { s->mutable_records(0)->set_features(3, -kInf); }))},
       pb::NON_FINITE},
      {"NaN in a dense row",
       t,
       {Bytes(EditDense(3, [&](pb::DenseBatch* b) { b->set_values(6, kNaN); }))},
       pb::NON_FINITE},
      {"dense values not N x d",
       t,
       {Bytes(EditDense(2, [](pb::DenseBatch* b) { b->add_values(1); }))},
       pb::INVALID_ARGUMENT},
      {"dense dim 0",
       t,
       {Bytes(EditDense(1, [](pb::DenseBatch* b) { b->set_dim(0); }))},
       pb::INVALID_ARGUMENT},
      {"dense dim 2^32-1",
       t,
       {Bytes(EditDense(1, [](pb::DenseBatch* b) { b->set_dim(UINT32_MAX); }))},
       pb::INVALID_ARGUMENT},
      {"dense ids fewer than rows",
       t,
       {Bytes(EditDense(3, [](pb::DenseBatch* b) { b->mutable_ids()->RemoveLast(); }))},
       pb::INVALID_ARGUMENT},
      {"dense event times more than rows",
       t,
       {Bytes(EditDense(1,
                        [](pb::DenseBatch* b) {
                          b->add_event_times_us(1);
                          b->add_event_times_us(2);
                        }))},
       pb::INVALID_ARGUMENT},
      {"records and a dense batch",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { s->mutable_dense()->set_dim(4); }))},
       pb::INVALID_ARGUMENT},
      {"duplicate record ids",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { *s->add_records() = s->records(0); }))},
       pb::DUPLICATE_ID},
      {"duplicate dense ids",
       t,
       {Bytes(EditDense(3, [](pb::DenseBatch* b) { b->set_ids(2, b->ids(0)); }))},
       pb::DUPLICATE_ID},
      {"unknown stream",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) { s->mutable_records(0)->set_stream("nope"); }))},
       pb::UNKNOWN_STREAM},
      {"dense batch for an unknown stream",
       t,
       {Bytes(EditDense(2, [](pb::DenseBatch* b) { b->set_stream("nope"); }))},
       pb::UNKNOWN_STREAM},
      {"second record of an unknown stream",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) {
         pb::Record* r = s->add_records();
         *r = s->records(0);
         r->set_id("w");
         r->set_stream("nope");
       }))},
       pb::UNKNOWN_STREAM},
      {"stream name of 129 bytes",
       t,
       {Bytes(EditScore(
           [](pb::ScoreRequest* s) { s->mutable_records(0)->set_stream(std::string(129, 's')); }))},
       pb::INVALID_ARGUMENT},
      {"stream name of 60000 bytes",
       t,
       {Bytes(EditDense(1, [](pb::DenseBatch* b) { b->set_stream(std::string(60000, 's')); }))},
       pb::INVALID_ARGUMENT},
      {"stream name with a NUL byte",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) {
         s->mutable_records(0)->set_stream(std::string("default\0x", 9));
       }))},
       pb::UNKNOWN_STREAM},
  };
}

// Hostile but legal score requests: served like any other.
std::vector<Case> LegalScoreCases(Target t) {
  return {
      {"record id of 60000 bytes",
       t,
       {Bytes(EditScore(
           [](pb::ScoreRequest* s) { s->mutable_records(0)->set_id(std::string(60000, 'i')); }))},
       pb::OK},
      {"event time INT64_MIN",
       t,
       {Bytes(EditScore(
           [](pb::ScoreRequest* s) { s->mutable_records(0)->set_event_time_us(INT64_MIN); }))},
       pb::OK},
      {"event time INT64_MAX",
       t,
       {Bytes(EditDense(2,
                        [](pb::DenseBatch* b) {
                          b->add_event_times_us(INT64_MAX);
                          b->add_event_times_us(-1);
                        }))},
       pb::OK},
      {"request id 2^64-1",
       t,
       {Bytes(Edit(ValidScore(), [](pb::Request* r) { r->set_request_id(UINT64_MAX); }))},
       pb::OK},
      {"2000 labels",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) {
         auto* labels = s->mutable_records(0)->mutable_labels();
         for (int i = 0; i < 2000; ++i) (*labels)["k" + std::to_string(i)] = std::string(8, 'v');
       }))},
       pb::OK},
      {"unknown field inside the request",
       t,
       {Bytes(ValidScore()) + std::string("\xa8\x1f\x01", 3)},
       pb::OK},
      {"denormal and huge finite features",
       t,
       {Bytes(EditScore([](pb::ScoreRequest* s) {
         s->mutable_records(0)->set_features(0, 1e-45f);
         s->mutable_records(0)->set_features(1, 3e38f);
       }))},
       pb::OK},
  };
}

// Anomaly queries the store must refuse (score and control endpoints).
std::vector<Case> QueryCases(Target t) {
  return {
      {"query limit 2^30",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_limit(1u << 30); }))},
       pb::INVALID_ARGUMENT},
      {"query limit 2^32-1",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_limit(UINT32_MAX); }))},
       pb::INVALID_ARGUMENT},
      {"query cursor garbage",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_cursor("%%%"); }))},
       pb::INVALID_ARGUMENT},
      {"query cursor of 60000 bytes",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_cursor("s1." + std::string(60000, '9')); }))},
       pb::INVALID_ARGUMENT},
      {"query cursor with an overflowing time",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_cursor("s1.99999999999999999999999.1"); }))},
       pb::INVALID_ARGUMENT},
      {"query cursor with a negative id",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_cursor("s1.5.-1"); }))},
       pb::INVALID_ARGUMENT},
      {"query cursor of another order",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_cursor("x1.3ff0000000000000.1"); }))},
       pb::INVALID_ARGUMENT},
      {"query since after until",
       t,
       {Bytes(Query([](pb::QueryRequest* q) {
         q->set_since_us(100);
         q->set_until_us(50);
       }))},
       pb::INVALID_ARGUMENT},
      {"query since INT64_MAX until INT64_MIN",
       t,
       {Bytes(Query([](pb::QueryRequest* q) {
         q->set_since_us(INT64_MAX);
         q->set_until_us(INT64_MIN);
       }))},
       pb::INVALID_ARGUMENT},
      {"query min_score NaN",
       t,
       {Bytes(Query([](pb::QueryRequest* q) {
         q->set_has_min_score(true);
         q->set_min_score(NAN);
       }))},
       pb::INVALID_ARGUMENT},
      {"query over all time",
       t,
       {Bytes(Query([](pb::QueryRequest* q) {
         q->set_since_us(INT64_MIN);
         q->set_until_us(INT64_MAX);
       }))},
       pb::OK},
      {"query with an unknown order",
       t,
       {Bytes(Query([](pb::QueryRequest* q) { q->set_order(static_cast<pb::QueryOrder>(77)); }))},
       pb::OK},
  };
}

pb::Request Control(const std::function<void(pb::Request*)>& edit) {
  pb::Request r;
  edit(&r);
  return r;
}

// Control requests that must be refused before anything starts. `dir`
// holds the test's files.
std::vector<Case> ControlCases(const std::string& dir) {
  const Target t = Target::kControl;
  auto retrain = [](const std::function<void(pb::RetrainRequest*)>& edit) {
    return Bytes(Control([&](pb::Request* r) { edit(r->mutable_retrain()); }));
  };
  auto inline_rows = [](pb::RetrainRequest* r, int rows, int dim) {
    pb::DenseBatch* b = r->mutable_inline_rows();
    b->set_dim(static_cast<uint32_t>(dim));
    for (int i = 0; i < rows * dim; ++i) b->add_values(static_cast<float>(i % 7));
    return b;
  };
  auto calibrate = [](const std::function<void(pb::CalibrateRequest*)>& edit) {
    return Bytes(Control([&](pb::Request* r) { edit(r->mutable_calibrate()); }));
  };
  auto rollback = [](const std::string& stream, uint32_t to) {
    return Bytes(Control([&](pb::Request* r) {
      r->mutable_rollback()->set_stream(stream);
      r->mutable_rollback()->set_to_version(to);
    }));
  };
  return {
      {"score request on control", t, {Bytes(ValidScore())}, pb::UNKNOWN_REQUEST},
      {"retrain from a missing CSV",
       t,
       {retrain([&](pb::RetrainRequest* r) { r->set_csv_path(dir + "/missing.csv"); })},
       pb::NOT_FOUND},
      {"retrain from an empty path",
       t,
       {retrain([](pb::RetrainRequest* r) { r->set_csv_path(""); })},
       pb::INVALID_ARGUMENT},
      {"retrain from a directory",
       t,
       {retrain([&](pb::RetrainRequest* r) { r->set_csv_path(dir); })},
       pb::INVALID_ARGUMENT},
      {"retrain from /dev/zero",
       t,
       {retrain([](pb::RetrainRequest* r) { r->set_csv_path("/dev/zero"); })},
       pb::INVALID_ARGUMENT},
      {"retrain from a path of 60000 bytes",
       t,
       {retrain([](pb::RetrainRequest* r) { r->set_csv_path("/" + std::string(60000, 'p')); })},
       pb::NOT_FOUND},
      {"retrain without a source",
       t,
       {retrain([](pb::RetrainRequest* r) { r->set_stream("s"); })},
       pb::INVALID_ARGUMENT},
      {"retrain with a stream name of 129 bytes",
       t,
       {retrain([](pb::RetrainRequest* r) {
         r->set_stream(std::string(129, 's'));
         r->set_from_reservoir(true);
       })},
       pb::INVALID_ARGUMENT},
      {"retrain inline rows not N x dim",
       t,
       {retrain([&](pb::RetrainRequest* r) { inline_rows(r, 3, 4)->add_values(1); })},
       pb::INVALID_ARGUMENT},
      {"retrain inline rows with dim 0",
       t,
       {retrain([&](pb::RetrainRequest* r) { inline_rows(r, 3, 4)->set_dim(0); })},
       pb::INVALID_ARGUMENT},
      {"retrain inline rows without values",
       t,
       {retrain([&](pb::RetrainRequest* r) { inline_rows(r, 0, 4); })},
       pb::INVALID_ARGUMENT},
      {"retrain inline rows with NaN",
       t,
       {retrain([&](pb::RetrainRequest* r) { inline_rows(r, 50, 4)->set_values(9, NAN); })},
       pb::NON_FINITE},
      {"retrain inline rows with -Inf",
       t,
       {retrain([&](pb::RetrainRequest* r) { inline_rows(r, 50, 4)->set_values(0, -INFINITY); })},
       pb::NON_FINITE},
      {"retrain inline rows, 3 names for dim 4",
       t,
       {retrain([&](pb::RetrainRequest* r) {
         inline_rows(r, 50, 4);
         for (const char* n : {"a", "b", "c"}) r->add_feature_names(n);
       })},
       pb::INVALID_ARGUMENT},
      {"rollback to a version that does not exist", t, {rollback("default", 42)}, pb::NOT_FOUND},
      {"rollback to version 0", t, {rollback("", 0)}, pb::NOT_FOUND},
      {"rollback to version 2^32-1", t, {rollback("default", UINT32_MAX)}, pb::NOT_FOUND},
      {"rollback of an unknown stream", t, {rollback("nope", 1)}, pb::NOT_FOUND},
      {"rollback of a stream name of 60000 bytes",
       t,
       {rollback(std::string(60000, 's'), 1)},
       pb::NOT_FOUND},
      {"calibrate an unknown stream",
       t,
       {calibrate([](pb::CalibrateRequest* c) { c->set_stream("nope"); })},
       pb::UNKNOWN_STREAM},
      {"calibrate contamination 2",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::QUANTILE);
         c->set_contamination(2);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate contamination -0.5",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::QUANTILE);
         c->set_contamination(-0.5);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate contamination NaN",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::QUANTILE);
         c->set_contamination(NAN);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate POT risk 1.5",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::POT);
         c->set_risk(1.5);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate fixed NaN",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::FIXED);
         c->set_value(NAN);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate fixed +Inf",
       t,
       {calibrate([](pb::CalibrateRequest* c) {
         c->set_method(pb::FIXED);
         c->set_value(INFINITY);
       })},
       pb::INVALID_ARGUMENT},
      {"calibrate an unknown method",
       t,
       {calibrate(
           [](pb::CalibrateRequest* c) { c->set_method(static_cast<pb::ThresholdMethod>(99)); })},
       pb::INVALID_ARGUMENT},
      {"cancel a retrain that is not running",
       t,
       {Bytes(Control([](pb::Request* r) { r->mutable_cancel_retrain()->set_stream("default"); }))},
       pb::NOT_FOUND},
      {"models of an unknown stream",
       t,
       {Bytes(Control([](pb::Request* r) { r->mutable_models()->set_stream("nope"); }))},
       pb::OK},
  };
}

// Score-endpoint requests of types it does not serve.
std::vector<Case> WrongEndpointCases(Target t) {
  std::vector<Case> c = {
      {"retrain on " + std::string(TargetName(t)),
       t,
       {Bytes(Control([](pb::Request* r) { r->mutable_retrain()->set_from_reservoir(true); }))},
       pb::UNKNOWN_REQUEST},
      {"rollback on " + std::string(TargetName(t)),
       t,
       {Bytes(Control([](pb::Request* r) { r->mutable_rollback()->set_to_version(1); }))},
       pb::UNKNOWN_REQUEST},
      {"reload on " + std::string(TargetName(t)),
       t,
       {Bytes(Control([](pb::Request* r) { r->mutable_reload(); }))},
       pb::UNKNOWN_REQUEST},
  };
  if (t == Target::kIngest) {
    c.push_back(
        {"query on ingest", t, {Bytes(Query([](pb::QueryRequest*) {}))}, pb::UNKNOWN_REQUEST});
    c.push_back({"status on ingest",
                 t,
                 {Bytes(Control([](pb::Request* r) { r->mutable_status(); }))},
                 pb::UNKNOWN_REQUEST});
  }
  return c;
}

// A stream socket connected to an ipc:// endpoint, or -1.
int ConnectIpc(const std::string& endpoint) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  timeval tv{5, 0};  // a daemon that stops reading must not hang the suite
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", endpoint.substr(6).c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  ::close(fd);
  return -1;
}

// ZMTP 3.0 written by hand (rfc.zeromq.org/spec/23), so that a test can send
// what libzmq's own sockets never would: frames of any declared size, or
// subscriptions that the client does not keep itself (libzmq's XSUB frees
// its subscription trie recursively and overflows its own stack on a
// subscription of a megabyte).
std::string ZmtpHandshake(const std::string& socket_type) {
  std::string g("\xff\0\0\0\0\0\0\0\x01\x7f\x03\x00", 12);  // signature, version 3.0
  g += std::string("NULL") + std::string(16, '\0');         // mechanism
  g += std::string(32, '\0');                               // as-server, filler
  std::string ready = "\x05READY\x0bSocket-Type";
  const uint32_t n = htonl(static_cast<uint32_t>(socket_type.size()));
  ready.append(reinterpret_cast<const char*>(&n), 4);
  ready += socket_type;
  return g + "\x04" + static_cast<char>(ready.size()) + ready;  // a short command
}
// A long frame whose header declares `declared` bytes (default: the body's).
std::string ZmtpFrame(const std::string& body, bool more = false, uint64_t declared = UINT64_MAX) {
  const uint64_t size = declared == UINT64_MAX ? body.size() : declared;
  std::string f(1, static_cast<char>(0x02 | (more ? 0x01 : 0)));
  for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>(size >> shift));
  return f + body;
}
bool SendAll(int fd, const std::string& bytes) {
  for (size_t off = 0; off < bytes.size();) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

void Append(std::vector<Case>* to, std::vector<Case> from) {
  for (Case& c : from) to->push_back(std::move(c));
}

// One daemon for the whole corpus, with small limits and metrics on.
class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new testing::TempDir();
    daemon_ =
        new DaemonProcess(tmp_->path().string(),
                          "[limits]\nmax_message_bytes = " + std::to_string(kMaxMessageBytes) +
                              "\nmax_records_per_request = " + std::to_string(kMaxRecords) + "\n");
    metrics_port_ = testing::FreePort();
    daemon_->set_metrics("tcp://127.0.0.1:" + std::to_string(metrics_port_));
    std::string why;
    if (!daemon_->Start(&why)) start_error_ = new std::string(why);
  }
  static void TearDownTestSuite() {
    if (daemon_->pid() > 0) {
      EXPECT_EQ(daemon_->Stop(), 0) << "anomalyd did not stop cleanly:\n" << daemon_->Log();
    }
    delete daemon_;
    delete tmp_;
    delete start_error_;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << *start_error_;
    score_ = std::make_unique<Client>(ctx_, daemon_->score(), std::chrono::seconds(20));
    control_ = std::make_unique<Client>(ctx_, daemon_->control(), std::chrono::seconds(20));
  }

  static std::string Endpoint(Target t) {
    switch (t) {
      case Target::kScore:
        return daemon_->score();
      case Target::kControl:
        return daemon_->control();
      case Target::kIngest:
        return daemon_->ingest();
    }
    return "";
  }

  // Sends the frames on a fresh DEALER and returns the error code of the
  // reply (its last frame); INTERNAL with *why set when none came back.
  ErrorCode RoundTrip(const Case& c, std::string* why) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, kReplyTimeoutMs);
    s.connect(Endpoint(c.target));
    SendFrames(s, c.frames);
    std::vector<zmq::message_t> reply;
    if (!zmq::recv_multipart(s, std::back_inserter(reply)) || reply.empty()) {
      *why = "no reply";
      return pb::INTERNAL;
    }
    pb::Response r;
    if (!r.ParseFromArray(reply.back().data(), static_cast<int>(reply.back().size()))) {
      *why = "reply is not a Response";
      return pb::INTERNAL;
    }
    *why = r.error().message();
    return r.error().code();
  }

  // Pushes the frames to ingest and waits until the daemon has counted the
  // expected error (or, for OK, scored the records).
  bool Ingest(const Case& c, std::string* why) {
    const uint64_t errors = ErrorCount(c.code);
    const uint64_t scored = Scored();
    zmq::socket_t s(ctx_, zmq::socket_type::push);
    s.set(zmq::sockopt::linger, 2000);
    s.connect(Endpoint(c.target));
    SendFrames(s, c.frames);
    for (int waited = 0; waited < kReplyTimeoutMs; waited += 20) {
      if (c.code == pb::OK ? Scored() > scored : ErrorCount(c.code) > errors) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *why = "no " + std::string(c.code == pb::OK ? "scored record" : pb::ErrorCode_Name(c.code)) +
           " counted; metrics:\n" + Metrics();
    return false;
  }

  static void SendFrames(zmq::socket_t& s, const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      s.send(zmq::buffer(frames[i]),
             i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  std::string Metrics() { return testing::HttpGet(metrics_port_, "/metrics"); }

  // A TCP connection to the metrics endpoint, or -1.
  int ConnectMetrics() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(metrics_port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    ::close(fd);
    return -1;
  }
  std::string ConnectAndClose() {
    const int fd = ConnectMetrics();
    if (fd >= 0) ::close(fd);
    return "";
  }

  // anomalyd_errors_total for `code` (0 when the line is absent).
  uint64_t ErrorCount(ErrorCode code) {
    const std::string key = "anomalyd_errors_total{code=\"" + pb::ErrorCode_Name(code) + "\"} ";
    const std::string m = Metrics();
    const size_t at = m.find(key);
    return at == std::string::npos ? 0 : std::stoull(m.substr(at + key.size()));
  }

  uint64_t Scored() {
    const pb::StatusResponse status = GetStatus(*control_);
    const pb::StreamStatus* st = FindStream(status, "default");
    return st == nullptr ? 0 : st->scored();
  }

  // The daemon still scores a valid request correctly and answers status.
  void ExpectServing(const std::string& after) {
    pb::Response resp;
    const Status s = score_->Call(ValidScore("ok"), &resp);
    ASSERT_TRUE(s.ok()) << "after " << after << ": " << s.ToString();
    ASSERT_EQ(resp.score().results_size(), 1) << after;
    const pb::ScoreResult& r = resp.score().results(0);
    EXPECT_EQ(r.id(), "ok0") << after;
    EXPECT_GE(r.model_version(), 1u) << after;
    EXPECT_TRUE(std::isfinite(r.score()) && r.score() >= 0) << after << ": " << r.score();
    EXPECT_TRUE(std::isfinite(r.threshold()) && r.threshold() > 0)
        << after << ": " << r.threshold();
    EXPECT_FALSE(r.flagged()) << after << ": score " << r.score() << " threshold " << r.threshold();
    const pb::StatusResponse status = GetStatus(*control_);
    const pb::StreamStatus* st = FindStream(status, "default");
    ASSERT_NE(st, nullptr) << after;
    EXPECT_TRUE(std::isfinite(st->threshold())) << after;
  }

  // Runs every case and checks the daemon after each.
  void RunCorpus(const std::vector<Case>& corpus) {
    for (const Case& c : corpus) {
      const std::string what = std::string(TargetName(c.target)) + ": " + c.name;
      std::string why;
      if (c.target == Target::kIngest) {
        EXPECT_TRUE(Ingest(c, &why)) << what << ": " << why;
      } else {
        EXPECT_EQ(pb::ErrorCode_Name(RoundTrip(c, &why)), pb::ErrorCode_Name(c.code))
            << what << ": " << why;
      }
      ExpectServing(what);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  static testing::TempDir* tmp_;
  static DaemonProcess* daemon_;
  static int metrics_port_;
  static std::string* start_error_;
  zmq::context_t ctx_{1};
  std::unique_ptr<Client> score_, control_;
};

testing::TempDir* BadInputTest::tmp_ = nullptr;
DaemonProcess* BadInputTest::daemon_ = nullptr;
int BadInputTest::metrics_port_ = 0;
std::string* BadInputTest::start_error_ = nullptr;

TEST_F(BadInputTest, ScoreEndpoint) {
  std::vector<Case> corpus = FramingCases(Target::kScore);
  Append(&corpus, ScoreCases(Target::kScore));
  Append(&corpus, LegalScoreCases(Target::kScore));
  Append(&corpus, QueryCases(Target::kScore));
  Append(&corpus, WrongEndpointCases(Target::kScore));
  std::printf("score endpoint: %zu cases\n", corpus.size());
  RunCorpus(corpus);
}

TEST_F(BadInputTest, ControlEndpoint) {
  std::vector<Case> corpus = FramingCases(Target::kControl);
  Append(&corpus, ControlCases(tmp_->path().string()));
  Append(&corpus, QueryCases(Target::kControl));
  std::printf("control endpoint: %zu cases\n", corpus.size());
  RunCorpus(corpus);
}

TEST_F(BadInputTest, IngestEndpointCountsEveryErrorByCode) {
  std::vector<Case> corpus = FramingCases(Target::kIngest);
  Append(&corpus, ScoreCases(Target::kIngest));
  Append(&corpus, LegalScoreCases(Target::kIngest));
  Append(&corpus, WrongEndpointCases(Target::kIngest));
  std::printf("ingest endpoint: %zu cases\n", corpus.size());
  RunCorpus(corpus);
}

// The reply to a decodable request echoes its id, and names the record.
TEST_F(BadInputTest, ErrorsEchoTheRequestIdAndNameTheRecord) {
  pb::Request req = EditDense(5, [](pb::DenseBatch* b) { b->set_values(3 * 4 + 1, NAN); });
  req.set_request_id(UINT64_MAX - 1);
  zmq::socket_t s(ctx_, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::rcvtimeo, kReplyTimeoutMs);
  s.connect(daemon_->score());
  SendFrames(s, {Bytes(req)});
  zmq::message_t m;
  ASSERT_TRUE(s.recv(m));
  pb::Response r;
  ASSERT_TRUE(r.ParseFromArray(m.data(), static_cast<int>(m.size())));
  EXPECT_EQ(r.request_id(), UINT64_MAX - 1);
  EXPECT_EQ(r.error().code(), pb::NON_FINITE);
  EXPECT_EQ(r.error().record_index(), 3);
  EXPECT_FALSE(r.has_score());  // an error carries no body
}

// Beyond twice the configured maximum libzmq drops the connection before
// the daemon sees the message: no reply is possible, and the daemon goes on.
TEST_F(BadInputTest, FarOversizedMessageDropsOnlyThatConnection) {
  for (Target t : {Target::kScore, Target::kControl}) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 1000);
    s.connect(Endpoint(t));
    SendFrames(s, {std::string(3 * kMaxMessageBytes, 'x')});
    zmq::message_t m;
    EXPECT_FALSE(s.recv(m)) << TargetName(t);
    ExpectServing(std::string("far oversized on ") + TargetName(t));
  }
  zmq::socket_t push(ctx_, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(daemon_->ingest());
  SendFrames(push, {std::string(3 * kMaxMessageBytes, 'x')});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExpectServing("far oversized on ingest");
}

// Bytes that are not ZMTP at all, straight into each ZeroMQ endpoint's
// socket: the handshake fails and only that connection goes.
TEST_F(BadInputTest, RawBytesThatAreNotZmtp) {
  const std::vector<std::string> payloads = {
      "GET / HTTP/1.1\r\n\r\n", std::string(4096, '\0'), std::string(70000, '\xff'),
      std::string("\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f\x03\x00NULL", 16)};
  for (const std::string& endpoint :
       {daemon_->score(), daemon_->control(), daemon_->ingest(), daemon_->alerts()}) {
    for (const std::string& p : payloads) {
      const int fd = ConnectIpc(endpoint);
      ASSERT_GE(fd, 0) << endpoint;
      (void)::send(fd, p.data(), p.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
    }
    ExpectServing("raw bytes on " + endpoint);
  }
}

// A client can send the alerts PUB socket only subscriptions (and, from an
// XSUB, arbitrary messages, which PUB drops). None of it may stop alerts.
TEST_F(BadInputTest, AlertsEndpointIgnoresWhatClientsSend) {
  zmq::socket_t xsub(ctx_, zmq::socket_type::xsub);
  xsub.set(zmq::sockopt::linger, 0);
  xsub.connect(daemon_->alerts());
  const std::vector<std::vector<std::string>> messages = {{"not a subscription"},
                                                          {""},
                                                          {std::string("\x01", 1)},
                                                          {std::string("\x00", 1)},
                                                          {std::string("\x00never subscribed", 17)},
                                                          {"\x01" + std::string(4096, 't')},
                                                          {"\x01part", "two", "three"},
                                                          {std::string(70000, '\x02')}};
  for (const auto& m : messages) SendFrames(xsub, m);
  for (int i = 0; i < 10000; ++i) SendFrames(xsub, {"\x01topic" + std::to_string(i)});
  // By hand: a subscription of 1 MiB (beyond the endpoint's 1 KiB bound:
  // the peer is dropped), a message split over frames, and a frame that
  // claims 2^40 bytes and never comes.
  const int big = ConnectIpc(daemon_->alerts());
  ASSERT_GE(big, 0);
  // The daemon may hang up while this is still being written.
  (void)SendAll(big, ZmtpHandshake("SUB") + ZmtpFrame("\x01" + std::string(1 << 20, 'm')));
  ::close(big);
  const int raw = ConnectIpc(daemon_->alerts());
  ASSERT_GE(raw, 0);
  EXPECT_TRUE(SendAll(raw, ZmtpHandshake("SUB") + ZmtpFrame("\x01a", /*more=*/true) +
                               ZmtpFrame("b") + ZmtpFrame("\x01xyz", false, uint64_t{1} << 40)));
  ::close(raw);
  // A peer of the wrong socket type fails the handshake.
  zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(daemon_->alerts());
  SendFrames(dealer, {Bytes(ValidScore())});

  zmq::socket_t sub(ctx_, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "default");
  sub.set(zmq::sockopt::rcvtimeo, kReplyTimeoutMs);
  sub.connect(daemon_->alerts());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // slow joiner
  ExpectServing("hostile alert subscribers");
  std::mt19937_64 rng(3);
  pb::Response resp;
  ASSERT_OK(score_->Call(
      testing::ScoreRequest({testing::AnomalousRecord(rng)}, "default", "alert", false), &resp));
  ASSERT_TRUE(resp.score().results(0).flagged());
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(sub, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);
  pb::Alert a;
  ASSERT_TRUE(a.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size())));
  EXPECT_EQ(a.anomaly().record_id(), "alert0");
}

// Frames that claim more than the configured maximum, written by hand to the
// score, control and ingest endpoints: libzmq drops the peer on the header.
TEST_F(BadInputTest, FrameHeaderClaimingTerabytesDropsThePeer) {
  const std::pair<std::string, const char*> peers[] = {
      {daemon_->score(), "DEALER"}, {daemon_->control(), "DEALER"}, {daemon_->ingest(), "PUSH"}};
  for (const auto& [endpoint, type] : peers) {
    const int raw = ConnectIpc(endpoint);
    ASSERT_GE(raw, 0) << endpoint;
    SendAll(raw, ZmtpHandshake(type) + ZmtpFrame("abc", false, uint64_t{1} << 40));
    ::close(raw);
    ExpectServing("a frame of 2^40 bytes on " + endpoint);
  }
}

// The metrics endpoint is a minimal HTTP responder on a raw TCP socket:
// anything but GET /metrics is a 404, and nothing a client sends (or
// fails to send) stops it or the rest of the daemon.
TEST_F(BadInputTest, MetricsEndpointSurvivesGarbageHttp) {
  struct HttpCase {
    const char* name;
    std::string bytes;
    const char* status;  // expected start of the response; "" = any or none
  } cases[] = {
      {"garbage bytes", "\xff\xfe\x00\x01garbage\r\n\r\n", "HTTP/1.1 404"},
      {"NUL bytes", std::string(64, '\0'), "HTTP/1.1 404"},
      {"POST", "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 404"},
      {"HTTP/0.9 style", "GET /\r\n", "HTTP/1.1 404"},
      {"URL of 100000 bytes", "GET /" + std::string(100000, 'a') + " HTTP/1.1\r\n\r\n",
       "HTTP/1.1 404"},
      {"headers of 1 MiB",
       "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'h') + "\r\n\r\n", ""},
      {"10000 headers",
       [] {
         std::string r = "GET /metrics HTTP/1.1\r\n";
         for (int i = 0; i < 10000; ++i) r += "X-" + std::to_string(i) + ": v\r\n";
         return r + "\r\n";
       }(),
       ""},
      {"request line without CRLF", "GET /metrics", "HTTP/1.1 200 OK"},
      {"100 pipelined requests",
       [] {
         std::string r;
         for (int i = 0; i < 100; ++i) r += "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
         return r;
       }(),
       "HTTP/1.1 200 OK"},
      {"connect and close", "", ""},
  };
  for (const HttpCase& c : cases) {
    const std::string response =
        c.bytes.empty() ? ConnectAndClose() : testing::HttpExchange(metrics_port_, c.bytes);
    if (*c.status != '\0') {
      EXPECT_EQ(response.rfind(c.status, 0), 0u) << c.name << ": " << response.substr(0, 200);
    }
    EXPECT_EQ(Metrics().rfind("HTTP/1.1 200 OK", 0), 0u) << "after " << c.name;
    ExpectServing(std::string("metrics: ") + c.name);
  }
  // A client that connects and sends nothing must not hold up the others.
  const int idle = ConnectMetrics();
  ASSERT_GE(idle, 0);
  EXPECT_EQ(Metrics().rfind("HTTP/1.1 200 OK", 0), 0u);
  ExpectServing("an idle metrics connection");
  ::close(idle);
}

// Retrains whose input is only found bad while training: the request is
// taken (training runs in the background), the training fails with a typed
// error in status, and the stream's serving model is untouched.
TEST_F(BadInputTest, RetrainFromBadDataFailsInStatus) {
  const std::string dir = tmp_->path().string();
  std::ofstream(dir + "/malformed.csv") << "f0,f1,f2,f3\n1,2,3,4\n1,abc,3,4\n";
  std::ofstream(dir + "/header_only.csv") << "f0,f1,f2,f3\n";
  std::ofstream(dir + "/ragged.csv") << "f0,f1,f2,f3\n1,2,3,4\n1,2,3\n";
  std::ofstream(dir + "/empty.csv");
  struct Async {
    const char* stream;
    std::function<void(pb::RetrainRequest*)> source;
    const char* error;  // expected in TrainingStatus.error
  } cases[] = {
      {"malformed", [&](pb::RetrainRequest* r) { r->set_csv_path(dir + "/malformed.csv"); },
       "malformed.csv:3"},
      {"header_only", [&](pb::RetrainRequest* r) { r->set_csv_path(dir + "/header_only.csv"); },
       "header_only.csv"},
      {"ragged", [&](pb::RetrainRequest* r) { r->set_csv_path(dir + "/ragged.csv"); },
       "ragged.csv:3"},
      {"empty", [&](pb::RetrainRequest* r) { r->set_csv_path(dir + "/empty.csv"); }, "empty.csv"},
      {"no_reservoir", [](pb::RetrainRequest* r) { r->set_from_reservoir(true); }, "reservoir"},
      {"two_rows",
       [](pb::RetrainRequest* r) {
         r->mutable_inline_rows()->set_dim(2);
         for (float v : {1.f, 2.f, 3.f, 4.f}) r->mutable_inline_rows()->add_values(v);
       },
       "TRAINING_FAILED"},
  };
  for (const Async& c : cases) {
    pb::Request req;
    req.mutable_retrain()->set_stream(c.stream);
    c.source(req.mutable_retrain());
    pb::Response resp;
    const Status s = control_->Call(req, &resp);
    ASSERT_TRUE(s.ok()) << c.stream << ": " << s.ToString();
    std::string error;
    for (int i = 0; i < 500 && error.empty(); ++i) {
      const pb::StatusResponse status = GetStatus(*control_);
      const pb::StreamStatus* st = FindStream(status, c.stream);
      if (st != nullptr && st->training().state() == pb::FAILED) error = st->training().error();
      if (error.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(error.find(c.error), std::string::npos) << c.stream << ": '" << error << "'";
    ExpectServing(std::string("retrain from ") + c.stream);
    pb::Request score = testing::ScoreRequest({{1, 2, 3, 4}}, c.stream, "x", false);
    EXPECT_EQ(score_->Call(score, &resp).code(), pb::UNKNOWN_STREAM) << c.stream;
  }
}

// Runs last: nothing above may have thrown inside the daemon's I/O loop
// (each throw there costs the turn of every endpoint) or crashed it.
TEST_F(BadInputTest, DaemonLoggedNoIoLoopErrors) {
  const std::string log = daemon_->Log();
  std::string errors;
  for (size_t at = log.find("I/O loop"); at != std::string::npos;
       at = log.find("I/O loop", at + 1)) {
    errors += log.substr(at, log.find('\n', at) - at) + "\n";
  }
  EXPECT_EQ(errors, "");
  EXPECT_GT(daemon_->pid(), 0);
  EXPECT_EQ(::kill(daemon_->pid(), 0), 0);
}

}  // namespace
}  // namespace anomalyd
