// Conversions between storage rows and wire messages.
#ifndef ANOMALYD_DAEMON_CONVERT_H_
#define ANOMALYD_DAEMON_CONVERT_H_

#include "engine/method_names.h"  // ThresholdMethodName, ThresholdMethodFromName
#include "proto/anomalyd.pb.h"
#include "storage/types.h"

namespace anomalyd {

void ToProto(const AnomalyRow& row, pb::Anomaly* out);
void ToProto(const ModelRow& row, pb::ModelInfo* out);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_CONVERT_H_
