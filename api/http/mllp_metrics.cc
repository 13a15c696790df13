// api/http/mllp_metrics.cc
#include "api/http/mllp_metrics.h"

#include <cstdint>
#include <string>

namespace bridge::api::http {
namespace {

void Metric(std::string* out, const char* name, const char* type, const char* help,
            std::int64_t value) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
          name + " " + std::to_string(value) + "\n";
}

}  // namespace

std::string MllpMetricsText(const mllp::ServerStats& s) {
  std::string out;
  const auto n = [](const auto& counter) { return static_cast<std::int64_t>(counter.load()); };
  Metric(&out, "labbridge_mllp_connections_accepted_total", "counter", "MLLP connections accepted.",
         n(s.connections_accepted));
  Metric(&out, "labbridge_mllp_connections_refused_total", "counter",
         "MLLP connections refused at a connection limit.", n(s.connections_refused));
  Metric(&out, "labbridge_mllp_connections_open", "gauge", "MLLP connections open.",
         n(s.active_connections));
  Metric(&out, "labbridge_mllp_frames_received_total", "counter",
         "Complete MLLP frames handed to the pipeline.", n(s.frames_received));
  Metric(&out, "labbridge_mllp_replies_sent_total", "counter", "ACK/NAK frames written.",
         n(s.replies_sent));
  Metric(&out, "labbridge_mllp_oversize_frames_total", "counter",
         "Frames refused at MAX_MESSAGE_SIZE.", n(s.oversize_frames));
  Metric(&out, "labbridge_mllp_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed.", n(s.tls_handshake_failures));
  Metric(&out, "labbridge_mllp_timeouts_total", "counter",
         "Connections closed on the idle, frame, write or handshake deadline.",
         n(s.idle_timeouts) + n(s.frame_timeouts) + n(s.write_timeouts) + n(s.handshake_timeouts));
  return out;
}

}  // namespace bridge::api::http
