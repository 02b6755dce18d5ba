// Engine: verdicts, rejections, reservoir sampling and recalibration, driven
// through an in-memory ServingSource and a recording VerdictSink, on a tiny
// CPU model.
#include "engine/engine.h"

#include <cmath>
#include <limits>
#include <map>

#include "tests/model/model_fixture.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using testing::CorrelatedData;
using testing::FeatureNames;
using testing::SmallTrainOptions;

// ServingSource in memory; records what the engine sets and counts.
class FakeServing : public ServingSource {
 public:
  ServingSnapshot Snapshot(const std::string& stream) const override {
    auto it = snaps.find(stream);
    return it == snaps.end() ? ServingSnapshot() : it->second;
  }
  bool SetRecalibrated(const std::string& stream, double value,
                       uint64_t epoch) override {
    ++recalibrations;
    auto it = snaps.find(stream);
    if (it == snaps.end() || it->second.epoch != epoch) return false;
    it->second.threshold = value;
    return true;
  }
  void CountScored(const std::string& stream,
                   const ScoreCounts& counts) override {
    this->scored[stream] += counts.scored;
    this->flagged[stream] += counts.flagged;
    this->counts[stream] += counts;
  }
  std::map<std::string, ServingSnapshot> snaps;
  std::map<std::string, uint64_t> scored, flagged;
  std::map<std::string, ScoreCounts> counts;
  int recalibrations = 0;
};

// Keeps every call the engine makes.
class RecordingSink : public VerdictSink {
 public:
  void Rejected(size_t part, const Status& s) override {
    rejected.emplace_back(part, s);
  }
  void Scored(StreamVerdicts* v) override { scored.push_back(std::move(*v)); }
  std::vector<std::pair<size_t, Status>> rejected;
  std::vector<StreamVerdicts> scored;
};

// A clock that stands still unless told.
class FixedClock : public EngineClock {
 public:
  int64_t WallMicros() const override { return wall_us; }
  int64_t SteadyMicros() const override { return steady_us; }
  int64_t wall_us = 1'700'000'000'000'000;
  int64_t steady_us = 0;
};

// Records and their per-row columns, kept alive for a RecordPart.
struct Records {
  Records(const Matrix& m, size_t first, size_t rows, const std::string& prefix)
      : values(m.data.begin() + first * m.cols,
               m.data.begin() + (first + rows) * m.cols),
        dim(m.cols),
        times(rows, 0),
        labels(rows) {
    for (size_t i = 0; i < rows; ++i) ids.push_back(prefix + std::to_string(i));
  }
  RecordPart Part(bool contributions = false) const {
    RecordPart p;
    p.values = values.data();
    p.rows = ids.size();
    p.dim = dim;
    p.ids = ids.data();
    p.event_times_us = times.data();
    p.labels = labels.data();
    p.contributions = contributions;
    return p;
  }
  std::vector<float> values;
  size_t dim;
  std::vector<std::string> ids;
  std::vector<int64_t> times;
  std::vector<RecordLabels> labels;
};

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ConfigureThreads(1);
    data_ = new Matrix(CorrelatedData(600, 1));
    TrainOptions o = SmallTrainOptions();
    o.max_epochs = 40;  // quality is not under test here
    std::unique_ptr<Model> m;
    Status s = Model::Train(o, *data_, FeatureNames(), nullptr, &m);
    ASSERT_TRUE(s.ok()) << s.ToString();
    model_ = new std::shared_ptr<const Model>(std::move(m));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete data_;
  }

  void SetUp() override { Serve("cpu", Median(), pb::QUANTILE); }

  // The median score of the first 200 rows: about half of them flag.
  static double Median() {
    ScoreOutput out;
    EXPECT_OK((*model_)->Score(data_->data.data(), 200, {}, &out));
    std::vector<float> s = out.score;
    std::nth_element(s.begin(), s.begin() + 100, s.end());
    return s[100];
  }
  void Serve(const std::string& stream, double threshold,
             pb::ThresholdMethod method) {
    ServingSnapshot& snap = serving_.snaps[stream];
    snap.model = *model_;
    snap.version = 3;
    snap.threshold = threshold;
    snap.method = method;
    ++snap.epoch;
  }
  EngineOptions Options(double reservoir_rate = 0) const {
    EngineOptions o;
    o.reservoir_rate = reservoir_rate;
    o.recalibration.enabled = false;
    o.clock = &clock_;
    return o;
  }

  static inline Matrix* data_ = nullptr;
  static inline std::shared_ptr<const Model>* model_ = nullptr;
  FakeServing serving_;
  FixedClock clock_;
  RecordingSink sink_;
};

TEST_F(EngineTest, UnknownStreamRejectsEveryPart) {
  Engine engine(Options(), &serving_);
  Records r(*data_, 0, 3, "r");
  EXPECT_EQ(engine.ScoreStream("nope", {r.Part(), r.Part()}, &sink_), 0u);
  ASSERT_EQ(sink_.rejected.size(), 2u);
  EXPECT_EQ(sink_.rejected[0].first, 0u);
  EXPECT_EQ(sink_.rejected[1].first, 1u);
  EXPECT_EQ(sink_.rejected[0].second.code(), pb::UNKNOWN_STREAM);
  EXPECT_TRUE(sink_.scored.empty());
  EXPECT_EQ(engine.State("nope"), nullptr);
}

TEST_F(EngineTest, WrongDimensionRejectsThatPartAndScoresTheOthers) {
  Engine engine(Options(), &serving_);
  Records a(*data_, 0, 3, "a"), b(*data_, 3, 5, "b");
  RecordPart wrong = a.Part();
  wrong.dim = 3;
  wrong.rows = 4;
  EXPECT_EQ(engine.ScoreStream("cpu", {b.Part(), wrong, a.Part()}, &sink_), 8u);
  ASSERT_EQ(sink_.rejected.size(), 1u);
  EXPECT_EQ(sink_.rejected[0].first, 1u);
  EXPECT_EQ(sink_.rejected[0].second.code(), pb::WRONG_DIMENSION);
  ASSERT_EQ(sink_.scored.size(), 1u);
  EXPECT_EQ(sink_.scored[0].parts, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(sink_.scored[0].rows, 8u);
  EXPECT_EQ(serving_.scored["cpu"], 8u);
}

// The verdicts of a batch are the model's scores judged against the
// snapshot's threshold, whatever the parts and whether contributions were
// asked for.
TEST_F(EngineTest, VerdictsAreTheModelsScoresJudgedAgainstTheThreshold) {
  struct Case {
    const char* name;
    std::vector<size_t> part_rows;
    std::vector<bool> contributions;
  };
  const Case cases[] = {
      {"one part", {40}, {false}},
      {"one part with contributions", {40}, {true}},
      {"joined parts", {10, 1, 29}, {false, false, false}},
      {"joined, one asks", {10, 1, 29}, {false, true, false}},
  };
  ScoreOutput want;
  ScoreOptions all;
  all.contributions = true;
  ASSERT_OK((*model_)->Score(data_->data.data(), 40, all, &want));
  const float threshold = static_cast<float>(Median());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RecordingSink sink;
    Engine engine(Options(), &serving_);
    std::vector<Records> records;
    size_t first = 0;
    for (size_t i = 0; i < c.part_rows.size(); ++i) {
      records.emplace_back(*data_, first, c.part_rows[i],
                           "p" + std::to_string(i) + "-");
      first += c.part_rows[i];
    }
    std::vector<RecordPart> parts;
    for (size_t i = 0; i < records.size(); ++i)
      parts.push_back(records[i].Part(c.contributions[i]));
    engine.ScoreStream("cpu", parts, &sink);
    ASSERT_EQ(sink.scored.size(), 1u);
    const StreamVerdicts& v = sink.scored[0];
    const bool asked = std::find(c.contributions.begin(), c.contributions.end(),
                                 true) != c.contributions.end();
    EXPECT_EQ(v.stream, "cpu");
    EXPECT_EQ(v.dim, 4u);
    EXPECT_EQ(v.model_version, 3u);
    EXPECT_EQ(v.threshold, threshold);
    EXPECT_EQ(v.contributions, asked);
    EXPECT_EQ(v.out.contributions.size(), asked ? 40u * 4 : 0u);
    ASSERT_EQ(v.rows, 40u);
    uint64_t flagged = 0;
    for (size_t r = 0; r < 40; ++r) {
      EXPECT_NEAR(v.out.score[r], want.score[r], 1e-4) << r;
      EXPECT_EQ(v.flagged[r] != 0, v.out.score[r] > threshold) << r;
      flagged += v.flagged[r];
    }
    EXPECT_GT(flagged, 0u);
    EXPECT_LT(flagged, 40u);
    EXPECT_EQ(v.flagged_count, flagged);
    ASSERT_EQ(v.anomalies.size(), flagged);
    ASSERT_EQ(v.anomaly_rows.size(), flagged);
    for (size_t k = 0; k < flagged; ++k) {
      const size_t r = v.anomaly_rows[k];
      const AnomalyRow& a = v.anomalies[k];
      EXPECT_TRUE(v.flagged[r]);
      EXPECT_EQ(a.stream, "cpu");
      EXPECT_EQ(a.score, v.out.score[r]);
      EXPECT_EQ(a.threshold, threshold);
      EXPECT_EQ(a.model_version, 3u);
      EXPECT_EQ(a.event_time_us, clock_.wall_us);  // no event time given: now
      EXPECT_EQ(a.scored_time_us, clock_.wall_us);
      EXPECT_EQ(a.features,
                std::vector<float>(data_->data.begin() + r * 4,
                                   data_->data.begin() + (r + 1) * 4));
      // Stored with contributions even when nobody asked for them.
      ASSERT_EQ(a.contributions.size(), 4u);
      for (size_t j = 0; j < 4; ++j)
        EXPECT_NEAR(a.contributions[j], want.contributions[r * 4 + j], 1e-4);
    }
  }
}

// The counters a batch adds: scored, flagged and each record's p-value in
// its histogram bucket.
TEST_F(EngineTest, CountsScoredFlaggedAndPValues) {
  ScoreOutput want;
  ASSERT_OK((*model_)->Score(data_->data.data(), 40, ScoreOptions(), &want));
  Engine engine(Options(), &serving_);
  Records r(*data_, 0, 40, "r");
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  const ScoreCounts& c = serving_.counts["cpu"];
  EXPECT_EQ(c.scored, 40u);
  ASSERT_EQ(sink_.scored.size(), 1u);
  EXPECT_EQ(c.flagged, sink_.scored[0].flagged_count);
  EXPECT_GT(c.flagged, 0u);
  ScoreCounts expected;
  for (double p : want.p_value) expected.AddPValue(p);
  EXPECT_EQ(c.p_value_buckets, expected.p_value_buckets);
  EXPECT_NEAR(c.p_value_sum, expected.p_value_sum, 1e-9);
}

TEST(ScoreCountsTest, PValuesLandInTheirBuckets) {
  ScoreCounts c;
  for (double p : {0.0, 0.001, 0.0011, 0.05, 0.3, 1.0}) c.AddPValue(p);
  // Bounds 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1: p <= bound.
  const std::array<uint64_t, 8> want = {2, 1, 1, 0, 0, 1, 0, 1};
  EXPECT_EQ(c.p_value_buckets, want);
  ScoreCounts sum;
  sum += c;
  sum += c;
  EXPECT_EQ(sum.p_value_buckets[0], 4u);
  EXPECT_NEAR(sum.p_value_sum, 2 * (0.0 + 0.001 + 0.0011 + 0.05 + 0.3 + 1.0), 1e-12);
}

TEST_F(EngineTest, AnomalyRowsKeepIdsTimesAndLabels) {
  Serve("cpu", -1e9, pb::QUANTILE);  // everything flags
  Engine engine(Options(), &serving_);
  Records r(*data_, 0, 2, "rec");
  r.times = {123, 0};
  r.labels[1] = {{"host", "a"}, {"host", "b"}};
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  ASSERT_EQ(sink_.scored.size(), 1u);
  const auto& a = sink_.scored[0].anomalies;
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].record_id, "rec0");
  EXPECT_EQ(a[0].event_time_us, 123);
  EXPECT_TRUE(a[0].labels.empty());
  EXPECT_EQ(a[1].record_id, "rec1");
  EXPECT_EQ(a[1].event_time_us, clock_.wall_us);
  EXPECT_EQ(a[1].labels, (RecordLabels{{"host", "a"}, {"host", "b"}}));
  EXPECT_EQ(serving_.flagged["cpu"], 2u);
}

// Only records judged normal are drawn for the reservoir, at the rate asked.
TEST_F(EngineTest, ReservoirSamplesNormalRecordsOnly) {
  struct Case {
    double rate;
    double threshold;
    size_t min_rows, max_rows;  // of 200 records
  };
  const Case cases[] = {
      {0.0, 1e9, 0, 0},      // sampling off
      {1.0, 1e9, 200, 200},  // every record normal, every one drawn
      {1.0, -1e9, 0, 0},     // every record flagged: none drawn
      {0.25, 1e9, 25, 75},   // about 50
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.rate);
    Serve("cpu", c.threshold, pb::QUANTILE);
    RecordingSink sink;
    Engine engine(Options(c.rate), &serving_);
    Records r(*data_, 0, 200, "r");
    engine.ScoreStream("cpu", {r.Part()}, &sink);
    ASSERT_EQ(sink.scored.size(), 1u);
    const std::vector<float>& s = sink.scored[0].samples;
    ASSERT_EQ(s.size() % 4, 0u);
    EXPECT_GE(s.size() / 4, c.min_rows);
    EXPECT_LE(s.size() / 4, c.max_rows);
    if (c.rate == 1.0 && c.min_rows == 200) {
      EXPECT_EQ(s, r.values);
    }
  }
}

TEST_F(EngineTest, SameSeedSameSamples) {
  Serve("cpu", 1e9, pb::QUANTILE);
  Records r(*data_, 0, 200, "r");
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    RecordingSink sink;
    Engine engine(Options(0.3), &serving_);
    engine.ScoreStream("cpu", {r.Part()}, &sink);
    if (run == 0) {
      first = sink.scored[0].samples;
    } else {
      EXPECT_EQ(sink.scored[0].samples, first);
    }
  }
}

class EngineRecalibrationTest : public EngineTest {
 protected:
  EngineOptions Recalibrating() const {
    EngineOptions o = Options();
    o.recalibration.enabled = true;
    o.recalibration.every_scores = 100;
    o.recalibration.every_seconds = 0;
    o.recalibration.min_interval_seconds = 0;
    o.recalibration.min_samples = 100;
    o.recalibration.window = 1000;
    o.recalibration.max_step = 0.1;
    o.recalibration.max_drift = 0.5;
    o.recalibration.threshold.method = pb::QUANTILE;
    o.recalibration.threshold.contamination = 0.01;
    return o;
  }
};

TEST_F(EngineRecalibrationTest, DueRecalibrationIsInForceAndInTheVerdicts) {
  Serve("cpu", Median(), pb::QUANTILE);
  const double before = serving_.snaps["cpu"].threshold;
  Engine engine(Recalibrating(), &serving_);
  Records few(*data_, 0, 50, "a"), more(*data_, 50, 100, "b");
  engine.ScoreStream("cpu", {few.Part()}, &sink_);  // 50 < every_scores
  ASSERT_EQ(sink_.scored.size(), 1u);
  EXPECT_FALSE(sink_.scored[0].recalibrated.has_value());
  EXPECT_EQ(engine.State("cpu")->recalibration_window(), 50u);
  engine.ScoreStream("cpu", {more.Part()}, &sink_);
  ASSERT_EQ(sink_.scored.size(), 2u);
  ASSERT_TRUE(sink_.scored[1].recalibrated.has_value());
  const ThresholdRow& t = *sink_.scored[1].recalibrated;
  EXPECT_EQ(t.stream, "cpu");
  EXPECT_EQ(t.model_version, 3u);
  EXPECT_EQ(t.method, "recalibrated-quantile");
  EXPECT_EQ(t.window, 150u);
  // The 99th percentile of normal scores is above the median: one step up.
  EXPECT_NEAR(t.value, before + 0.1 * std::abs(before), 1e-9);
  EXPECT_EQ(serving_.snaps["cpu"].threshold, t.value);
  // The batch itself was judged with the threshold before it.
  EXPECT_EQ(sink_.scored[1].threshold, static_cast<float>(before));
}

TEST_F(EngineRecalibrationTest, FixedThresholdIsNeverRecalibrated) {
  Serve("cpu", Median(), pb::FIXED);
  Engine engine(Recalibrating(), &serving_);
  Records r(*data_, 0, 300, "r");
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  EXPECT_FALSE(sink_.scored[0].recalibrated.has_value());
  EXPECT_EQ(serving_.recalibrations, 0);
  EXPECT_EQ(engine.State("cpu")->recalibration_window(), 0u);
}

TEST_F(EngineRecalibrationTest, NewEpochRestartsTheWindow) {
  Engine engine(Recalibrating(), &serving_);
  Records r(*data_, 0, 60, "r");
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  EXPECT_EQ(engine.State("cpu")->recalibration_window(), 60u);
  Serve("cpu", Median(), pb::QUANTILE);  // a new model or calibrate: epoch + 1
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  EXPECT_EQ(engine.State("cpu")->recalibration_window(), 60u);
  EXPECT_FALSE(sink_.scored[1].recalibrated.has_value());  // 60 < every_scores
  engine.Reconfigure(Recalibrating());  // new options: new windows too
  EXPECT_EQ(engine.State("cpu")->recalibration_window(), 0u);
}

// A recalibration computed against an epoch that moved meanwhile is stale:
// neither in force nor stored.
TEST_F(EngineRecalibrationTest, StaleRecalibrationIsDropped) {
  class MovingServing : public FakeServing {
   public:
    bool SetRecalibrated(const std::string&, double, uint64_t) override {
      ++recalibrations;
      return false;
    }
  } serving;
  serving.snaps = serving_.snaps;
  Engine engine(Recalibrating(), &serving);
  Records r(*data_, 0, 150, "r");
  engine.ScoreStream("cpu", {r.Part()}, &sink_);
  EXPECT_EQ(serving.recalibrations, 1);
  ASSERT_EQ(sink_.scored.size(), 1u);
  EXPECT_FALSE(sink_.scored[0].recalibrated.has_value());
}

}  // namespace
}  // namespace anomalyd
