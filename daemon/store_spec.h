// The daemon's store, from its config: the one place that turns [storage]
// (and the training seed) into a StoreSpec (storage/open.h). Every store
// the daemon opens (the writer's, the query and rollback threads', a
// retrain's reservoir read) is opened with OpenStore from this spec or
// ReadOnly(spec).
#ifndef ANOMALYD_DAEMON_STORE_SPEC_H_
#define ANOMALYD_DAEMON_STORE_SPEC_H_

#include <string>

#include "common/config.h"
#include "storage/open.h"

namespace anomalyd {

// The writer's spec: storage.url when set, else SQLite at storage.path,
// else SQLite at `default_path` (<state_dir>/anomalyd.db);
// storage.synchronous as SqliteOptions::sync, storage.reservoir_capacity,
// and training.seed as the reservoir's seed. The URL is not checked here:
// OpenStore reports a bad one. REQUIRES: config was checked by ParseConfig
// (at most one of storage.path and storage.url set).
StoreSpec MakeStoreSpec(const Config& config, const std::string& default_path);

}  // namespace anomalyd

#endif  // ANOMALYD_DAEMON_STORE_SPEC_H_
