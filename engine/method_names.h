// The names threshold methods are stored under (the `method` of a
// ThresholdRow: "pot", "quantile", "fixed"; recalibrations prefix
// "recalibrated-").
#ifndef ANOMALYD_ENGINE_METHOD_NAMES_H_
#define ANOMALYD_ENGINE_METHOD_NAMES_H_

#include <string>

#include "proto/anomalyd.pb.h"  // pb::ThresholdMethod (an enum, no wire message)

namespace anomalyd {

const char* ThresholdMethodName(pb::ThresholdMethod m);  // "pot", ...
// The method named `name`; POT for any name it does not know.
pb::ThresholdMethod ThresholdMethodFromName(const std::string& name);

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_METHOD_NAMES_H_
