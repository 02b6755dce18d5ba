#include "engine/method_names.h"

#include "model/model.h"

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

Status ThresholdMethodFromName(const std::string& name, pb::ThresholdMethod* out) {
  static const std::string kRecalibrated = "recalibrated-";
  const bool prefixed = name.compare(0, kRecalibrated.size(), kRecalibrated) == 0;
  return ParseThresholdMethod(prefixed ? name.substr(kRecalibrated.size()) : name, out);
}

}  // namespace anomalyd
