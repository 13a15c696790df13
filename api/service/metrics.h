// api/service/metrics.h
//
// Metrics: lab-bridge's own Prometheus metrics, kept in a prometheus-cpp
// registry and served as text (exposition format 0.0.4) by GET /metrics on
// the Beast server; no other HTTP server is started.
//
//   labbridge_hl7_messages_total{direction,type,ack_code}  counter
//   labbridge_ack_latency_seconds                         histogram
//       frame received -> ACK handed to the connection's writer
//   labbridge_results_stored_total                        counter
//   labbridge_hl7_control_id_reused_total                 counter
//
// Values that other parts keep (store counters, open criticals, outbox
// depth, connections) are read at scrape time and passed to Text() as
// ScrapedFamily, so that one serializer writes everything.
//
//   service::Metrics metrics;
//   MllpHandler handler(ingest, threads, max_bytes, &metrics);  // counts what it answers
//   std::string body = metrics.Text({{"labbridge_outbox_depth", "...", kGauge, {{{}, 3}}}});
//
// Label values from senders (MSH-9) are cut to printable [A-Z0-9_^] and at
// most kMaxMessageTypes distinct types are kept apart; the rest count as
// "other", so a sender cannot grow the series without bound.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace bridge::api::service {

struct ScrapedFamily {
  enum class Type { kCounter, kGauge };
  struct Sample {
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  std::string name;
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;
};

class Metrics {
 public:
  enum class Direction { kIn, kOut };
  static constexpr int kMaxMessageTypes = 64;

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One HL7 v2 message exchanged: `type` as in MSH-9 ("ORU^R01"; "" when
  // unreadable), `ack_code` the MSA-1 of the ACK (ours for inbound, the
  // LIS's for outbound; "" when there was none).
  void CountMessage(Direction direction, std::string_view type, std::string_view ack_code);
  // From the moment a complete frame arrived to the ACK handed back.
  void ObserveAckLatency(absl::Duration latency);
  void CountResultsStored(int results);
  // An inbound message reused a control id with different content.
  void CountControlIdReuse();

  // The registry and `scraped`, as Prometheus text.
  std::string Text(const std::vector<ScrapedFamily>& scraped) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::api::service
