// api/http/mllp_metrics.h
//
// The MLLP listener's counters (mllp::ServerStats) as Prometheus text, for
// ApisOptions::extra_metrics in the composition root:
//
//   options.extra_metrics = [&server] { return http::MllpMetricsText(server->stats()); };
#pragma once

#include <string>

#include "mllp/server.h"

namespace bridge::api::http {

std::string MllpMetricsText(const mllp::ServerStats& stats);

}  // namespace bridge::api::http
