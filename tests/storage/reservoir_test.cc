// Tests of the per-stream sample reservoir (storage/reservoir.cc).
#include <cmath>
#include <numeric>
#include <random>

#include "storage/store.h"
#include "tests/storage/store_test_util.h"

namespace anomalyd {
namespace {

using testing::OpenSqlite;
using testing::TempDir;

// Records 0..n-1 of dimension `dim`: record i is {i, i + 0.5, ...}.
std::vector<float> Records(size_t first, size_t n, uint32_t dim) {
  std::vector<float> v;
  for (size_t i = first; i < first + n; ++i) {
    for (uint32_t d = 0; d < dim; ++d)
      v.push_back(static_cast<float>(i) + d * 0.5f);
  }
  return v;
}

// Offers records [0, n) in batches whose sizes come from `rng`.
void Offer(Store* store, const std::string& stream, size_t n, uint32_t dim,
           std::mt19937* rng, size_t max_batch) {
  size_t done = 0;
  while (done < n) {
    const size_t b = std::min(n - done, 1 + (*rng)() % max_batch);
    const std::vector<float> v = Records(done, b, dim);
    ASSERT_OK(store->AddSamples(stream, dim, v.data(), b));
    done += b;
  }
}

StoreOptions Capacity(int64_t k, uint64_t seed = 1) {
  StoreOptions o;
  o.reservoir_capacity = k;
  o.reservoir_seed = seed;
  return o;
}

TEST(StoreReservoir, KeepsEverythingUntilFullThenStaysBounded) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("r.db"), &store, Capacity(50)));
  Baseline b;
  EXPECT_EQ(store->LoadReservoir("s", &b).code(), pb::NOT_FOUND);

  std::vector<float> v = Records(0, 30, 3);
  ASSERT_OK(store->AddSamples("s", 3, v.data(), 30));
  ASSERT_OK(store->LoadReservoir("s", &b));
  EXPECT_EQ(b.dim, 3u);
  EXPECT_EQ(b.seen, 30u);
  EXPECT_EQ(b.values, v);  // not full yet: every record, in order

  std::mt19937 rng(3);
  Offer(store.get(), "s", 1000, 3, &rng, 97);
  ASSERT_OK(store->LoadReservoir("s", &b));
  EXPECT_EQ(b.seen, 1030u);
  ASSERT_EQ(b.rows(), 50u);
  for (size_t r = 0; r < b.rows(); ++r) {  // rows are whole records
    EXPECT_EQ(b.values[r * 3 + 1], b.values[r * 3] + 0.5f);
  }
}

// Every record ever offered has the same chance k/n of being kept: over
// 200 streams, the kept records spread evenly over the offering order.
TEST(StoreReservoir, SampleIsUniformOverTheWholeStream) {
  TempDir dir;
  const int kStreams = 200, kN = 5000, kK = 50, kBins = 10;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("r.db"), &store, Capacity(kK, /*seed=*/42)));
  std::mt19937 rng(5);
  std::vector<double> bins(kBins, 0);
  for (int s = 0; s < kStreams; ++s) {
    const std::string stream = "s" + std::to_string(s);
    Offer(store.get(), stream, kN, 1, &rng, 1500);
    Baseline b;
    ASSERT_OK(store->LoadReservoir(stream, &b));
    ASSERT_EQ(b.rows(), static_cast<size_t>(kK));
    for (float x : b.values) bins[static_cast<int>(x) * kBins / kN] += 1;
  }
  const double expected = double{kStreams} * kK / kBins;
  double chi2 = 0;
  for (double o : bins) chi2 += (o - expected) * (o - expected) / expected;
  // 27.88 is the 0.999 quantile of chi-square with 9 degrees of freedom.
  // The seeds are fixed, so this is deterministic, not flaky.
  EXPECT_LT(chi2, 27.88) << "bins: " << ::testing::PrintToString(bins);
}

TEST(StoreReservoir, SameSeedSameSampleHoweverBatchedOrReopened) {
  TempDir dir;
  std::vector<float> one_batch;
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("a.db"), &store, Capacity(40, 9)));
    const std::vector<float> v = Records(0, 3000, 2);
    ASSERT_OK(store->AddSamples("s", 2, v.data(), 3000));
    Baseline b;
    ASSERT_OK(store->LoadReservoir("s", &b));
    one_batch = b.values;
  }
  {
    std::mt19937 rng(8);
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("b.db"), &store, Capacity(40, 9)));
    Offer(store.get(), "s", 1000, 2, &rng, 300);
    store.reset();  // the seen-count survives a restart
    ASSERT_OK(OpenSqlite(dir.file("b.db"), &store, Capacity(40, 9)));
    const std::vector<float> rest = Records(1000, 2000, 2);
    ASSERT_OK(store->AddSamples("s", 2, rest.data(), 2000));
    Baseline b;
    ASSERT_OK(store->LoadReservoir("s", &b));
    EXPECT_EQ(b.values, one_batch);
    EXPECT_EQ(b.seen, 3000u);
  }
  {
    std::unique_ptr<Store> store;
    ASSERT_OK(OpenSqlite(dir.file("c.db"), &store, Capacity(40, 10)));
    const std::vector<float> v = Records(0, 3000, 2);
    ASSERT_OK(store->AddSamples("s", 2, v.data(), 3000));
    Baseline b;
    ASSERT_OK(store->LoadReservoir("s", &b));
    EXPECT_NE(b.values, one_batch);  // another seed, another sample
  }
}

TEST(StoreReservoir, RejectsBadInputAndDimensionChanges) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("r.db"), &store, Capacity(10)));
  std::vector<float> v = Records(0, 4, 2);
  EXPECT_EQ(store->AddSamples("s", 0, v.data(), 4).code(),
            pb::INVALID_ARGUMENT);
  EXPECT_OK(store->AddSamples("s", 2, nullptr, 0));
  ASSERT_OK(store->AddSamples("s", 2, v.data(), 4));
  Status s = store->AddSamples("s", 4, v.data(), 2);
  EXPECT_EQ(s.code(), pb::INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("dimension 2"), std::string::npos) << s.message();
  v[3] = std::nanf("");
  EXPECT_EQ(store->AddSamples("s", 2, v.data(), 4).code(),
            pb::INVALID_ARGUMENT);
  v[3] = INFINITY;
  EXPECT_EQ(store->AddSamples("s", 2, v.data(), 4).code(),
            pb::INVALID_ARGUMENT);
  Baseline b;
  ASSERT_OK(store->LoadReservoir("s", &b));
  EXPECT_EQ(b.seen, 4u);  // the rejected calls changed nothing

  ASSERT_OK(store->ClearReservoir("s"));
  EXPECT_EQ(store->LoadReservoir("s", &b).code(), pb::NOT_FOUND);
  ASSERT_OK(store->ClearReservoir("s"));  // none: still OK
  v = Records(0, 2, 4);
  ASSERT_OK(store->AddSamples("s", 4, v.data(), 2));
  ASSERT_OK(store->LoadReservoir("s", &b));
  EXPECT_EQ(b.dim, 4u);
  EXPECT_EQ(b.rows(), 2u);
}

TEST(StoreReservoir, SmallerCapacityAfterReopenTrims) {
  TempDir dir;
  std::unique_ptr<Store> store;
  ASSERT_OK(OpenSqlite(dir.file("r.db"), &store, Capacity(100)));
  std::vector<float> v = Records(0, 500, 1);
  ASSERT_OK(store->AddSamples("s", 1, v.data(), 500));
  store.reset();
  ASSERT_OK(OpenSqlite(dir.file("r.db"), &store, Capacity(30)));
  Baseline b;
  ASSERT_OK(store->LoadReservoir("s", &b));
  EXPECT_EQ(b.rows(), 30u);
  ASSERT_OK(store->AddSamples("s", 1, v.data(), 10));
  store.reset();
  EXPECT_EQ(testing::RawQuery(dir.file("r.db"), "SELECT count(*) FROM samples"),
            "30");
}

}  // namespace
}  // namespace anomalyd
