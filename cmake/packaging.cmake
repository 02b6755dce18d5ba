# The Debian package: `cmake --build build --target package` or
# `cd build && cpack -G DEB` writes build/anomalyd_<version>_<arch>.deb.
# Its files are what `cmake --install` installs, with the prefix /usr (the
# install rules of each folder; systemd/install_unit.cmake puts the config
# in /etc/anomalyd), plus what packaging/deb/ adds: the copyright and
# changelog, the maintainer scripts, the conffiles list; the manual pages
# are gzipped there. README, "Install as a Debian package";
# tests/deploy/deb_test.sh builds, lints, installs and purges it.
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "anomalyd")
set(CPACK_PACKAGE_VENDOR "anomalyd maintainers")
set(CPACK_PACKAGE_CONTACT
    "anomalyd maintainers <maintainers@users.noreply.h-seed-6fe79ff7.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "VAE anomaly-detection daemon")
set(CPACK_PACKAGE_DESCRIPTION
    "anomalyd learns what normal records look like with a Variational
Autoencoder and tells which records are not normal, and which features
made them so. Clients stream records to it over ZeroMQ; it scores them in
batches, keeps flagged records in SQLite, publishes them as alerts,
recalibrates thresholds and retrains models without stopping.

This package holds the daemon (a systemd service, neither enabled nor
started on install), its command line anomalyctl, the wire contract
(anomalyd.proto), the manual pages and the bash completion.")
# The version is the project's (CMakeLists.txt); no Debian revision, so the
# file is anomalyd_0.1.0_amd64.deb.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Depends: from the binaries' shared libraries, with dpkg-shlibdeps and the
# shlibs files of Debian's packages (libtorch1.13, libzmq5, ...).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
find_program(ANOMALYD_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NOT ANOMALYD_DPKG_SHLIBDEPS)
  # CPack then writes a package with no Depends at all.
  message(WARNING "dpkg-shlibdeps (Debian: dpkg-dev) is missing: the .deb "
          "the package target makes would lack its Depends")
endif()
# LibTorch needs some libblas.so.3; the figures in bench/RESULTS.md are
# with OpenBLAS (scripts/install-deps.sh installs it), several times faster
# than the reference BLAS libtorch1.13 would otherwise get.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/deb/conffiles"
    "${CMAKE_SOURCE_DIR}/packaging/deb/postinst"
    "${CMAKE_SOURCE_DIR}/packaging/deb/prerm"
    "${CMAKE_SOURCE_DIR}/packaging/deb/postrm")
# 0644 for conffiles, 0755 for the scripts, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_ANOMALYD_DEB_DIR "${CMAKE_SOURCE_DIR}/packaging/deb")
set(CPACK_PRE_BUILD_SCRIPTS "${CMAKE_SOURCE_DIR}/packaging/deb/prebuild.cmake")
# Only the binary package; a source tarball is `git archive`.
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
