// The daemon's default endpoints, built from the ports in proto's
// DefaultPort enum, the one place they are written down. The daemon's
// configuration ([endpoints] defaults), anomalyctl and the load generator
// take their defaults from here.
#ifndef ANOMALYD_COMMON_ENDPOINTS_H_
#define ANOMALYD_COMMON_ENDPOINTS_H_

#include <string>

#include "proto/anomalyd.pb.h"

namespace anomalyd {

// The host the daemon binds by default: loopback only, so a fresh install
// is not reachable from the network until its config says so.
inline constexpr char kDefaultHost[] = "127.0.0.1";

// "tcp://127.0.0.1:PORT" for one of proto's DefaultPort values.
// REQUIRES: port != pb::DEFAULT_PORT_NONE
inline std::string DefaultEndpoint(pb::DefaultPort port) {
  return std::string("tcp://") + kDefaultHost + ":" +
         std::to_string(static_cast<int>(port));
}

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_ENDPOINTS_H_
