// The names threshold methods are stored under (the `method` of a
// ThresholdRow: "pot", "quantile", "fixed"; recalibrations prefix
// "recalibrated-").
#ifndef ANOMALYD_ENGINE_METHOD_NAMES_H_
#define ANOMALYD_ENGINE_METHOD_NAMES_H_

#include <string>

#include "proto/anomalyd.pb.h"  // pb::ThresholdMethod (an enum, no wire message)
#include "proto/status.h"

namespace anomalyd {

const char* ThresholdMethodName(pb::ThresholdMethod m);  // "pot", ...
// The method stored under `name` (a ThresholdMethodName, optionally with
// the "recalibrated-" prefix). INVALID_ARGUMENT naming it for any other
// name: the names themselves are model/'s (ParseThresholdMethod), the one
// list of them.
Status ThresholdMethodFromName(const std::string& name, pb::ThresholdMethod* out);

}  // namespace anomalyd

#endif  // ANOMALYD_ENGINE_METHOD_NAMES_H_
