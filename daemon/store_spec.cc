#include "daemon/store_spec.h"

namespace anomalyd {
namespace {

// ParseConfig allows only these three.
SyncLevel ParseSync(const std::string& s) {
  if (s == "off") return SyncLevel::kOff;
  if (s == "full") return SyncLevel::kFull;
  return SyncLevel::kNormal;
}

}  // namespace

StoreSpec MakeStoreSpec(const Config& config, const std::string& default_path) {
  const StorageOptions& storage = config.storage;
  StoreSpec spec;
  if (!storage.url.empty()) {
    spec.url = storage.url;
  } else {
    // storage.path is a file name, never a URL: encoded, so that any name
    // (one holding ':' or '%') opens as it always did.
    spec.url = SqliteUrl(storage.path.empty() ? default_path : storage.path);
  }
  spec.options.reservoir_capacity = storage.reservoir_capacity;
  spec.options.reservoir_seed = config.train.seed;
  spec.sqlite.sync = ParseSync(storage.synchronous);
  return spec;
}

}  // namespace anomalyd
