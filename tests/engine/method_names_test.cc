#include "engine/method_names.h"

#include "tests/test_util.h"

namespace anomalyd {
namespace {

// Names stored in the thresholds table come back as the method they name;
// anything else is an error, never silently POT (it once was).
TEST(MethodNamesTest, RoundTripAndUnknownNames) {
  for (pb::ThresholdMethod m : {pb::POT, pb::QUANTILE, pb::FIXED}) {
    pb::ThresholdMethod back;
    ASSERT_OK(ThresholdMethodFromName(ThresholdMethodName(m), &back));
    EXPECT_EQ(back, m);
    ASSERT_OK(
        ThresholdMethodFromName(std::string("recalibrated-") + ThresholdMethodName(m), &back));
    EXPECT_EQ(back, m);
  }
  pb::ThresholdMethod out = pb::FIXED;
  for (const char* bad : {"", "spot", "recalibrated-", "recalibrated-nope", "POT", "pot "}) {
    EXPECT_EQ(ThresholdMethodFromName(bad, &out).code(), pb::INVALID_ARGUMENT) << bad;
  }
}

}  // namespace
}  // namespace anomalyd
