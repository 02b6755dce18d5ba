// Model::Save / Model::Load: round trip and every way a bundle can be bad.
#include <filesystem>
#include <fstream>

#include "model/model.h"
#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

namespace fs = std::filesystem;
using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

std::string Slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void Spit(const std::string& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

class BundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ConfigureThreads(1);
    TrainOptions o = SmallTrainOptions();
    o.max_epochs = 5;
    o.version = 3;
    o.stream = "disk";
    Status s = Model::Train(o, CorrelatedData(300, 1), FeatureNames(), nullptr, &model_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() { model_.reset(); }

  // Saves a fresh copy and returns its directory.
  std::string Saved() {
    std::string dir = tmp_.file("bundle");
    EXPECT_OK(model_->Save(dir));
    return dir;
  }
  ErrorCode LoadCode(const std::string& dir) {
    std::unique_ptr<Model> m;
    Status s = Model::Load(dir, "cpu", &m);
    if (!s.ok()) {
      EXPECT_EQ(m, nullptr);
    }
    return s.code();
  }

  static inline std::unique_ptr<Model> model_;
  testing::TempDir tmp_;
};

TEST_F(BundleTest, RoundTripKeepsScoresAndMetadata) {
  std::string dir = Saved();
  std::unique_ptr<Model> back;
  ASSERT_OK(Model::Load(dir, "cpu", &back));
  EXPECT_EQ(back->meta().version(), 3u);
  EXPECT_EQ(back->meta().stream(), "disk");
  EXPECT_EQ(back->meta().holdout_scores_size(), model_->meta().holdout_scores_size());
  EXPECT_EQ(back->threshold(), model_->threshold());
  Matrix m = CorrelatedData(64, 9);
  ScoreOptions opts;
  opts.contributions = true;
  ScoreOutput a, b;
  ASSERT_OK(model_->Score(m.data.data(), m.rows, opts, &a));
  ASSERT_OK(back->Score(m.data.data(), m.rows, opts, &b));
  EXPECT_EQ(a.score, b.score);
  EXPECT_EQ(a.contributions, b.contributions);
  EXPECT_EQ(a.p_value, b.p_value);
}

TEST_F(BundleTest, SaveLeavesNoTemporaryAndReplacesAWholeBundle) {
  std::string dir = Saved();
  ASSERT_OK(model_->Save(dir));  // over the existing one
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(tmp_.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "bundle");
  }
  EXPECT_EQ(entries, 1u);
  EXPECT_EQ(LoadCode(dir), pb::OK);
}

TEST_F(BundleTest, MissingBundleIsNotFound) {
  EXPECT_EQ(LoadCode(tmp_.file("nothing-here")), pb::NOT_FOUND);
}

TEST_F(BundleTest, BadDeviceIsInvalidArgument) {
  std::unique_ptr<Model> m;
  EXPECT_EQ(Model::Load(Saved(), "gpu9", &m).code(), pb::INVALID_ARGUMENT);
}

TEST_F(BundleTest, DamagedBundlesAreCorrupt) {
  struct Case {
    const char* what;
    std::function<void(const std::string& dir)> damage;
  } cases[] = {
      {"metadata truncated",
       [](const std::string& d) {
         std::string b = Slurp(d + "/metadata.pb");
         Spit(d + "/metadata.pb", b.substr(0, b.size() / 2));
       }},
      {"metadata header only",
       [](const std::string& d) {
         Spit(d + "/metadata.pb", Slurp(d + "/metadata.pb").substr(0, 20));
       }},
      {"metadata empty", [](const std::string& d) { Spit(d + "/metadata.pb", ""); }},
      {"metadata byte flipped",
       [](const std::string& d) {
         std::string b = Slurp(d + "/metadata.pb");
         b[b.size() - 3] ^= 0x5a;
         Spit(d + "/metadata.pb", b);
       }},
      {"metadata foreign",
       [](const std::string& d) {
         Spit(d + "/metadata.pb", "PK\x03\x04 this is a zip file, not a bundle");
       }},
      {"metadata missing", [](const std::string& d) { fs::remove(d + "/metadata.pb"); }},
      {"weights truncated",
       [](const std::string& d) {
         std::string b = Slurp(d + "/vae_0.pt");
         Spit(d + "/vae_0.pt", b.substr(0, b.size() - 100));
       }},
      {"weights byte flipped",
       [](const std::string& d) {
         std::string b = Slurp(d + "/vae_0.pt");
         b[b.size() / 2] ^= 0x01;
         Spit(d + "/vae_0.pt", b);
       }},
      {"weights missing", [](const std::string& d) { fs::remove(d + "/vae_0.pt"); }},
  };
  for (const Case& c : cases) {
    std::string dir = Saved();
    c.damage(dir);
    ErrorCode code = LoadCode(dir);
    EXPECT_TRUE(code == pb::CORRUPT) << c.what << ": " << pb::ErrorCode_Name(code);
    fs::remove_all(dir);
  }
}

// Metadata holding a feature name that is not UTF-8 (written by a build
// without Model::Train's check) does not parse: CORRUPT, never a crash. The
// header is rewritten with the right length and hash so that it is the
// parse, not the checksum, that refuses it.
TEST_F(BundleTest, RegressionMetadataWithANonUtf8NameIsCorrupt) {
  const std::string dir = Saved();
  const std::string bytes = Slurp(dir + "/metadata.pb");
  constexpr size_t kMagicLen = 16;  // "ANOMALYD-BUNDLE\n"
  pb::BundleMeta meta;
  ASSERT_TRUE(meta.ParseFromString(bytes.substr(kMagicLen + 16)));
  meta.set_feature_names(1, "caf\xE9");
  std::string payload;
  meta.SerializeToString(&payload);  // protobuf logs the bad string here
  auto put_u64 = [](std::string* s, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
  };
  uint64_t hash = 14695981039346656037ull;  // FNV-1a 64, as bundle.cc
  for (unsigned char c : payload) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  std::string out = bytes.substr(0, kMagicLen);
  put_u64(&out, payload.size());
  put_u64(&out, hash);
  Spit(dir + "/metadata.pb", out + payload);
  std::unique_ptr<Model> m;
  const Status s = Model::Load(dir, "cpu", &m);
  EXPECT_EQ(s.code(), pb::CORRUPT);
  EXPECT_NE(s.message().find("does not parse"), std::string::npos) << s.message();
  EXPECT_EQ(m, nullptr);
}

}  // namespace
}  // namespace anomalyd
