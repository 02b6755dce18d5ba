#include "engine/method_names.h"

namespace anomalyd {

const char* ThresholdMethodName(pb::ThresholdMethod m) {
  switch (m) {
    case pb::QUANTILE:
      return "quantile";
    case pb::FIXED:
      return "fixed";
    default:
      return "pot";
  }
}

pb::ThresholdMethod ThresholdMethodFromName(const std::string& name) {
  if (name == "quantile") return pb::QUANTILE;
  if (name == "fixed") return pb::FIXED;
  return pb::POT;
}

}  // namespace anomalyd
