// FUZZ_CHECK for the fuzz targets: an invariant that does not hold aborts,
// which libFuzzer records as a crash and the corpus replay test as a failure.
// Unlike assert() it stays on in Release builds.
#ifndef ANOMALYD_TESTS_FUZZ_FUZZ_CHECK_H_
#define ANOMALYD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,     \
                   __LINE__, #cond);                                      \
      std::abort();                                                       \
    }                                                                     \
  } while (0)

#endif  // ANOMALYD_TESTS_FUZZ_FUZZ_CHECK_H_
