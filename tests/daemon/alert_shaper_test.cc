// AlertShaper (daemon/alert_shaper.h): incidents from flagged records, with
// times given by hand.
#include "daemon/alert_shaper.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace anomalyd {
namespace {

constexpr int64_t kSec = 1'000'000;

AnomalyRow Row(const std::string& stream, int64_t t_s, double score = 10,
               std::vector<float> contributions = {0.1f, 0.7f, 0.2f}) {
  AnomalyRow r;
  r.stream = stream;
  r.record_id = "r" + std::to_string(t_s);
  r.scored_time_us = t_s * kSec;
  r.score = score;
  r.threshold = 5;
  r.model_version = 1;
  r.contributions = std::move(contributions);
  return r;
}

const std::vector<std::string> kNames = {"cpu", "latency", "errors"};

AlertShaping Shaping(uint32_t min_count = 1, double min_duration_s = 0, double resolve_after_s = 60,
                     double renotify_every_s = 0) {
  AlertShaping s;
  s.min_count = min_count;
  s.min_duration_s = min_duration_s;
  s.resolve_after_s = resolve_after_s;
  s.renotify_every_s = renotify_every_s;
  return s;
}

TEST(AlertShaperTest, AFloodIsOneIncident) {
  AlertShaper shaper(Shaping(), {});
  std::vector<AlertShaper::Notification> out;
  for (int i = 0; i < 500; ++i) shaper.Observe(Row("s", 100 + i / 10), kNames, &out);
  shaper.Tick(151 * kSec, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].resolved);
  EXPECT_EQ(out[0].incident.stream(), "s");
  EXPECT_EQ(shaper.firing(), 1u);
  // Quiet for resolve_after_s after the last record: resolved, once.
  shaper.Tick((149 + 59) * kSec, &out);
  EXPECT_EQ(out.size(), 1u);
  shaper.Tick((149 + 60) * kSec, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[1].resolved);
  EXPECT_EQ(out[1].incident.count(), 500u);
  EXPECT_EQ(out[1].incident.id(), out[0].incident.id());
  EXPECT_EQ(shaper.firing(), 0u);
  shaper.Tick(1000 * kSec, &out);
  EXPECT_EQ(out.size(), 2u);
}

TEST(AlertShaperTest, RefreshTellsTheWholeBurst) {
  AlertShaper shaper(Shaping(), {});
  std::vector<AlertShaper::Notification> out;
  for (int i = 0; i < 25; ++i) shaper.Observe(Row("s", 100, 10 + i), kNames, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].incident.count(), 1u);
  shaper.Refresh(&out[0]);
  EXPECT_EQ(out[0].incident.count(), 25u);
  EXPECT_EQ(out[0].incident.max_score(), 34);
  EXPECT_EQ(out[0].at_us, 100 * kSec);  // still when it fired
}

TEST(AlertShaperTest, FiresOnlyAfterMinCountAndMinDuration) {
  AlertShaper shaper(Shaping(/*min_count=*/3, /*min_duration_s=*/10), {});
  std::vector<AlertShaper::Notification> out;
  shaper.Observe(Row("s", 0), kNames, &out);
  shaper.Observe(Row("s", 1), kNames, &out);
  shaper.Observe(Row("s", 2), kNames, &out);  // 3 records, but only 2 s
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(shaper.pending(), 1u);
  shaper.Observe(Row("s", 10), kNames, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].incident.count(), 4u);
  EXPECT_EQ(out[0].incident.fired_us(), 10 * kSec);
}

TEST(AlertShaperTest, PendingIncidentEndsUnannounced) {
  AlertShaper shaper(Shaping(/*min_count=*/5), {});
  std::vector<AlertShaper::Notification> out;
  for (int i = 0; i < 4; ++i) shaper.Observe(Row("s", i), kNames, &out);
  shaper.Tick(200 * kSec, &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(shaper.pending(), 0u);
  // A later burst starts afresh: 4 more do not reach 5.
  for (int i = 0; i < 4; ++i) shaper.Observe(Row("s", 300 + i), kNames, &out);
  EXPECT_TRUE(out.empty());
}

TEST(AlertShaperTest, RenotifiesWhileFiring) {
  AlertShaper shaper(Shaping(1, 0, /*resolve_after_s=*/60, /*renotify_every_s=*/30), {});
  std::vector<AlertShaper::Notification> out;
  for (int t = 0; t <= 100; t += 10) {
    shaper.Observe(Row("s", t), kNames, &out);
    shaper.Tick(t * kSec, &out);
  }
  // Fired at 0, repeated at 30, 60 and 90.
  ASSERT_EQ(out.size(), 4u);
  EXPECT_FALSE(out[0].repeat);
  for (size_t i = 1; i < out.size(); ++i) {
    EXPECT_TRUE(out[i].repeat);
    EXPECT_EQ(out[i].at_us, static_cast<int64_t>(30 * i) * kSec);
  }
}

TEST(AlertShaperTest, GroupsByTopFeature) {
  AlertShaping sh = Shaping();
  sh.group_by = "feature";
  AlertShaper shaper(sh, {});
  std::vector<AlertShaper::Notification> out;
  shaper.Observe(Row("s", 0, 10, {0.9f, 0.05f, 0.05f}), kNames, &out);
  shaper.Observe(Row("s", 1, 10, {0.1f, 0.8f, 0.1f}), kNames, &out);
  shaper.Observe(Row("s", 2, 10, {0.8f, 0.1f, 0.1f}), kNames, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].incident.feature(), "cpu");
  EXPECT_EQ(out[1].incident.feature(), "latency");
  EXPECT_EQ(shaper.firing(), 2u);
  // Unnamed features are named by position.
  shaper.Observe(Row("t", 3, 10, {0, 0, 0, 1}), kNames, &out);
  EXPECT_EQ(out.back().incident.feature(), "f3");
}

TEST(AlertShaperTest, KeepsTheWorstRecordAndItsTopFeatures) {
  AlertShaper shaper(Shaping(/*min_count=*/3), {});
  std::vector<AlertShaper::Notification> out;
  shaper.Observe(Row("s", 0, 10), kNames, &out);
  shaper.Observe(Row("s", 1, 30, {0.5f, 0.1f, 0.4f}), kNames, &out);
  shaper.Observe(Row("s", 2, 20), kNames, &out);
  ASSERT_EQ(out.size(), 1u);
  const pb::Incident& inc = out[0].incident;
  EXPECT_EQ(inc.max_score(), 30);
  EXPECT_EQ(inc.max_record_id(), "r1");
  ASSERT_EQ(inc.top_features_size(), 3);
  EXPECT_EQ(inc.top_features(0), "cpu");
  EXPECT_EQ(inc.top_features(1), "errors");
}

TEST(AlertShaperTest, PerStreamShapingAndDisabledStreams) {
  AlertShaping off = Shaping();
  off.enabled = false;
  AlertShaper shaper(Shaping(), {{"quiet", off}, {"strict", Shaping(/*min_count=*/2)}});
  std::vector<AlertShaper::Notification> out;
  shaper.Observe(Row("quiet", 0), kNames, &out);
  shaper.Observe(Row("strict", 0), kNames, &out);
  shaper.Observe(Row("other", 0), kNames, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].incident.stream(), "other");
  shaper.Observe(Row("strict", 1), kNames, &out);
  EXPECT_EQ(out.size(), 2u);
}

// A replay after a restart may see a gap longer than the hysteresis with no
// Tick in between: the old incident resolves, the record opens a new one.
TEST(AlertShaperTest, GapInReplayResolvesBeforeANewIncident) {
  AlertShaper shaper(Shaping(), {});
  std::vector<AlertShaper::Notification> out;
  shaper.Observe(Row("s", 0), kNames, &out);
  shaper.Observe(Row("s", 500), kNames, &out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[1].resolved);
  EXPECT_EQ(out[1].at_us, 60 * kSec);
  EXPECT_FALSE(out[2].resolved);
  EXPECT_NE(out[2].incident.id(), out[0].incident.id());
}

TEST(AlertShaperTest, StateRoundTrips) {
  AlertShaper a(Shaping(/*min_count=*/2), {});
  std::vector<AlertShaper::Notification> out;
  a.Observe(Row("s", 0), kNames, &out);
  a.Observe(Row("t", 0), kNames, &out);
  a.Observe(Row("t", 1), kNames, &out);
  AlertShaper b(Shaping(/*min_count=*/2), {});
  ASSERT_OK(b.LoadState(a.SaveState()));
  EXPECT_EQ(b.pending(), 1u);
  EXPECT_EQ(b.firing(), 1u);
  // The pending incident goes on where it was; the next id is not reused.
  b.Observe(Row("s", 2), kNames, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].incident.count(), 2u);
  b.Observe(Row("u", 3), kNames, &out);
  b.Observe(Row("u", 4), kNames, &out);
  EXPECT_GT(out.back().incident.id(), out[0].incident.id());
  EXPECT_OK(b.LoadState(""));
  EXPECT_EQ(b.pending() + b.firing(), 0u);
  EXPECT_EQ(b.LoadState("\xff\xff garbage").code(), pb::CORRUPT);
}

}  // namespace
}  // namespace anomalyd
