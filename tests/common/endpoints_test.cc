#include "common/endpoints.h"

#include <gtest/gtest.h>

namespace anomalyd {
namespace {

// The defaults are part of the interface (README, config/anomalyd.toml,
// scripts and the Python client use them): they must not move.
TEST(EndpointsTest, DefaultPortsGiveTheDocumentedEndpoints) {
  const struct {
    pb::DefaultPort port;
    const char* endpoint;
  } kCases[] = {
      {pb::DEFAULT_PORT_SCORE, "tcp://127.0.0.1:7601"},
      {pb::DEFAULT_PORT_INGEST, "tcp://127.0.0.1:7602"},
      {pb::DEFAULT_PORT_CONTROL, "tcp://127.0.0.1:7603"},
      {pb::DEFAULT_PORT_ALERTS, "tcp://127.0.0.1:7604"},
      {pb::DEFAULT_PORT_METRICS, "tcp://127.0.0.1:7605"},
  };
  for (const auto& c : kCases) {
    EXPECT_EQ(DefaultEndpoint(c.port), c.endpoint)
        << pb::DefaultPort_Name(c.port);
  }
}

}  // namespace
}  // namespace anomalyd
