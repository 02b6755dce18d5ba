#!/usr/bin/env bash
# `cmake --install` puts the manual pages and the bash completion where man
# and bash-completion look for them (GNUInstallDirs), beside the programs
# and the wire contract (share/anomalyd/anomalyd.proto).
#   install_test.sh BUILD_DIR
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" --prefix /usr >/dev/null
status=0
for f in usr/share/man/man1/anomalyctl.1 usr/share/man/man5/anomalyd.toml.5 \
         usr/share/man/man8/anomalyd.8 usr/share/bash-completion/completions/anomalyctl \
         usr/bin/anomalyctl usr/sbin/anomalyd usr/share/anomalyd/anomalyd.proto; do
  if [[ ! -f $dest/$f ]]; then
    echo "FAIL: cmake --install did not install /$f" >&2
    status=1
  fi
done
# man finds the installed pages by name.
if command -v man >/dev/null && [[ $status == 0 ]]; then
  for name in anomalyctl anomalyd.toml anomalyd; do
    MANPATH=$dest/usr/share/man man -w "$name" >/dev/null ||
      { echo "FAIL: man -w $name under $dest/usr/share/man" >&2; status=1; }
  done
fi
[[ $status == 0 ]] && echo "install: OK"
exit "$status"
