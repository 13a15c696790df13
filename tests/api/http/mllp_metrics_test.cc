// tests/api/http/mllp_metrics_test.cc
#include "api/http/mllp_metrics.h"

#include "gtest/gtest.h"

namespace bridge::api::http {
namespace {

TEST(MllpMetricsTextTest, EveryCounterInPrometheusText) {
  mllp::ServerStats stats;
  stats.connections_accepted = 7;
  stats.active_connections = 2;
  stats.frames_received = 40;
  stats.idle_timeouts = 1;
  stats.frame_timeouts = 2;
  const std::string text = MllpMetricsText(stats);
  EXPECT_NE(text.find("# TYPE labbridge_mllp_connections_accepted_total counter\n"
                      "labbridge_mllp_connections_accepted_total 7\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("labbridge_mllp_connections_open 2\n"), std::string::npos);
  EXPECT_NE(text.find("labbridge_mllp_frames_received_total 40\n"), std::string::npos);
  EXPECT_NE(text.find("labbridge_mllp_timeouts_total 3\n"), std::string::npos);
}

}  // namespace
}  // namespace bridge::api::http
