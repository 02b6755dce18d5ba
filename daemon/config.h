// anomalyd's configuration file (TOML). config/anomalyd.toml documents every
// key with its default. Unknown keys and bad values are errors that name the
// key ("training.batch_size: must be >= 1").
#ifndef ANOMALYD_DAEMON_CONFIG_H_
#define ANOMALYD_DAEMON_CONFIG_H_

#include <string>
#include <string_view>

#include "model/model.h"
#include "proto/status.h"

namespace anomalyd {

struct Config {
  // [model], [training] and [threshold]: how models are trained and scored.
  TrainOptions train;
};

// Parses TOML text; `source` names it in messages. On failure *config is
// unspecified and the status is INVALID_ARGUMENT naming the key (or the
// line and column of a syntax error).
Status ParseConfig(std::string_view text, const std::string& source,
                   Config* config);

// Reads and parses a file. IO_ERROR when it cannot be read.
Status LoadConfig(const std::string& path, Config* config);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_CONFIG_H_
