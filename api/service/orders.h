// api/service/orders.h
//
// Orders: placing, reading, listing and cancelling lab orders, shared by
// POST /api/lab-orders, POST /fhir/ServiceRequest and gRPC SubmitOrder so
// the three create exactly the same order. Create stores the order (status
// "pending") and its outbox row, holding the ORM^O01 built by
// mapping/fhir_to_v2, in one transaction; sending it to the LIS is the order
// dispatcher's job (it reads the outbox, and builds the message each LIS
// wants from that ORM). Cancel drops an order nothing of which can have
// reached the LIS, and otherwise queues an ORC-1 CA message behind it.
// List(status = "overdue") gives the orders placed more than
// OrdersOptions::overdue_after ago that have no result yet (pending, sent or
// acknowledged).
//
//   Orders orders(store, {.sending_application = "PMS_LAB"});
//   absl::StatusOr<OrderView> order = orders.Create({.pms_patient_id = "1",
//                                                    .test_codes = {"CBC"}, ...});
//
// Errors: kInvalidArgument naming the field; kNotFound; kFailedPrecondition
// when cancelling an order that is already final (resulted, failed,
// rejected, cancelled); kUnavailable when the store is.
//
// Thread-safe; every call blocks on storage.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/control_id.h"
#include "storage/store.h"

namespace bridge::api::service {

struct OrdersOptions {
  std::string sending_application = "PMS_LAB";  // ORM MSH-3
  std::string sending_facility = "MPS_PMS";     // ORM MSH-4, PID-3 authority, placer namespace
  std::string lis_endpoint = "default";         // outbox destination (lis_endpoints.json name)
  // When set, picks the destination from the test codes instead: an
  // endpoint id; NotFound leaves the order for the dispatcher to route later
  // (lis_endpoint is used); InvalidArgument refuses the order.
  std::function<absl::StatusOr<std::string>(const std::vector<std::string>& test_codes)> route =
      nullptr;
  // Called after an order is placed or cancelled (wakes the dispatcher).
  std::function<void()> on_outbox_change = nullptr;
  // An order with no result this long after it was placed is overdue.
  absl::Duration overdue_after = absl::Hours(24);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

struct OrderInput {
  std::string pms_patient_id;  // required
  std::optional<std::int64_t> encounter_id;
  std::vector<std::string> test_codes;  // required, non-empty
  std::vector<std::string> test_names;  // optional, parallel to test_codes
  std::string ordering_provider;
  std::string priority = "R";                          // R, S, A
  std::optional<storage::PatientRecord> demographics;  // upserted when given
};

struct OrderView {
  storage::StoredOrder order;
  std::string pms_patient_id;
};

struct OrderList {
  std::vector<OrderView> orders;
  std::string next_cursor;
};

class Orders {
 public:
  Orders(storage::Store& store, OrdersOptions options)
      : store_(store), options_(std::move(options)) {}
  Orders(const Orders&) = delete;
  Orders& operator=(const Orders&) = delete;

  absl::StatusOr<OrderView> Create(const OrderInput& input);
  absl::StatusOr<OrderView> Get(std::int64_t id) const;
  absl::StatusOr<OrderList> List(const std::string& pms_patient_id, const std::string& status,
                                 int limit, const std::string& cursor) const;
  absl::StatusOr<OrderView> Cancel(std::int64_t id);

 private:
  absl::StatusOr<OrderView> View(storage::StoredOrder order) const;

  storage::Store& store_;
  const OrdersOptions options_;
  ControlIdGenerator control_ids_;
};

// The order statuses a filter may name, and "overdue".
bool IsOrderStatus(const std::string& status);

// The ORC-1 CA (cancel) message for an order, as queued by Cancel: the same
// patient, tests, provider and placer numbers as the new-order message.
absl::StatusOr<std::string> BuildCancelMessage(const storage::StoredOrder& order,
                                               const std::string& pms_patient_id,
                                               const OrdersOptions& options,
                                               const std::string& control_id, absl::Time now);

}  // namespace bridge::api::service
