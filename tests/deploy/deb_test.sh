#!/usr/bin/env bash
# The Debian package (cmake/packaging.cmake): cpack builds it from the build
# folder, lintian finds no error in it (warnings are printed), and it holds
# what it should. Then, as root, it is installed with dpkg -i into this
# machine, the installed programs run (anomalyd --check-config on the
# installed config, anomalyctl --help, man -w, the completion), and
# dpkg --purge removes every file of it again. A trap purges it on any
# failure, so the machine is left as it was (but for dpkg's log and man-db's
# index, which the install and the purge each update).
#   deb_test.sh BUILD_DIR SOURCE_DIR
# Exit 77 (skipped) without lintian; the install part is skipped (77) when
# not root, without dpkg, or when an anomalyd is already installed here
# (a package, or files of `cmake --install --prefix /usr`): it is not ours
# to overwrite or purge.
set -euo pipefail
SKIP=77
build=$(cd "$1" && pwd)
src=$2
pkg=anomalyd
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

if ! command -v lintian >/dev/null || ! command -v cpack >/dev/null; then
  echo "SKIP: lintian or cpack is missing (scripts/install-deps.sh --test installs lintian)"
  exit $SKIP
fi

# --- Build. cpack runs the build's preinstall target first (an up-to-date
# check when the build is current).
version=$(sed -n 's/^project(anomalyd VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
deb=$build/${pkg}_${version}_${arch}.deb
rm -f "$deb"
if ! out=$(cd "$build" && cpack -G DEB 2>&1); then
  echo "$out" >&2
  echo "FAIL: cpack -G DEB" >&2
  exit 1
fi
[[ -f $deb ]] || { echo "$out" >&2; echo "FAIL: cpack wrote no $deb" >&2; exit 1; }
echo "built $deb ($(stat -c %s "$deb") bytes)"

# --- lintian: errors fail, the rest is shown.
lint=$(lintian --display-info "$deb" 2>&1 | grep -v '^running with root privileges' || true)
[[ -n $lint ]] && echo "$lint"
if grep -q '^E:' <<<"$lint"; then
  fail "lintian reports errors"
fi
echo "lintian: $(grep -c '^E:' <<<"$lint" || true) errors," \
  "$(grep -c '^W:' <<<"$lint" || true) warnings, $(grep -c '^I:' <<<"$lint" || true) info"

# --- What the package holds.
expected=(
  /usr/sbin/anomalyd /usr/bin/anomalyctl
  /usr/lib/systemd/system/anomalyd.service
  /etc/anomalyd/anomalyd.toml
  /usr/share/anomalyd/anomalyd.proto
  /usr/share/man/man1/anomalyctl.1.gz /usr/share/man/man5/anomalyd.toml.5.gz
  /usr/share/man/man8/anomalyd.8.gz
  /usr/share/bash-completion/completions/anomalyctl
  /usr/share/doc/anomalyd/copyright /usr/share/doc/anomalyd/changelog.gz
)
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's#^\./#/#')
for f in "${expected[@]}"; do
  grep -qxF "$f" <<<"$contents" || fail "the package lacks $f"
done
control=$(mktemp -d)
trap 'rm -rf "$control"' EXIT
dpkg-deb -e "$deb" "$control"
[[ $(cat "$control/conffiles") == /etc/anomalyd/anomalyd.toml ]] ||
  fail "DEBIAN/conffiles is not /etc/anomalyd/anomalyd.toml: $(cat "$control/conffiles")"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libtorch1.13 libzmq5 libprotobuf32 libsqlite3-0 libsystemd0; do
  grep -q "\b$lib\b" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
# The changelog's newest entry is this version.
changelog_version=$(sed -n '1s/^anomalyd (\([^)]*\)).*/\1/p' "$src/packaging/deb/changelog")
[[ $changelog_version == "$version" ]] ||
  fail "packaging/deb/changelog starts at $changelog_version, the project is $version"

if [[ $failures != 0 ]]; then
  echo "deb: $failures failure(s)" >&2
  exit 1
fi

# --- Install, use, purge.
if [[ $(id -u) != 0 ]] || ! command -v dpkg >/dev/null; then
  echo "SKIP: installing needs root and dpkg; the package built and linted clean"
  exit $SKIP
fi
status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
if [[ -n $status && $status != not-installed ]]; then
  echo "SKIP: package $pkg is already here ($status); not touching it"
  exit $SKIP
fi
for f in /usr/sbin/anomalyd /usr/bin/anomalyctl /etc/anomalyd; do
  if [[ -e $f ]]; then
    echo "SKIP: $f exists (an install not by this package); not touching it"
    exit $SKIP
  fi
done

purge() {
  dpkg --purge "$pkg" >/dev/null 2>&1 || echo "WARNING: dpkg --purge $pkg failed" >&2
}
trap 'purge; rm -rf "$control"' EXIT
if ! out=$(dpkg -i "$deb" 2>&1); then
  echo "$out" >&2
  echo "FAIL: dpkg -i $deb" >&2
  exit 1
fi
[[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg") == installed ]] ||
  fail "dpkg -i did not leave $pkg installed"

listed=$(dpkg -L "$pkg")
for f in "${expected[@]}"; do
  grep -qxF "$f" <<<"$listed" || fail "dpkg -L $pkg lacks $f"
  [[ -f $f ]] || fail "$f is not installed"
done
# (Outputs are read whole before grep -q: under pipefail a writer that
# outlives grep's match would fail the pipe.)
conffiles=$(dpkg-query -W -f='${Conffiles}\n' "$pkg")
grep -q '^ /etc/anomalyd/anomalyd.toml [0-9a-f]\{32\}$' <<<"$conffiles" ||
  fail "/etc/anomalyd/anomalyd.toml is not a conffile: $conffiles"
grep -qxF 'ExecStart=/usr/sbin/anomalyd --config /etc/anomalyd/anomalyd.toml --state-dir /var/lib/anomalyd' \
  /usr/lib/systemd/system/anomalyd.service || fail "the installed unit's ExecStart= is not the /usr one"
# As installed, the unit names files that exist (verify checks ExecStart=).
if command -v systemd-analyze >/dev/null; then
  out=$(SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no \
    /usr/lib/systemd/system/anomalyd.service 2>&1) && [[ -z $out ]] ||
    fail "systemd-analyze verify on the installed unit: $out"
fi

# The programs run from where the package put them; --check-config neither
# binds nor creates anything (checked in an empty working folder).
work=$(mktemp -d)
trap 'purge; rm -rf "$control" "$work"' EXIT
(cd "$work" && /usr/sbin/anomalyd --config /etc/anomalyd/anomalyd.toml --check-config) ||
  fail "anomalyd --check-config on the installed config"
[[ -z $(ls -A "$work") ]] || fail "--check-config created $(ls -A "$work")"
help=$(anomalyctl --help) && grep -q retrain <<<"$help" || fail "anomalyctl --help"
if command -v man >/dev/null; then
  for page in anomalyctl anomalyd anomalyd.toml; do
    where=$(man -w "$page" 2>&1) || fail "man -w $page: $where"
    [[ $where == /usr/share/man/* ]] || fail "man -w $page found $where"
  done
fi
bash -c 'source /usr/share/bash-completion/completions/anomalyctl && complete -p anomalyctl' \
  >/dev/null || fail "the installed completion does not register for anomalyctl"

if ! out=$(dpkg --purge "$pkg" 2>&1); then
  echo "$out" >&2
  fail "dpkg --purge $pkg"
fi
trap 'rm -rf "$control" "$work"' EXIT
if dpkg -s "$pkg" >/dev/null 2>&1; then
  fail "dpkg -s $pkg still knows the package after the purge"
fi
while IFS= read -r f; do
  # Folders the package shares with the system (/usr, /etc, ...) stay.
  [[ -d $f ]] && continue
  [[ -e $f || -L $f ]] && fail "$f is left after the purge"
done <<<"$listed"
for d in /etc/anomalyd /usr/share/anomalyd /usr/share/doc/anomalyd; do
  [[ -e $d ]] && fail "$d is left after the purge"
done

if [[ $failures != 0 ]]; then
  echo "deb: $failures failure(s)" >&2
  exit 1
fi
echo "deb: OK (built, lintian without errors, installed, ran, purged)"
