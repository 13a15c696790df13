// api/service/orders.cc
#include "api/service/orders.h"

#include <array>
#include <string>
#include <utility>

#include "api/service/lis_endpoints.h"
#include "api/service/results.h"
#include "mapping/fhir_to_v2/orm_builder.h"

namespace bridge::api::service {
namespace {

constexpr std::array<const char*, 7> kStatuses = {"pending", "sent",     "acknowledged", "resulted",
                                                  "failed",  "rejected", "cancelled"};

bool IsFinal(const std::string& status) {
  return status == "resulted" || status == "failed" || status == "rejected" ||
         status == "cancelled";
}

}  // namespace

bool IsOrderStatus(const std::string& status) {
  if (status == "overdue") {
    return true;
  }
  for (const char* s : kStatuses) {
    if (status == s) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<OrderView> Orders::Create(const OrderInput& input) {
  if (input.pms_patient_id.empty()) {
    return absl::InvalidArgumentError("patient_id: required");
  }
  if (input.test_codes.empty()) {
    return absl::InvalidArgumentError("test_codes: at least one test code is required");
  }
  for (const std::string& code : input.test_codes) {
    if (code.empty()) {
      return absl::InvalidArgumentError("test_codes: empty test code");
    }
  }
  if (input.priority != "R" && input.priority != "S" && input.priority != "A") {
    return absl::InvalidArgumentError("priority: expected R, S or A, got \"" + input.priority +
                                      "\"");
  }

  const absl::Time now = options_.clock();
  storage::NewOrder order;
  absl::StatusOr<storage::StoredPatient> known = store_.FindPatientByPmsId(input.pms_patient_id);
  if (known.ok() && !input.demographics.has_value()) {
    order.patient_id = known->id;
  } else if (known.ok() || absl::IsNotFound(known.status())) {
    storage::PatientRecord patient;
    if (input.demographics.has_value()) {
      patient = *input.demographics;
    }
    patient.pms_patient_id = input.pms_patient_id;
    order.patient = std::move(patient);
  } else {
    return known.status();
  }
  order.encounter_id = input.encounter_id;
  order.test_codes = input.test_codes;
  order.ordering_provider = input.ordering_provider;
  order.priority = input.priority;
  order.placer_order_number = control_ids_.Next();
  order.lis_endpoint = options_.lis_endpoint;
  if (options_.route) {
    absl::StatusOr<std::string> endpoint = options_.route(input.test_codes);
    if (endpoint.ok()) {
      order.lis_endpoint = *std::move(endpoint);
    } else if (!absl::IsNotFound(endpoint.status())) {
      return endpoint.status();
    }
  }

  fhir_to_v2::OrderRequest request;
  request.patient_id = input.pms_patient_id;
  if (input.encounter_id.has_value()) {
    request.encounter_id = std::to_string(*input.encounter_id);
  }
  for (std::size_t i = 0; i < input.test_codes.size(); ++i) {
    fhir_to_v2::TestCode code;
    code.code = input.test_codes[i];
    if (i < input.test_names.size()) {
      code.display = input.test_names[i];
    }
    code.system = "L";
    request.test_codes.push_back(std::move(code));
  }
  request.ordering_provider.family_name = input.ordering_provider;
  request.priority = input.priority;
  request.placer_order_number = order.placer_order_number;
  if (input.demographics.has_value()) {
    fhir_to_v2::PatientDemographics demographics;
    demographics.family_name = input.demographics->family_name;
    demographics.given_name = input.demographics->given_name;
    demographics.birth_date = input.demographics->birth_date;
    demographics.sex = input.demographics->sex;
    request.demographics = std::move(demographics);
  }
  fhir_to_v2::OrmOptions orm;
  orm.sending_application = options_.sending_application;
  orm.sending_facility = options_.sending_facility;
  orm.patient_authority = options_.sending_facility;
  orm.placer_namespace = options_.sending_facility;
  orm.control_id = control_ids_.Next();
  orm.timestamp = now;
  absl::StatusOr<std::string> er7 = fhir_to_v2::BuildOrm(request, orm);
  if (!er7.ok()) {
    return er7.status();  // names the field (e.g. a test code with a space)
  }
  order.outbox_payload = *std::move(er7);

  absl::StatusOr<storage::CreatedOrder> created = store_.CreateOrder(order);
  if (!created.ok()) {
    return created.status();
  }
  if (options_.on_outbox_change) {
    options_.on_outbox_change();
  }
  return Get(created->order_id);
}

absl::StatusOr<OrderView> Orders::View(storage::StoredOrder order) const {
  OrderView view;
  absl::StatusOr<storage::StoredPatient> patient = store_.GetPatient(order.patient_id);
  if (patient.ok()) {
    view.pms_patient_id = patient->patient.pms_patient_id;
  } else if (!absl::IsNotFound(patient.status())) {
    return patient.status();
  }
  view.order = std::move(order);
  return view;
}

absl::StatusOr<OrderView> Orders::Get(std::int64_t id) const {
  absl::StatusOr<storage::StoredOrder> order = store_.GetOrder(id);
  if (!order.ok()) {
    return order.status();
  }
  return View(*std::move(order));
}

absl::StatusOr<OrderList> Orders::List(const std::string& pms_patient_id, const std::string& status,
                                       int limit, const std::string& cursor) const {
  if (absl::Status s = CheckLimit(limit); !s.ok()) {
    return s;
  }
  if (!status.empty() && !IsOrderStatus(status)) {
    return absl::InvalidArgumentError("status: unknown order status \"" + status + "\"");
  }
  storage::OrderQuery query;
  if (status == "overdue") {
    query.statuses = {"pending", "sent", "acknowledged"};
    query.created_before = options_.clock() - options_.overdue_after;
  } else {
    query.status = status;
  }
  query.limit = limit;
  query.cursor = cursor;
  if (!pms_patient_id.empty()) {
    absl::StatusOr<storage::StoredPatient> patient = store_.FindPatientByPmsId(pms_patient_id);
    if (absl::IsNotFound(patient.status())) {
      return OrderList{};
    }
    if (!patient.ok()) {
      return patient.status();
    }
    query.patient_id = patient->id;
  }
  absl::StatusOr<storage::OrderPage> page = store_.ListOrders(query);
  if (!page.ok()) {
    return page.status();
  }
  OrderList out;
  out.next_cursor = std::move(page->next_cursor);
  for (storage::StoredOrder& order : page->orders) {
    absl::StatusOr<OrderView> view = View(std::move(order));
    if (!view.ok()) {
      return view.status();
    }
    out.orders.push_back(*std::move(view));
  }
  return out;
}

absl::StatusOr<OrderView> Orders::Cancel(std::int64_t id) {
  absl::StatusOr<OrderView> order = Get(id);
  if (!order.ok()) {
    return order.status();
  }
  if (IsFinal(order->order.status)) {
    return absl::FailedPreconditionError("order " + std::to_string(id) + " is already " +
                                         order->order.status);
  }
  const absl::Time now = options_.clock();
  absl::StatusOr<std::string> message =
      BuildCancelMessage(order->order, order->pms_patient_id, options_, control_ids_.Next(), now);
  if (!message.ok()) {
    return message.status();
  }
  absl::StatusOr<storage::OrderCancellation> cancelled =
      store_.CancelOrder(id, now, *message, kUnroutedEndpoint);
  if (!cancelled.ok()) {
    return cancelled.status();
  }
  if (cancelled->cancel_message_queued && options_.on_outbox_change) {
    options_.on_outbox_change();
  }
  return Get(id);
}

absl::StatusOr<std::string> BuildCancelMessage(const storage::StoredOrder& order,
                                               const std::string& pms_patient_id,
                                               const OrdersOptions& options,
                                               const std::string& control_id, absl::Time now) {
  fhir_to_v2::OrderRequest request;
  request.patient_id = pms_patient_id;
  if (order.encounter_id.has_value()) {
    request.encounter_id = std::to_string(*order.encounter_id);
  }
  for (const std::string& code : order.test_codes) {
    fhir_to_v2::TestCode test;
    test.code = code;
    test.system = "L";
    request.test_codes.push_back(std::move(test));
  }
  request.ordering_provider.family_name = order.ordering_provider;
  request.priority = order.priority.empty() ? "R" : order.priority;
  request.placer_order_number = order.placer_order_number;
  request.order_control = "CA";
  fhir_to_v2::OrmOptions orm;
  orm.sending_application = options.sending_application;
  orm.sending_facility = options.sending_facility;
  orm.patient_authority = options.sending_facility;
  orm.placer_namespace = options.sending_facility;
  orm.control_id = control_id;
  orm.timestamp = now;
  return fhir_to_v2::BuildOrm(request, orm);
}

}  // namespace bridge::api::service
