#include "common/config.h"

#include <fstream>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

TEST(ConfigTest, EmptyTextGivesDefaults) {
  Config c;
  ASSERT_OK(ParseConfig("", "t.toml", &c));
  TrainOptions d;
  EXPECT_EQ(c.train.batch_size, d.batch_size);
  EXPECT_EQ(c.train.threshold.method, d.threshold.method);
}

TEST(ConfigTest, ReadsEveryKnownKey) {
  Config c;
  ASSERT_OK(ParseConfig(R"(
[model]
hidden = [32, 16]
latent = 4
activation = "tanh"
likelihood = "gaussian_learned"
beta = 0.5
score_beta = 0.75
density_weight = 1.5
normaliser = "quantile"
ensemble = 3
samples = 8
[training]
max_epochs = 12
batch_size = 256
learning_rate = 0.002
weight_decay = 1e-5
validation_split = 0.15
holdout_split = 0.25
patience = 4
kl_warmup_epochs = 2
seed = 9
device = "cpu"
[threshold]
method = "quantile"
contamination = 0.02
risk = 0.0001
initial_quantile = 0.95
value = 3.5
)",
                        "t.toml", &c));
  const TrainOptions& t = c.train;
  EXPECT_EQ(t.model.hidden, (std::vector<uint32_t>{32, 16}));
  EXPECT_EQ(t.model.latent, 4u);
  EXPECT_EQ(t.model.activation, pb::TANH);
  EXPECT_EQ(t.model.likelihood, pb::GAUSSIAN_LEARNED);
  EXPECT_FLOAT_EQ(t.model.beta, 0.5f);
  EXPECT_FLOAT_EQ(t.model.score_beta, 0.75f);
  EXPECT_FLOAT_EQ(t.model.density_weight, 1.5f);
  EXPECT_EQ(t.model.normaliser, pb::QUANTILE_NORMAL);
  EXPECT_EQ(t.model.ensemble, 3u);
  EXPECT_EQ(t.model.samples, 8u);
  EXPECT_EQ(t.max_epochs, 12u);
  EXPECT_EQ(t.batch_size, 256u);
  EXPECT_DOUBLE_EQ(t.learning_rate, 0.002);
  EXPECT_DOUBLE_EQ(t.weight_decay, 1e-5);
  EXPECT_DOUBLE_EQ(t.validation_split, 0.15);
  EXPECT_DOUBLE_EQ(t.holdout_split, 0.25);
  EXPECT_EQ(t.patience, 4u);
  EXPECT_EQ(t.kl_warmup_epochs, 2u);
  EXPECT_EQ(t.seed, 9u);
  EXPECT_EQ(t.device, "cpu");
  EXPECT_EQ(t.threshold.method, pb::QUANTILE);
  EXPECT_DOUBLE_EQ(t.threshold.contamination, 0.02);
  EXPECT_DOUBLE_EQ(t.threshold.risk, 0.0001);
  EXPECT_DOUBLE_EQ(t.threshold.initial_quantile, 0.95);
  EXPECT_DOUBLE_EQ(t.threshold.fixed_value, 3.5);
}

TEST(ConfigTest, ReadsEveryNormaliserName) {
  const std::pair<const char*, pb::NormaliserKind> names[] = {{"standard", pb::STANDARD},
                                                              {"minmax", pb::MINMAX},
                                                              {"robust", pb::ROBUST},
                                                              {"quantile", pb::QUANTILE_NORMAL},
                                                              {"auto", pb::AUTO_QUANTILE}};
  for (const auto& [name, kind] : names) {
    Config c;
    ASSERT_OK(ParseConfig(std::string("[model]\nnormaliser = \"") + name + "\"\n", "t.toml", &c));
    EXPECT_EQ(c.train.model.normaliser, kind) << name;
  }
}

TEST(ConfigTest, ReadsAuth) {
  Config c;
  ASSERT_OK(ParseConfig(R"(
[auth]
enabled = true
server_secret_key = "/k/server.key_secret"
clients_dir = "/k/clients"
control_clients_dir = "/k/admins"
endpoints = ["score", "control"]
)",
                        "t.toml", &c));
  EXPECT_TRUE(c.auth.enabled);
  EXPECT_EQ(c.auth.server_secret_key, "/k/server.key_secret");
  EXPECT_EQ(c.auth.clients_dir, "/k/clients");
  EXPECT_EQ(c.auth.control_clients_dir, "/k/admins");
  EXPECT_EQ(c.auth.endpoints, (std::vector<std::string>{"score", "control"}));
}

TEST(ConfigTest, ErrorsNameTheKey) {
  struct Case {
    const char* text;
    const char* must_mention;
  } cases[] = {
      {"[model]\nlatnet = 3\n", "model.latnet"},
      {"[modle]\n", "modle"},
      {"[training]\nbatch_size = 0\n", "training.batch_size"},
      {"[training]\nbatch_size = \"big\"\n", "training.batch_size"},
      {"[training]\nlearning_rate = -1\n", "training.learning_rate"},
      {"[model]\nactivation = \"sigmoid\"\n", "model.activation"},
      {"[model]\nhidden = [64, 0]\n", "model.hidden"},
      {"[model]\nhidden = 64\n", "model.hidden"},
      {"[threshold]\nmethod = \"magic\"\n", "threshold.method"},
      {"[threshold]\ncontamination = 0.9\n", "threshold.contamination"},
      {"model = 3\n", "model"},
      {"[model\n", "t.toml:1"},
      {"[auth]\nenabled = true\nclients_dir = \"c\"\n", "auth.server_secret_key"},
      {"[auth]\nenabled = true\nserver_secret_key = \"s\"\n", "auth.clients_dir"},
      {"[auth]\nendpoints = [\"metrics\"]\n", "auth.endpoints"},
      {"[auth]\nendpoints = \"score\"\n", "auth.endpoints"},
      {"[storage]\npath = \"/a.db\"\nurl = \"sqlite:///b.db\"\n", "storage.path and storage.url"},
      {"[storage]\nurl = 3\n", "storage.url"},
  };
  for (const Case& c : cases) {
    Config cfg;
    Status s = ParseConfig(c.text, "t.toml", &cfg);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << c.text;
    EXPECT_NE(s.message().find(c.must_mention), std::string::npos)
        << c.text << " -> " << s.message();
  }
}

// Regression: the shipped file once said method = "pot" after the code's
// default had become "quantile". It must show the defaults it documents.
TEST(ConfigTest, ShippedConfigShowsTheDefaults) {
  Config c;
  ASSERT_OK(LoadConfig(std::string(ANOMALYD_SOURCE_DIR) + "/config/anomalyd.toml", &c));
  const Config d;
  const TrainOptions& t = c.train;
  EXPECT_EQ(t.model.hidden, d.train.model.hidden);
  EXPECT_EQ(t.model.latent, d.train.model.latent);
  EXPECT_EQ(t.model.activation, d.train.model.activation);
  EXPECT_EQ(t.model.likelihood, d.train.model.likelihood);
  EXPECT_EQ(t.model.beta, d.train.model.beta);
  EXPECT_EQ(t.model.score_beta, d.train.model.score_beta);
  EXPECT_EQ(t.model.density_weight, d.train.model.density_weight);
  EXPECT_EQ(t.model.normaliser, d.train.model.normaliser);
  EXPECT_EQ(t.model.ensemble, d.train.model.ensemble);
  EXPECT_EQ(t.model.samples, d.train.model.samples);
  EXPECT_EQ(t.max_epochs, d.train.max_epochs);
  EXPECT_EQ(t.batch_size, d.train.batch_size);
  EXPECT_EQ(t.learning_rate, d.train.learning_rate);
  EXPECT_EQ(t.validation_split, d.train.validation_split);
  EXPECT_EQ(t.holdout_split, d.train.holdout_split);
  EXPECT_EQ(t.patience, d.train.patience);
  EXPECT_EQ(t.seed, d.train.seed);
  EXPECT_EQ(t.device, d.train.device);
  EXPECT_EQ(t.threshold.method, d.train.threshold.method);
  EXPECT_EQ(t.threshold.contamination, d.train.threshold.contamination);
  EXPECT_EQ(t.threshold.risk, d.train.threshold.risk);
  EXPECT_EQ(t.threshold.initial_quantile, d.train.threshold.initial_quantile);
  EXPECT_EQ(c.daemon.state_dir, d.daemon.state_dir);
  EXPECT_EQ(c.endpoints.score, d.endpoints.score);
  EXPECT_EQ(c.endpoints.metrics, d.endpoints.metrics);
  EXPECT_EQ(c.batcher.max_batch, d.batcher.max_batch);
  EXPECT_EQ(c.batcher.queue_records, d.batcher.queue_records);
  EXPECT_EQ(c.batcher.inline_max_records, d.batcher.inline_max_records);
  EXPECT_EQ(c.limits.max_message_bytes, d.limits.max_message_bytes);
  EXPECT_EQ(c.storage.path, d.storage.path);
  EXPECT_EQ(c.storage.url, d.storage.url);
  EXPECT_EQ(c.storage.synchronous, d.storage.synchronous);
  EXPECT_EQ(c.storage.durability, d.storage.durability);
  EXPECT_EQ(c.storage.reservoir_rate, d.storage.reservoir_rate);
  EXPECT_EQ(c.recalibration.every_scores, d.recalibration.every_scores);
  EXPECT_EQ(c.recalibration.min_interval_seconds, d.recalibration.min_interval_seconds);
  EXPECT_EQ(c.recalibration.max_step, d.recalibration.max_step);
  EXPECT_EQ(c.recalibration.max_drift, d.recalibration.max_drift);
  EXPECT_TRUE(c.streams.empty());
  EXPECT_EQ(c.auth.enabled, d.auth.enabled);
  EXPECT_EQ(c.auth.server_secret_key, d.auth.server_secret_key);
  EXPECT_EQ(c.auth.clients_dir, d.auth.clients_dir);
  EXPECT_EQ(c.auth.control_clients_dir, d.auth.control_clients_dir);
  EXPECT_EQ(c.auth.endpoints, d.auth.endpoints);
  EXPECT_EQ(c.auth.metrics_token_file, d.auth.metrics_token_file);
  EXPECT_EQ(c.auth.metrics_allow, d.auth.metrics_allow);
  EXPECT_EQ(c.daemon.max_trainings, d.daemon.max_trainings);
  EXPECT_EQ(c.daemon.max_training_states, d.daemon.max_training_states);
  EXPECT_EQ(c.limits.max_reply_bytes, d.limits.max_reply_bytes);
  EXPECT_EQ(c.limits.max_client_reply_bytes, d.limits.max_client_reply_bytes);
  EXPECT_EQ(c.limits.max_csv_bytes, d.limits.max_csv_bytes);
  EXPECT_EQ(c.limits.max_pending_queries, d.limits.max_pending_queries);
  const AlertOptions& a = c.alerts;
  EXPECT_EQ(a.alertmanager_url, d.alerts.alertmanager_url);
  EXPECT_EQ(a.webhooks, d.alerts.webhooks);
  EXPECT_EQ(a.webhook_secret_file, d.alerts.webhook_secret_file);
  EXPECT_EQ(a.timeout_s, d.alerts.timeout_s);
  EXPECT_EQ(a.retry_initial_s, d.alerts.retry_initial_s);
  EXPECT_EQ(a.retry_max_s, d.alerts.retry_max_s);
  EXPECT_EQ(a.max_attempts, d.alerts.max_attempts);
  EXPECT_EQ(a.max_age_s, d.alerts.max_age_s);
  EXPECT_EQ(a.poll_interval_s, d.alerts.poll_interval_s);
  EXPECT_EQ(a.shaping.enabled, d.alerts.shaping.enabled);
  EXPECT_EQ(a.shaping.group_by, d.alerts.shaping.group_by);
  EXPECT_EQ(a.shaping.min_count, d.alerts.shaping.min_count);
  EXPECT_EQ(a.shaping.min_duration_s, d.alerts.shaping.min_duration_s);
  EXPECT_EQ(a.shaping.resolve_after_s, d.alerts.shaping.resolve_after_s);
  EXPECT_EQ(a.shaping.renotify_every_s, d.alerts.shaping.renotify_every_s);
  EXPECT_EQ(a.shaping.suppress_after_retrain_s, d.alerts.shaping.suppress_after_retrain_s);
}

TEST(ConfigTest, StreamAlertShapingOverridesTheDefaults) {
  Config c;
  ASSERT_OK(
      ParseConfig("[alerts]\nmin_count = 5\nresolve_after_s = 60\n"
                  "[streams.a]\n[streams.b.alerts]\nmin_count = 2\ngroup_by = \"feature\"\n",
                  "test", &c));
  EXPECT_EQ(c.streams["a"].alerts.min_count, 5u);
  EXPECT_EQ(c.streams["b"].alerts.min_count, 2u);
  EXPECT_EQ(c.streams["b"].alerts.group_by, "feature");
  EXPECT_EQ(c.streams["b"].alerts.resolve_after_s, 60);  // from [alerts]
}

TEST(ConfigTest, BadAlertKeysNameTheKey) {
  const struct {
    const char* text;
    const char* message;
  } kCases[] = {
      {"[alerts]\nalertmanager_url = \"ftp://x\"", "alerts.alertmanager_url"},
      {"[alerts]\nwebhooks = [\"127.0.0.1:80\"]", "alerts.webhooks"},
      {"[alerts]\ngroup_by = \"host\"", "alerts.group_by"},
      {"[alerts]\nmin_count = 0", "alerts.min_count"},
      {"[alerts]\nretry_initial_s = 10\nretry_max_s = 1", "alerts.retry_max_s"},
      {"[alerts]\nbogus = 1", "alerts.bogus"},
      {"[streams.x.alerts]\nbogus = 1", "streams.x.alerts.bogus"},
      {"[streams.x]\nalerts = 3", "streams.x.alerts"},
  };
  for (const auto& k : kCases) {
    Config c;
    Status s = ParseConfig(k.text, "test", &c);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << k.text;
    EXPECT_NE(s.message().find(k.message), std::string::npos) << s.message();
  }
}

// --state-dir is pasted into an override: any path must survive it.
TEST(ConfigTest, TomlStringKeepsAnyPathVerbatim) {
  for (const std::string path :
       {"plain", "a\"b", "tab\there", "back\\slash", "nl\nx", "\x01ctl", "caf\xc3\xa9"}) {
    Config c;
    ASSERT_OK(ParseConfig("", "test", &c, {"daemon.state_dir=" + TomlString(path)}));
    EXPECT_EQ(c.daemon.state_dir, path);
  }
}

TEST(ConfigTest, MissingFileIsIoError) {
  Config c;
  EXPECT_EQ(LoadConfig("/nonexistent/anomalyd.toml", &c).code(), pb::IO_ERROR);
}

}  // namespace
}  // namespace anomalyd
