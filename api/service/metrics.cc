// api/service/metrics.cc
#include "api/service/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <set>

namespace bridge::api::service {
namespace {

std::string LabelValue(std::string_view text, std::string_view none) {
  std::string out;
  for (char c : text.substr(0, 16)) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '^';
    out += keep ? c : '_';
  }
  return out.empty() ? std::string(none) : out;
}

}  // namespace

class Metrics::Impl {
 public:
  Impl()
      : registry_(std::make_shared<prometheus::Registry>()),
        messages_(prometheus::BuildCounter()
                      .Name("labbridge_hl7_messages_total")
                      .Help("HL7 v2 messages received (in) or sent (out), by message type "
                            "(MSH-9) and the ACK code that answered them (none: no ACK).")
                      .Register(*registry_)),
        results_(prometheus::BuildCounter()
                     .Name("labbridge_results_stored_total")
                     .Help("Lab results (OBX) stored from inbound messages.")
                     .Register(*registry_)
                     .Add({})),
        control_id_reuses_(prometheus::BuildCounter()
                               .Name("labbridge_hl7_control_id_reused_total")
                               .Help("Inbound messages whose sender, facility and MSH-10 "
                                     "were seen before with different content (stored as "
                                     "new messages and flagged in the audit trail).")
                               .Register(*registry_)
                               .Add({})),
        latency_(prometheus::BuildHistogram()
                     .Name("labbridge_ack_latency_seconds")
                     .Help("From a complete MLLP frame received to its ACK handed to the "
                           "connection (parse, store, commit, build the ACK).")
                     .Register(*registry_)
                     .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01,
                                                                      0.025, 0.05, 0.1, 0.25, 0.5,
                                                                      1, 2.5, 5, 10})) {}

  void CountMessage(Direction direction, std::string_view type, std::string_view ack_code) {
    std::string type_label = LabelValue(type, "unknown");
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!types_.contains(type_label)) {
        if (static_cast<int>(types_.size()) >= kMaxMessageTypes) {
          type_label = "other";
        } else {
          types_.insert(type_label);
        }
      }
    }
    messages_
        .Add({{"direction", direction == Direction::kIn ? "in" : "out"},
              {"type", type_label},
              {"ack_code", LabelValue(ack_code, "none")}})
        .Increment();
  }

  void ObserveAckLatency(absl::Duration latency) {
    latency_.Observe(absl::ToDoubleSeconds(latency));
  }
  void CountResultsStored(int results) { results_.Increment(results); }
  void CountControlIdReuse() { control_id_reuses_.Increment(); }

  std::string Text(const std::vector<ScrapedFamily>& scraped) const {
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    for (const ScrapedFamily& s : scraped) {
      prometheus::MetricFamily family;
      family.name = s.name;
      family.help = s.help;
      family.type = s.type == ScrapedFamily::Type::kCounter ? prometheus::MetricType::Counter
                                                            : prometheus::MetricType::Gauge;
      for (const ScrapedFamily::Sample& sample : s.samples) {
        prometheus::ClientMetric metric;
        for (const auto& [name, value] : sample.labels) {
          metric.label.push_back({name, value});
        }
        if (s.type == ScrapedFamily::Type::kCounter) {
          metric.counter.value = sample.value;
        } else {
          metric.gauge.value = sample.value;
        }
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    }
    return prometheus::TextSerializer().Serialize(families);
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& messages_;
  prometheus::Counter& results_;
  prometheus::Counter& control_id_reuses_;
  prometheus::Histogram& latency_;
  std::mutex mu_;
  std::set<std::string> types_;
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::CountMessage(Direction direction, std::string_view type, std::string_view ack_code) {
  impl_->CountMessage(direction, type, ack_code);
}
void Metrics::ObserveAckLatency(absl::Duration latency) { impl_->ObserveAckLatency(latency); }
void Metrics::CountResultsStored(int results) { impl_->CountResultsStored(results); }
void Metrics::CountControlIdReuse() { impl_->CountControlIdReuse(); }
std::string Metrics::Text(const std::vector<ScrapedFamily>& scraped) const {
  return impl_->Text(scraped);
}

}  // namespace bridge::api::service
