// CURVE authentication ([auth]): the real daemon refusing whoever is not on
// an endpoint's allow-list. Key files alone: tests/common/curve_keys_test.cc.
#include <sys/stat.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "clients/client.h"
#include "common/curve_keys.h"
#include "tests/daemon/daemon_process.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

namespace fs = std::filesystem;
using testing::AnomalousRecord;
using testing::DaemonProcess;
using testing::NormalRecord;

// How long a plaintext client waits before its refused connection counts
// as refused (a keyed client is told at once: UNAUTHENTICATED).
constexpr std::chrono::milliseconds kRefusedWait(1500);
constexpr std::chrono::seconds kReplyWait(20);

// Runs a shell command; its exit code, with stdout and stderr in *output.
int RunCommand(const std::string& cmd, std::string* output) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  output->clear();
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) output->append(buf, n);
  const int rc = ::pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string Binary(const std::string& rel) { return std::string(ANOMALYD_BINARY_DIR) + "/" + rel; }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

pb::Request ScoreRequest(const std::vector<std::vector<float>>& rows, const std::string& prefix) {
  pb::Request req;
  pb::DenseBatch* b = req.mutable_score()->mutable_dense();
  b->set_stream("default");
  b->set_dim(static_cast<uint32_t>(rows[0].size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    b->mutable_values()->Add(rows[i].begin(), rows[i].end());
    b->add_ids(prefix + std::to_string(i));
  }
  return req;
}

pb::Request StatusRequest() {
  pb::Request req;
  req.mutable_status();
  return req;
}

// Key files: the server pair in keys/, and clients "alice" (allowed on
// score, ingest, alerts: clients/), "root" (allowed on control too:
// control/) and "mallory" (on no list).
class AuthKeys {
 public:
  explicit AuthKeys(const fs::path& dir) : dir_(dir) {
    for (const char* d : {"keys", "clients", "control"}) {
      fs::create_directories(dir_ / d);
      fs::permissions(dir_ / d, fs::perms::owner_all);
    }
    for (const char* name : {"server", "alice", "root", "mallory"}) Make(name);
    Allow("alice", "clients");
    Allow("root", "control");
  }
  std::string Dir(const char* d) const { return (dir_ / d).string(); }
  std::string Public(const std::string& name) const { return Dir("keys") + "/" + name + ".key"; }
  std::string Secret(const std::string& name) const { return Public(name) + "_secret"; }
  void Allow(const std::string& name, const char* list) const {
    fs::copy_file(Public(name), Dir(list) + "/" + name + ".key");
  }
  CurveClientKeys For(const std::string& client) const {
    CurveClientKeys k;
    EXPECT_OK(LoadClientKeys(Public("server"), Secret(client), &k));
    return k;
  }
  std::string Config() const {
    return "[auth]\nenabled = true\nserver_secret_key = \"" + Secret("server") +
           "\"\nclients_dir = \"" + Dir("clients") + "\"\ncontrol_clients_dir = \"" +
           Dir("control") + "\"\n";
  }

 private:
  void Make(const std::string& name) {
    CurveKeyPair pair;
    std::string pub;
    ASSERT_OK(GenerateKeyPair(&pair));
    ASSERT_OK(WriteKeyFiles(Dir("keys"), name, pair, &pub));
  }
  fs::path dir_;
};

class AuthTest : public ::testing::Test {
 protected:
  void StartDaemon() {
    daemon_ = std::make_unique<DaemonProcess>(tmp_.path().string(), keys_.Config());
    std::string why;
    ASSERT_TRUE(daemon_->Start(&why)) << why;
  }
  void TearDown() override {
    if (daemon_ && daemon_->pid() > 0) {
      EXPECT_EQ(daemon_->Stop(), 0) << daemon_->Log();
    }
  }
  // A call on `endpoint` as `client` ("" = plaintext), waiting `wait`.
  Status Call(const std::string& endpoint, const std::string& client, const pb::Request& req,
              std::chrono::milliseconds wait = kReplyWait) {
    Client c(ctx_, endpoint, wait, client.empty() ? CurveClientKeys() : keys_.For(client));
    pb::Response resp;
    return c.Call(req, &resp);
  }

  testing::TempDir tmp_;
  AuthKeys keys_{tmp_.path()};
  zmq::context_t ctx_{1};
  std::unique_ptr<DaemonProcess> daemon_;
  std::mt19937_64 rng_{11};
};

TEST_F(AuthTest, AllowedKeyScoresAndGetsStatus) {
  StartDaemon();
  const pb::Request score = ScoreRequest({NormalRecord(rng_), AnomalousRecord(rng_)}, "a");
  EXPECT_OK(Call(daemon_->score(), "alice", score));
  EXPECT_OK(Call(daemon_->score(), "alice", StatusRequest()));
  // A control key is trusted on the other endpoints too.
  EXPECT_OK(Call(daemon_->score(), "root", score));
  EXPECT_OK(Call(daemon_->control(), "root", StatusRequest()));
}

TEST_F(AuthTest, UnknownKeyAndPlaintextClientGetNothing) {
  StartDaemon();
  const pb::Request score = ScoreRequest({NormalRecord(rng_)}, "m");
  for (const std::string& endpoint : {daemon_->score(), daemon_->control()}) {
    EXPECT_EQ(Call(endpoint, "mallory", score, kReplyWait).code(), pb::UNAUTHENTICATED)
        << endpoint;
    EXPECT_EQ(Call(endpoint, "", StatusRequest(), kRefusedWait).code(), pb::IO_ERROR) << endpoint;
  }
  // Nothing they sent was scored.
  pb::Response resp;
  Client root(ctx_, daemon_->control(), kReplyWait, keys_.For("root"));
  ASSERT_OK(root.Call(StatusRequest(), &resp));
  ASSERT_EQ(resp.status().streams_size(), 1);
  EXPECT_EQ(resp.status().streams(0).scored(), 0u);
  EXPECT_NE(daemon_->Log().find("refused client key"), std::string::npos) << daemon_->Log();
}

TEST_F(AuthTest, ScoreKeyIsRefusedOnRestrictedControl) {
  StartDaemon();
  EXPECT_OK(Call(daemon_->score(), "alice", StatusRequest()));
  EXPECT_EQ(Call(daemon_->control(), "alice", StatusRequest(), kReplyWait).code(),
            pb::UNAUTHENTICATED);
  EXPECT_OK(Call(daemon_->control(), "root", StatusRequest()));
}

TEST_F(AuthTest, AlertsAndIngestNeedAnAllowedKey) {
  StartDaemon();
  auto subscribe = [&](const std::string& client) {
    auto sub = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
    sub->set(zmq::sockopt::linger, 0);
    sub->set(zmq::sockopt::subscribe, "");
    if (!client.empty()) SetCurveClient(*sub, keys_.For(client));
    sub->connect(daemon_->alerts());
    return sub;
  };
  auto alice = subscribe("alice"), plain = subscribe(""), mallory = subscribe("mallory");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // slow joiners
  // Fire-and-forget from a plaintext PUSH: never scored.
  zmq::socket_t push(ctx_, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(daemon_->ingest());
  const std::string plain_bytes = ScoreRequest({AnomalousRecord(rng_)}, "p").SerializeAsString();
  (void)push.send(zmq::buffer(plain_bytes), zmq::send_flags::dontwait);

  ASSERT_OK(Call(daemon_->score(), "alice", ScoreRequest({AnomalousRecord(rng_)}, "x")));
  std::vector<zmq::message_t> frames;
  alice->set(zmq::sockopt::rcvtimeo, 5000);
  ASSERT_TRUE(zmq::recv_multipart(*alice, std::back_inserter(frames)));
  pb::Alert a;
  ASSERT_TRUE(a.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size())));
  EXPECT_EQ(a.anomaly().record_id(), "x0");
  for (auto* refused : {plain.get(), mallory.get()}) {
    zmq::message_t m;
    refused->set(zmq::sockopt::rcvtimeo, 300);
    EXPECT_FALSE(refused->recv(m));
  }
  pb::Response resp;
  Client score(ctx_, daemon_->score(), kReplyWait, keys_.For("alice"));
  ASSERT_OK(score.Call(StatusRequest(), &resp));
  EXPECT_EQ(resp.status().streams(0).scored(), 1u);  // only alice's record
}

TEST_F(AuthTest, SighupReReadsTheClientKeys) {
  StartDaemon();
  EXPECT_EQ(Call(daemon_->score(), "mallory", StatusRequest(), kReplyWait).code(),
            pb::UNAUTHENTICATED);
  keys_.Allow("mallory", "clients");
  ::kill(daemon_->pid(), SIGHUP);
  Status s;
  // A refusal now comes back at once: wait between tries for the reload.
  for (int i = 0; i < 20; ++i) {
    s = Call(daemon_->score(), "mallory", StatusRequest(), std::chrono::milliseconds(1000));
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_OK(s);
}

TEST_F(AuthTest, AnomalyctlKeygenKeysWork) {
  const std::string ctl = Binary("clients/anomalyctl");
  const std::string dir = tmp_.file("bob-keys");
  std::string out;
  ASSERT_EQ(RunCommand(ctl + " keygen --out " + dir + " --name bob", &out), 0) << out;
  EXPECT_NE(out.find(dir + "/bob.key"), std::string::npos) << out;
  EXPECT_EQ(ModeOf(dir + "/bob.key_secret"), 0600u);
  EXPECT_EQ(ModeOf(dir + "/bob.key"), 0644u);
  EXPECT_NE(RunCommand(ctl + " keygen --out " + dir + " --name bob", &out), 0) << "overwrote";
  fs::copy_file(dir + "/bob.key", keys_.Dir("control") + "/bob.key");
  StartDaemon();

  const std::string common = ctl + " --timeout-ms 2000 --endpoint " + daemon_->score() +
                             " --control " + daemon_->control();
  const std::string as_bob =
      " --server-key " + keys_.Public("server") + " --client-key " + dir + "/bob.key_secret";
  ASSERT_EQ(RunCommand(common + as_bob + " status", &out), 0) << out;
  EXPECT_NE(out.find("default"), std::string::npos) << out;
  EXPECT_EQ(RunCommand(common + " status", &out), 1) << out;  // plaintext
  EXPECT_NE(out.find("no reply"), std::string::npos) << out;
  // A client secret others can read is refused before anything is sent.
  fs::permissions(dir + "/bob.key_secret", static_cast<fs::perms>(0644));
  EXPECT_EQ(RunCommand(common + as_bob + " status", &out), 1) << out;
  EXPECT_NE(out.find("has mode 0644"), std::string::npos) << out;
}

// The daemon does not start with a key file others could read or change:
// exit status 2 (a configuration error), naming the file and its mode.
TEST(AuthStartupTest, LooseKeyPermissionsAreRefused) {
  struct Case {
    const char* file;  // under the temp dir
    mode_t mode;
  } cases[] = {
      {"keys/server.key_secret", 0640},
      {"keys/server.key_secret", 0604},
      {"clients/alice.key", 0664},
      {"clients", 0777},
  };
  for (const Case& c : cases) {
    testing::TempDir tmp;
    AuthKeys keys(tmp.path());
    const std::string loose = tmp.file(c.file);
    fs::permissions(loose, static_cast<fs::perms>(c.mode));
    std::ofstream(tmp.file("anomalyd.toml"))
        << "[daemon]\nstate_dir = \"" << tmp.file("state") << "\"\n[endpoints]\n"
        << "score = \"ipc://" << tmp.file("s.sock") << "\"\ncontrol = \"ipc://"
        << tmp.file("c.sock") << "\"\ningest = \"\"\nalerts = \"\"\nmetrics = \"\"\n"
        << keys.Config();
    std::string out;
    // `timeout`: a daemon that wrongly starts must not hang the test.
    const int rc = RunCommand("timeout 20 " + Binary("daemon/anomalyd") + " --config " +
                                  tmp.file("anomalyd.toml"), &out);
    EXPECT_EQ(rc, 2) << c.file << ": " << out;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(c.mode));
    EXPECT_NE(out.find(loose + " has mode " + mode), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(tmp.file("state"))) << "started before refusing";
  }
}

}  // namespace
}  // namespace anomalyd
