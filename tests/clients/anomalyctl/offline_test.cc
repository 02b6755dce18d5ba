// anomalyctl's offline commands, end to end: the built binary on CSV files
// and small bundles it trains itself (CPU, tiny layers, a few epochs).
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::TempDir;

// Runs anomalyctl with `args`; stdout to *out, stderr to *err. The exit code.
int Ctl(const std::string& args, std::string* out, std::string* err = nullptr) {
  static int calls = 0;
  const std::string err_file = (std::filesystem::temp_directory_path() /
                                ("anomalyctl-offline-test-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(calls++) + ".err"))
                                   .string();
  const std::string cmd =
      std::string(ANOMALYD_BINARY_DIR) + "/clients/anomalyctl " + args + " 2>" + err_file;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  out->clear();
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out->append(buf, n);
  const int rc = ::pclose(p);
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  if (err) *err = ss.str();
  std::remove(err_file.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) out.push_back(cell);
  return out;
}

// b = 2a, d = c - a, plus noise (scripts/synthetic.awk's shape); ids r1..rn
// and, with `labels`, a label column of `positives` ones at the end.
std::string Correlated(size_t n, uint64_t seed, bool labels = false, size_t positives = 0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::ostringstream os;
  os << "id,a,b,c,d" << (labels ? ",label" : "") << "\n";
  for (size_t i = 1; i <= n; ++i) {
    const double a = g(rng), c = 10 + 3 * g(rng);
    const bool bad = i + positives > n;
    os << "r" << i << "," << a << "," << 2 * a + 0.1 * g(rng) + (bad ? 12 : 0) << "," << c << ","
       << c - a + 0.1 * g(rng);
    if (labels) os << "," << (bad ? 1 : 0);
    os << "\n";
  }
  return os.str();
}

constexpr char kSmallConfig[] =
    "[model]\nhidden = [16, 8]\nlatent = 2\n"
    "[training]\nmax_epochs = 20\ndevice = \"cpu\"\nseed = 7\n";

class OfflineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    Write(File("train.csv"), Correlated(400, 1));
    Write(File("small.toml"), kSmallConfig);
    std::string out, err;
    ASSERT_EQ(Ctl("train --quiet --data " + File("train.csv") + " --out " + File("model") +
                      " --config " + File("small.toml"),
                  &out, &err),
              0)
        << err;
    // Binary pixels: a BERNOULLI model (MINMAX normaliser).
    std::mt19937_64 rng(2);
    std::ostringstream bits;
    bits << "p0,p1,p2,p3,p4,p5\n";
    for (int i = 0; i < 300; ++i) {
      const int on = static_cast<int>(rng() % 2);
      bits << on << "," << on << "," << 1 - on << "," << rng() % 2 << "," << rng() % 2 << "," << on
           << "\n";
    }
    Write(File("bits.csv"), bits.str());
    Write(File("bernoulli.toml"),
          "[model]\nhidden = [16, 8]\nlatent = 2\nlikelihood = \"bernoulli\"\n"
          "normaliser = \"minmax\"\n"
          "[training]\nmax_epochs = 20\ndevice = \"cpu\"\nseed = 7\n");
    ASSERT_EQ(Ctl("train --quiet --data " + File("bits.csv") + " --out " + File("bernoulli") +
                      " --config " + File("bernoulli.toml"),
                  &out, &err),
              0)
        << err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string File(const std::string& name) { return dir_->file(name); }

  static TempDir* dir_;
};
TempDir* OfflineTest::dir_ = nullptr;

TEST_F(OfflineTest, EncodePrintsIdsThenLatentMeans) {
  // Columns in another order and an extra one: matched by name, as score.
  Write(File("enc.csv"), "d,extra,c,b,a,id\n9,0,10,0.2,0.1,x1\n7,0,8,-2,-1,\"x,2\"\n");
  std::string out, err;
  ASSERT_EQ(Ctl("encode --model " + File("model") + " --data " + File("enc.csv"), &out, &err), 0)
      << err;
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0], "id,z0,z1");
  EXPECT_EQ(Cells(lines[1]).size(), 3u);
  EXPECT_EQ(lines[1].substr(0, 3), "x1,");
  EXPECT_EQ(lines[2].substr(0, 6), "\"x,2\",");  // quoted back

  ASSERT_EQ(
      Ctl("encode --logvar --model " + File("model") + " --data " + File("enc.csv"), &out, &err), 0)
      << err;
  lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "id,z0,z1,logvar0,logvar1");
  const auto with = Cells(lines[1]);
  ASSERT_EQ(with.size(), 5u);
  for (size_t k = 1; k < with.size(); ++k) EXPECT_TRUE(std::isfinite(std::stod(with[k])));

  // Without an id column: no id column out; to a file with --out.
  Write(File("noid.csv"), "a,b,c,d\n0.1,0.2,10,9.9\n");
  ASSERT_EQ(Ctl("encode --model " + File("model") + " --data " + File("noid.csv") + " --out " +
                    File("z.csv"),
                &out, &err),
            0)
      << err;
  std::ifstream z(File("z.csv"));
  std::string header;
  std::getline(z, header);
  EXPECT_EQ(header, "z0,z1");

  // A missing feature is named.
  Write(File("missing.csv"), "a,b,c\n1,2,3\n");
  EXPECT_EQ(Ctl("encode --model " + File("model") + " --data " + File("missing.csv"), &out, &err),
            1);
  EXPECT_NE(err.find("'d'"), std::string::npos) << err;
}

TEST_F(OfflineTest, ScorePrintsEveryTermAndTheyAddUp) {
  Write(File("test.csv"), Correlated(50, 3, /*labels=*/true, /*positives=*/5));
  std::string out, err;
  ASSERT_EQ(Ctl("score --model " + File("model") + " --data " + File("test.csv"), &out, &err), 0)
      << err;
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_EQ(lines[0], "id,reconstruction,kl,density,score,p_value,flagged");
  // The weights: the defaults, score_beta = 2 * beta and density_weight 2,
  // named on stderr.
  EXPECT_NE(err.find("score = reconstruction + 2 * kl + 2 * density"), std::string::npos) << err;
  bool some_density = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto c = Cells(lines[i]);
    ASSERT_EQ(c.size(), 7u) << lines[i];
    const double rec = std::stod(c[1]), kl = std::stod(c[2]), density = std::stod(c[3]),
                 score = std::stod(c[4]);
    some_density |= density != 0;
    // Six significant digits per printed value.
    EXPECT_NEAR(score, rec + 2 * kl + 2 * density, 1e-4 * (1 + std::fabs(score))) << lines[i];
  }
  EXPECT_TRUE(some_density);
}

TEST_F(OfflineTest, EvalJsonHasNoNan) {
  // No positive labels: ROC-AUC and PR-AUC are undefined.
  Write(File("normal.csv"), Correlated(40, 4, /*labels=*/true, /*positives=*/0));
  std::string out, err;
  ASSERT_EQ(
      Ctl("eval --json --model " + File("model") + " --data " + File("normal.csv"), &out, &err), 0)
      << err;
  EXPECT_EQ(out.find("nan"), std::string::npos) << out;
  EXPECT_NE(out.find("\"pr_auc\": null, \"pr_auc_reason\": \"no positive labels\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"roc_auc\": null, \"roc_auc_reason\": \"no positive labels\""),
            std::string::npos)
      << out;
  ASSERT_EQ(Ctl("eval --model " + File("model") + " --data " + File("normal.csv"), &out, &err), 0);
  EXPECT_EQ(out.find("nan"), std::string::npos) << out;

  // With both classes the numbers are there.
  Write(File("mixed.csv"), Correlated(40, 4, /*labels=*/true, /*positives=*/4));
  ASSERT_EQ(
      Ctl("eval --json --model " + File("model") + " --data " + File("mixed.csv"), &out, &err), 0)
      << err;
  EXPECT_EQ(out.find("null"), std::string::npos) << out;
  EXPECT_NE(out.find("\"pr_auc\": "), std::string::npos) << out;
}

TEST_F(OfflineTest, BernoulliSampleSaysProbabilitiesAndDraws) {
  std::string out, err;
  ASSERT_EQ(Ctl("sample -n 20 --seed 5 --model " + File("bernoulli"), &out, &err), 0) << err;
  EXPECT_NE(err.find("probabilities"), std::string::npos) << err;
  ASSERT_EQ(Ctl("sample -n 20 --seed 5 --draws --model " + File("bernoulli"), &out, &err), 0)
      << err;
  EXPECT_NE(err.find("draws"), std::string::npos) << err;
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 21u);
  EXPECT_EQ(lines[0], "p0,p1,p2,p3,p4,p5");
  for (size_t i = 1; i < lines.size(); ++i) {
    for (const auto& cell : Cells(lines[i])) {
      EXPECT_TRUE(cell == "0" || cell == "1") << lines[i];
    }
  }
  std::string again;
  ASSERT_EQ(Ctl("sample -n 20 --seed 5 --draws --model " + File("bernoulli"), &again), 0);
  EXPECT_EQ(again, out);  // seeded

  // A Gaussian model has no draws to give; it says nothing about
  // probabilities either.
  EXPECT_EQ(Ctl("sample -n 2 --draws --model " + File("model"), &out, &err), 1);
  EXPECT_NE(err.find("BERNOULLI"), std::string::npos) << err;
  ASSERT_EQ(Ctl("sample -n 2 --model " + File("model"), &out, &err), 0);
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace anomalyd
