# Run by cpack (CPACK_PRE_BUILD_SCRIPTS, see cmake/packaging.cmake) on the
# staging folder that `cmake --install` filled, before the .deb is made:
# adds what only a Debian package carries and compresses the manual pages as
# Debian policy asks (gzip -9n: no name, no time stamp, so builds repeat).
set(_root "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
set(_doc "${_root}/usr/share/doc/anomalyd")

file(GLOB _pages "${_root}/usr/share/man/man*/*.[0-9]")
if(NOT _pages)
  message(FATAL_ERROR "prebuild: no manual pages under ${_root}/usr/share/man")
endif()
foreach(_page IN LISTS _pages)
  execute_process(COMMAND gzip -9nf "${_page}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "prebuild: gzip ${_page} failed (${_rc})")
  endif()
endforeach()

# copyright, and the Debian changelog: a version without a Debian revision
# (0.1.0) makes this a native package, whose changelog is changelog.gz.
file(COPY "${CPACK_ANOMALYD_DEB_DIR}/copyright" DESTINATION "${_doc}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)  # not file(INSTALL): it adds $DESTDIR
execute_process(COMMAND gzip -9nc "${CPACK_ANOMALYD_DEB_DIR}/changelog"
                OUTPUT_FILE "${_doc}/changelog.gz" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "prebuild: gzip changelog failed (${_rc})")
endif()
file(CHMOD "${_doc}/changelog.gz" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
