#!/usr/bin/env bash
# scripts/check-layers.sh refuses what it must: it is run on a small tree
# with forbidden includes and links (each must be named) and allowed ones
# (none may be). The real tree is checked by the ctest test check_layers.
#   tests/layers/check_layers_test.sh SOURCE_DIR
set -uo pipefail
check="$1/scripts/check-layers.sh"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{proto,common,model,storage,engine,daemon,clients/anomalyctl}

# Allowed.
printf '#include "proto/status.h"\n' >"$tree/common/clock.h"
printf '#include "common/clock.h"\n#include "storage/store.h"\n' >"$tree/storage/store.cc"
printf '#include "common/config.h"\n#include "model/model.h"\n' >"$tree/clients/anomalyctl/offline.cc"
printf '#include "engine/engine.h"\n#include "common/endpoints.h"\n' >"$tree/common/config.cc"
printf '#include "store.h"\n#include <zmq.hpp>\n#include "toml++/toml.h"\n' >"$tree/storage/x.cc"
printf 'target_link_libraries(anomalyd_client PUBLIC anomalyd_common)\n' >"$tree/clients/CMakeLists.txt"
# Forbidden: one per line of `want`.
printf '#include "clients/curve_keys.h"\n' >"$tree/daemon/auth.h"
printf '#include "proto/status.h"\n  #  include "daemon/clock.h"\n' >"$tree/clients/anomalyctl/online.cc"
printf '#include "common/config.h"\n' >"$tree/engine/engine.h"
printf '#include "common/config.h"\n' >"$tree/common/curve_keys.h"
printf '#include "engine/engine.h"\n' >"$tree/storage/store.h"
printf '#include "../daemon/work.h"\n' >"$tree/model/model.h"
touch "$tree/daemon/work.h"
printf '#include "tests/test_util.h"\n' >"$tree/model/trainer.cc"
mkdir -p "$tree/tests" && touch "$tree/tests/test_util.h"
printf 'target_link_libraries(anomalyctl PRIVATE anomalyd_config\n  anomalyd_daemon_core) # anomalyd_service\n' \
  >"$tree/clients/anomalyctl/CMakeLists.txt"
printf 'target_link_libraries(anomalyd_engine PUBLIC anomalyd_config anomalyd_new)\n' >"$tree/engine/CMakeLists.txt"
want=(
  'daemon/auth.h:1: includes "clients/curve_keys.h" (clients)'
  'clients/anomalyctl/online.cc:2: includes "daemon/clock.h" (daemon)'
  'engine/engine.h:1: includes "common/config.h" (config)'
  'common/curve_keys.h:1: includes "common/config.h" (config)'
  'storage/store.h:1: includes "engine/engine.h" (engine)'
  'model/model.h:1: includes "../daemon/work.h" (daemon)'
  'model/trainer.cc:1: includes "tests/test_util.h" (tests)'
  'clients/anomalyctl/CMakeLists.txt: anomalyctl (clients) links anomalyd_daemon_core (daemon)'
  'engine/CMakeLists.txt: anomalyd_engine (engine) links anomalyd_config (config)'
  'engine/CMakeLists.txt: anomalyd_engine links anomalyd_new, which has no layer'
  'check-layers: forbidden dependencies: 10'
)

out=$(bash "$check" "$tree" 2>&1)
rc=$?
status=0
if ((rc != 1)); then
  echo "FAIL: exit status $rc, want 1" >&2
  status=1
fi
for w in "${want[@]}"; do
  if ! grep -qF -- "$w" <<<"$out"; then
    echo "FAIL: missing: $w" >&2
    status=1
  fi
done
if ((status != 0)); then
  echo "--- output of check-layers.sh:" >&2
  echo "$out" >&2
fi
exit $status
