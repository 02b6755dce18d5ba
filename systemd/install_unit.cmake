# Run by `cmake --install`: see CMakeLists.txt. CMAKE_INSTALL_PREFIX is the
# prefix of this install; file(INSTALL) adds $DESTDIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_sysconf "/etc")
else()
  set(_sysconf "${CMAKE_INSTALL_PREFIX}/etc")
endif()

file(READ "${ANOMALYD_UNIT_SOURCE}" _unit)
string(REPLACE "/usr/sbin/anomalyd" "${CMAKE_INSTALL_PREFIX}/sbin/anomalyd"
       _unit "${_unit}")
string(REPLACE "/etc/anomalyd/anomalyd.toml" "${_sysconf}/anomalyd/anomalyd.toml"
       _unit "${_unit}")
file(MAKE_DIRECTORY "${ANOMALYD_UNIT_STAGING}")
file(WRITE "${ANOMALYD_UNIT_STAGING}/anomalyd.service" "${_unit}")
file(INSTALL "${ANOMALYD_UNIT_STAGING}/anomalyd.service"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

if(EXISTS "$ENV{DESTDIR}${_sysconf}/anomalyd/anomalyd.toml")
  message(STATUS "Keeping: $ENV{DESTDIR}${_sysconf}/anomalyd/anomalyd.toml")
else()
  file(INSTALL "${ANOMALYD_CONFIG_SOURCE}"
       DESTINATION "${_sysconf}/anomalyd"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
