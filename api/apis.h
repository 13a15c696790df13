// api/apis.h
//
// The APIs lab-bridge offers its callers: REST and the FHIR R4 facade on
// Boost.Beast (HTTP_LISTEN_PORT) and gRPC (GRPC_LISTEN_PORT, same host),
// started by the composition root with one call and stopped with one:
//
//   absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store, &bus, {});
//   if (!apis.ok()) { print apis.status(); exit 1; }  // port in use, bad tokens file
//   ...
//   (*apis)->Stop();
//
// Every API call needs a bearer token from Config::api_tokens_file (see
// api/service/auth.h) except /healthz, /readyz and, unless
// Config::metrics_require_token, /metrics. Every call on patient data is
// recorded in Config::access_audit_file (api/service/access_audit.h).
//
// Thread-safety: Stop may be called from any thread and is idempotent. The
// store and the event bus must outlive the Apis.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/config.h"
#include "api/http/server.h"
#include "api/service/access_audit.h"
#include "api/service/auth.h"
#include "storage/store.h"

namespace bridge::api {

namespace service {
class EventBus;
class Metrics;
}  // namespace service

struct ApisOptions {
  // HTTP limits not in Config (listen address, port, workers, body limit
  // and request timeout come from the Config).
  http::HttpServerOptions http;
  // Outbox destination of new orders (a name in lis_endpoints.json).
  std::string lis_endpoint = "default";
  // Picks the destination from the test codes (OrdersOptions::route), and
  // is told when an order is placed or cancelled (the order dispatcher).
  std::function<absl::StatusOr<std::string>(const std::vector<std::string>&)> route_order;
  std::function<void()> orders_changed;
  // The registry /metrics serves (shared with the MLLP handler, which counts
  // messages and ACK latency there); borrowed. nullptr: the APIs keep their own.
  service::Metrics* metrics = nullptr;
  // gRPC WatchResults is woken by the event bus for results stored in this
  // process, and looks at the store this often for those stored by others
  // (another replica on the same PostgreSQL); 200 ms without a bus.
  absl::Duration watch_poll_interval = absl::Seconds(2);
  // More Prometheus text lines appended to /metrics (e.g. MLLP counters).
  std::function<std::string()> extra_metrics;
};

class Apis {
 public:
  virtual ~Apis() = default;
  virtual std::uint16_t http_port() const = 0;
  virtual int grpc_port() const = 0;
  virtual service::TokenRegistry& tokens() = 0;
  virtual service::AccessAudit& access_audit() = 0;
  // When the tokens file held no token at start, StartApis created one named
  // "admin" with every role; this is it (print it once). "" otherwise.
  virtual const std::string& initial_admin_token() const = 0;
  virtual void Stop() = 0;
};

absl::StatusOr<std::unique_ptr<Apis>> StartApis(const Config& config, storage::Store& store,
                                                service::EventBus* events,
                                                const ApisOptions& options);

// Process-wide malloc settings for a long-running server, called once at
// start by the composition root (it changes the whole process, so StartApis
// does not do it behind the caller's back): freed memory is kept for reuse
// instead of going back to the kernel at every 50 KB response.
void TuneAllocatorForServing();

}  // namespace bridge::api
