// The offline subcommands of anomalyctl: they work on CSV files and model
// bundles directly, without a running daemon.
#ifndef ANOMALYD_CLIENTS_ANOMALYCTL_OFFLINE_H_
#define ANOMALYD_CLIENTS_ANOMALYCTL_OFFLINE_H_

#include <cstdint>
#include <string>

#include "proto/status.h"

namespace anomalyd::ctl {

struct TrainArgs {
  std::string data, out, config;
  int64_t seed = -1;      // -1: keep the config's seed
  std::string device;     // empty: keep the config's device
  bool quiet = false;
};
Status RunTrain(const TrainArgs& args);

struct ScoreArgs {
  std::string model, data, out = "-";
  std::string device = "auto";
  bool contributions = false;
};
Status RunScore(const ScoreArgs& args);

struct EvalArgs {
  std::string model, data;
  std::string device = "auto";
  bool json = false;
};
Status RunEval(const EvalArgs& args);

struct SampleArgs {
  std::string model, out = "-";
  size_t n = 1000;
  uint64_t seed = 42;
  bool draws = false;  // BERNOULLI models only: 0/1 draws, not probabilities
};
Status RunSample(const SampleArgs& args);

// Each record's latent mean (ensemble member 0) as CSV: `id` first when
// the input has one, then z0..z{k-1}, then logvar0.. with `logvar`.
// Features are matched to the model by name, as for score.
struct EncodeArgs {
  std::string model, data, out = "-";
  std::string device = "auto";
  bool logvar = false;
};
Status RunEncode(const EncodeArgs& args);

// Writes a new CURVE key pair: DIR/NAME.key and DIR/NAME.key_secret.
Status RunKeygen(const std::string& dir, const std::string& name);

}  // namespace anomalyd::ctl

#endif  // ANOMALYD_CLIENTS_ANOMALYCTL_OFFLINE_H_
