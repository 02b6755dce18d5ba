// Stream names as requests and the configuration use them ([streams.NAME],
// the `stream` field of requests). Shared by the daemon's wire protocol
// and the configuration reader.
#ifndef ANOMALYD_COMMON_STREAM_NAME_H_
#define ANOMALYD_COMMON_STREAM_NAME_H_

#include <cstddef>

namespace anomalyd {

// The stream of a request that names none.
inline constexpr char kDefaultStream[] = "default";
// The longest stream name (bytes) any request or config may use.
inline constexpr size_t kMaxStreamName = 128;

}  // namespace anomalyd

#endif  // ANOMALYD_COMMON_STREAM_NAME_H_
