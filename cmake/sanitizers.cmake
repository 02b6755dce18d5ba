# Sanitizer and fuzzing builds (docs/testing.md). Included from the top
# CMakeLists before any target, so the flags reach every target of ours and
# none of the prebuilt Debian libraries (LibTorch, protobuf, libzmq).

set(ANOMALYD_SANITIZE "" CACHE STRING
    "Sanitizers for our code: address,undefined | thread | empty for none")
option(ANOMALYD_FUZZ
       "Build the libFuzzer targets in tests/fuzz (clang; implies address,undefined)"
       OFF)

if(ANOMALYD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ANOMALYD_FUZZ needs clang (scripts/fuzz.sh sets it)")
  endif()
  if(ANOMALYD_SANITIZE STREQUAL "")
    set(ANOMALYD_SANITIZE "address,undefined")
  elseif(ANOMALYD_SANITIZE MATCHES "thread")
    message(FATAL_ERROR "ANOMALYD_FUZZ runs under ASan; it cannot use thread")
  endif()
  # Coverage instrumentation everywhere; only fuzz targets link libFuzzer's
  # main (tests/fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(NOT ANOMALYD_SANITIZE STREQUAL "")
  if(ANOMALYD_SANITIZE MATCHES "thread" AND ANOMALYD_SANITIZE MATCHES "address")
    message(FATAL_ERROR "ANOMALYD_SANITIZE: thread cannot be combined with address")
  endif()
  message(STATUS "Sanitizers: ${ANOMALYD_SANITIZE}")
  add_compile_options(-fsanitize=${ANOMALYD_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${ANOMALYD_SANITIZE})
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # The instrumentation confuses gcc's flow analysis: libstdc++'s <regex>
    # and <functional> then warn "may be used uninitialized" falsely.
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  if(ANOMALYD_SANITIZE MATCHES "undefined")
    # UBSan only prints and carries on by default: make a finding fail the
    # test (or stop the fuzzer) instead of scrolling past.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
