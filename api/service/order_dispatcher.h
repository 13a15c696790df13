// api/service/order_dispatcher.h
//
// OrderDispatcher sends the orders waiting in the outbox to the laboratories
// of lis_endpoints.json and records what happened. One worker thread per
// endpoint owns a persistent mllp::Client (TLS when configured; reconnects
// as needed) and, in a loop:
//   1. claims the endpoint's due outbox rows in placement order (a lease;
//      on PostgreSQL several replicas never hold the same row, and while the
//      oldest row waits for a retry nothing behind it is sent);
//   2. builds the message the endpoint wants (ORM^O01 or OML^O21, its
//      version, receiver, time zone and test codes) from the ORM stored at
//      placement, keeping that message's control id, so a resend carries the
//      same MSH-10 and the LIS can drop the duplicate;
//   3. sends it and waits for the ACK whose MSA-2 is that control id (a late
//      ACK for an earlier message is recorded in the audit trail and ignored);
//   4. settles the row and appends the outbound hl7_messages row (the
//      message and the ACK that answered it), in one transaction:
//        AA (CA in enhanced mode)  -> order "sent"; enhanced mode's later
//                                     application AA -> "acknowledged"
//        AE, no ACK in time, connection lost after sending
//                                  -> retry with exponential backoff and jitter,
//                                     up to the endpoint's retry_max_attempts,
//                                     then "failed" (last_error, metric, log)
//        AR                        -> "rejected", no retry
//      A LIS that cannot be reached at all costs the order no attempt: the
//      endpoint backs off and its orders wait, in order.
// A cancel (ORC-1 CA) row goes through the same path; its outcome never
// changes the order's status. One more thread routes orders placed while no
// endpoint took their tests (kUnroutedEndpoint) once one does.
//
//   auto dispatcher = OrderDispatcher::Create(store, *endpoints, options);
//   (*dispatcher)->Start();
//   ... (*dispatcher)->Wake();               // an order was placed
//   ... (*dispatcher)->Reload(new_endpoints); // SIGHUP
//   (*dispatcher)->Stop();                   // waits for the exchanges in flight
//
// Thread-safety: every method may be called from any thread. The store must
// outlive the dispatcher.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/service/lis_endpoints.h"
#include "storage/store.h"

namespace spdlog {
class logger;
}

namespace bridge::api::service {

struct OrderDispatcherOptions {
  std::string sending_application = "PMS_LAB";  // MSH-3
  std::string sending_facility = "MPS_PMS";     // MSH-4, PID-3 authority, placer namespace
  // Names this process's leases ("" = host:pid:random).
  std::string instance_id = "";
  // How often an idle worker looks for work placed by other replicas or
  // coming due (Wake() answers at once for this process's orders).
  absl::Duration poll_interval = absl::Milliseconds(250);
  // Most rows one claim takes (fewer when the endpoint is down or slow).
  int max_batch = 16;
  // An order no endpoint takes is looked at again after this long (and at
  // every reload).
  absl::Duration unroutable_retry = absl::Minutes(10);
  std::shared_ptr<spdlog::logger> logger = nullptr;  // may be null
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// Counters of one endpoint since start (kept across reloads).
struct EndpointCounters {
  std::int64_t accepted = 0;            // AA / CA
  std::int64_t application_errors = 0;  // AE / CE / not an ACK
  std::int64_t rejected = 0;            // AR / CR: orders rejected
  std::int64_t timeouts = 0;            // no ACK within ack_timeout
  std::int64_t connection_lost = 0;     // dropped after sending
  std::int64_t unreachable = 0;         // connect / TLS failures (nothing sent)
  std::int64_t retries = 0;             // attempts scheduled again
  std::int64_t failed = 0;              // gave up after retry_max_attempts
  std::int64_t stray_acks = 0;          // ACKs that answered no message in flight
  bool up = false;                      // the last connection attempt worked
};

class OrderDispatcher {
 public:
  // Builds an MLLP client per endpoint (loads TLS files; connects later).
  // InvalidArgument naming the endpoint for unusable TLS files.
  static absl::StatusOr<std::unique_ptr<OrderDispatcher>> Create(storage::Store& store,
                                                                 LisEndpoints endpoints,
                                                                 OrderDispatcherOptions options);
  ~OrderDispatcher();
  OrderDispatcher(const OrderDispatcher&) = delete;
  OrderDispatcher& operator=(const OrderDispatcher&) = delete;

  // Moves rows of endpoints no longer configured back to routing, then
  // starts the workers. Idempotent.
  void Start();
  // Stops the workers; an exchange in flight finishes first (at most the
  // endpoint's connect + ACK timeouts). Idempotent.
  void Stop();
  // Replaces the endpoints (SIGHUP). On error (unusable TLS files) the old
  // ones stay in force. Running workers are restarted.
  absl::Status Reload(LisEndpoints endpoints);
  // Work is waiting: idle workers look now instead of at the next poll.
  void Wake();

  // Routing with the current endpoints, for Orders (OrdersOptions::route).
  absl::StatusOr<std::string> Route(const std::vector<std::string>& test_codes) const;

  std::map<std::string, EndpointCounters> counters() const;
  // Prometheus text (labbridge_orders_*, labbridge_lis_*).
  std::string MetricsText() const;

 private:
  class Impl;
  explicit OrderDispatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::api::service
