// StreamRegistry: snapshots, epochs, and stale recalibrations.
#include "daemon/streams.h"

#include "tests/test_util.h"

namespace anomalyd {
namespace {

TEST(StreamRegistryTest, UnknownStreamHasNoModel) {
  StreamRegistry r;
  EXPECT_EQ(r.Snapshot("x").model, nullptr);
  EXPECT_EQ(r.DimensionOf("x"), -1);
  EXPECT_FALSE(r.SetThreshold("x", 1, pb::FIXED));
  EXPECT_FALSE(r.SetRecalibrated("x", 1, 0));
}

// Every change from outside the scorer moves the epoch; a recalibration
// computed under an older epoch is dropped.
TEST(StreamRegistryTest, OutsideChangesMoveTheEpoch) {
  StreamRegistry r;
  r.SetUnavailable("s", 2, "bundle missing");
  const uint64_t e0 = r.Snapshot("s").epoch;
  EXPECT_EQ(r.Snapshot("s").model, nullptr);
  EXPECT_FALSE(r.SetThreshold("s", 3, pb::FIXED));  // no model: refused
  EXPECT_EQ(r.Snapshot("s").epoch, e0);
  EXPECT_TRUE(r.SetRecalibrated("s", 4, e0));
  EXPECT_EQ(r.Snapshot("s").threshold, 4);
  EXPECT_EQ(r.Snapshot("s").epoch, e0);  // the scorer's own change: same epoch
  r.SetUnavailable("s", 3, "again");
  EXPECT_GT(r.Snapshot("s").epoch, e0);
  EXPECT_FALSE(r.SetRecalibrated("s", 5, e0));  // stale
  EXPECT_EQ(r.Snapshot("s").threshold, 4);
}

TEST(StreamRegistryTest, CountsAndStatus) {
  StreamRegistry r;
  auto counts = [](uint64_t scored, uint64_t flagged) {
    ScoreCounts c;
    c.scored = scored;
    c.flagged = flagged;
    return c;
  };
  r.CountScored("b", counts(10, 2));
  r.CountScored("a", counts(1, 0));
  r.CountScored("b", counts(5, 1));
  const auto st = r.Status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].stream(), "a");
  EXPECT_EQ(st[1].scored(), 15u);
  EXPECT_EQ(st[1].flagged(), 3u);
  EXPECT_EQ(r.Names(), (std::vector<std::string>{"a", "b"}));
}

TEST(StreamRegistryTest, ForgetOldTrainingsKeepsTheNewest) {
  StreamRegistry r;
  for (int i = 0; i < 5; ++i) {
    pb::TrainingStatus t;
    t.set_state(pb::FAILED);
    t.set_finished_us(100 + i);
    r.SetTraining("t" + std::to_string(i), t);
  }
  r.ForgetOldTrainings(2);
  EXPECT_EQ(r.Names(), (std::vector<std::string>{"t3", "t4"}));
}

}  // namespace
}  // namespace anomalyd
