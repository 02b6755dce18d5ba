#include "daemon/config.h"

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
normaliser = "robust"
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
)", "t.toml", &c));
  const TrainOptions& t = c.train;
  EXPECT_EQ(t.model.hidden, (std::vector<uint32_t>{32, 16}));
  EXPECT_EQ(t.model.latent, 4u);
  EXPECT_EQ(t.model.activation, pb::TANH);
  EXPECT_EQ(t.model.likelihood, pb::GAUSSIAN_LEARNED);
  EXPECT_FLOAT_EQ(t.model.beta, 0.5f);
  EXPECT_FLOAT_EQ(t.model.score_beta, 0.75f);
  EXPECT_EQ(t.model.normaliser, pb::ROBUST);
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
  };
  for (const Case& c : cases) {
    Config cfg;
    Status s = ParseConfig(c.text, "t.toml", &cfg);
    EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT) << c.text;
    EXPECT_NE(s.message().find(c.must_mention), std::string::npos)
        << c.text << " -> " << s.message();
  }
}

TEST(ConfigTest, ShippedConfigParses) {
  Config c;
  ASSERT_OK(LoadConfig(std::string(ANOMALYD_SOURCE_DIR) + "/config/anomalyd.toml", &c));
}

TEST(ConfigTest, MissingFileIsIoError) {
  Config c;
  EXPECT_EQ(LoadConfig("/nonexistent/anomalyd.toml", &c).code(), pb::IO_ERROR);
}

}  // namespace
}  // namespace anomalyd
