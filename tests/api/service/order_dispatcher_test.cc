// tests/api/service/order_dispatcher_test.cc
//
// OrderDispatcher against scripted laboratories (real sockets on loopback)
// and the real Store on SQLite and PostgreSQL: retries with backoff, give-up,
// rejection, late and stray ACKs, dropped connections, placement order,
// cancel, routing, reload, enhanced mode, overdue orders, two dispatchers.
#include "api/service/order_dispatcher.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

#include "api/service/lis_endpoints.h"
#include "api/service/orders.h"
#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/hl7/message.h"
#include "storage/store.h"
#include "tests/api/service/scripted_lis.h"
#include "tests/storage/store_fixture.h"

namespace bridge::api::service {
namespace {

using bridge::testing::LisAck;
using bridge::testing::LisAction;
using bridge::testing::LisMessage;
using bridge::testing::ScriptedLis;
using bridge::testing::WaitUntil;
using storage::testing::Backend;

constexpr absl::Duration kWait = absl::Seconds(20);

LisEndpoint Endpoint(const std::string& id, std::uint16_t port) {
  LisEndpoint e;
  e.id = id;
  e.host = "127.0.0.1";
  e.port = port;
  e.receiving_application = "LAB_LIS";
  e.receiving_facility = "REFERENCE_LAB";
  e.is_default = true;
  e.connect_timeout = std::chrono::seconds(2);
  e.ack_timeout = std::chrono::milliseconds(800);
  e.max_attempts = 3;
  e.backoff_initial = std::chrono::milliseconds(200);
  e.backoff_max = std::chrono::milliseconds(1000);
  return e;
}

LisEndpoints One(LisEndpoint e) {
  LisEndpoints endpoints;
  endpoints.endpoints.push_back(std::move(e));
  return endpoints;
}

// The segments of an ER7 message whose id is `segment`.
std::vector<std::vector<std::string>> Segments(const std::string& er7, const std::string& segment) {
  std::vector<std::vector<std::string>> out;
  for (absl::string_view line : absl::StrSplit(er7, '\r', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, '|');
    if (fields[0] == segment) {
      out.push_back(fields);
    }
  }
  return out;
}

class OrderDispatcherTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
  }

  void TearDown() override {
    if (dispatcher_) {
      dispatcher_->Stop();
    }
  }

  void StartDispatcher(LisEndpoints endpoints) {
    OrderDispatcherOptions options;
    options.poll_interval = absl::Milliseconds(50);
    absl::StatusOr<std::unique_ptr<OrderDispatcher>> made =
        OrderDispatcher::Create(*store_, std::move(endpoints), options);
    ASSERT_TRUE(made.ok()) << made.status();
    dispatcher_ = *std::move(made);
    OrdersOptions orders;
    orders.lis_endpoint = kUnroutedEndpoint;
    orders.route = [d = dispatcher_.get()](const std::vector<std::string>& codes) {
      return d->Route(codes);
    };
    orders.on_outbox_change = [d = dispatcher_.get()] { d->Wake(); };
    orders_ = std::make_unique<Orders>(*store_, orders);
    dispatcher_->Start();
  }

  std::int64_t Place(std::vector<std::string> codes = {"CBC"}, const std::string& patient = "42") {
    OrderInput input;
    input.pms_patient_id = patient;
    input.test_codes = std::move(codes);
    input.ordering_provider = "Smith";
    input.priority = "S";
    absl::StatusOr<OrderView> order = orders_->Create(input);
    EXPECT_TRUE(order.ok()) << order.status();
    return order.ok() ? order->order.id : 0;
  }

  storage::StoredOrder Order(std::int64_t id) {
    absl::StatusOr<storage::StoredOrder> order = store_->GetOrder(id);
    EXPECT_TRUE(order.ok()) << order.status();
    return order.ok() ? *order : storage::StoredOrder{};
  }

  bool WaitForStatus(std::int64_t id, const std::string& status) {
    return WaitUntil([&] { return Order(id).status == status; }, kWait);
  }

  // Every outbound audit row, oldest first.
  std::vector<storage::StoredMessage> Outbound() {
    std::vector<storage::StoredMessage> out;
    storage::MessageQuery query;
    query.limit = 1000;
    absl::StatusOr<storage::MessagePage> page = store_->ListMessages(query);
    EXPECT_TRUE(page.ok()) << page.status();
    for (storage::StoredMessage& m : page->messages) {
      if (m.direction == "outbound") {
        out.push_back(std::move(m));
      }
    }
    return out;
  }

  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<OrderDispatcher> dispatcher_;
  std::unique_ptr<Orders> orders_;
};

TEST_P(OrderDispatcherTest, AcceptedOrderIsSentWithItsAuditRow) {
  ScriptedLis lis(bridge::testing::AlwaysAccept());
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place({"CBC", "BMP"});
  ASSERT_TRUE(WaitForStatus(id, "sent"));
  const storage::StoredOrder order = Order(id);
  EXPECT_EQ(order.attempts, 1);
  EXPECT_TRUE(order.sent_at.has_value());
  EXPECT_EQ(order.lis_endpoint, "lab");

  ASSERT_EQ(lis.messages().size(), 1u);
  const std::string orm = lis.messages()[0].payload;
  EXPECT_EQ(Segments(orm, "MSH")[0][4], "LAB_LIS");  // MSH-5: the endpoint's receiver
  EXPECT_EQ(Segments(orm, "MSH")[0][5], "REFERENCE_LAB");
  EXPECT_EQ(Segments(orm, "MSH")[0][8], "ORM^O01^ORM_O01");
  EXPECT_EQ(Segments(orm, "PID")[0][3], "42^^^MPS_PMS^MR");
  ASSERT_EQ(Segments(orm, "ORC").size(), 2u);
  ASSERT_EQ(Segments(orm, "OBR").size(), 2u);
  EXPECT_EQ(Segments(orm, "ORC")[0][1], "NW");
  EXPECT_EQ(Segments(orm, "OBR")[0][2], order.placer_order_number + "-1^MPS_PMS");
  EXPECT_EQ(Segments(orm, "OBR")[1][4].substr(0, 4), "BMP^");

  const std::vector<storage::StoredMessage> outbound = Outbound();
  ASSERT_EQ(outbound.size(), 1u);
  EXPECT_EQ(outbound[0].message.message_type, "ORM");
  EXPECT_EQ(outbound[0].message.ack_status, "AA");
  EXPECT_EQ(outbound[0].message.raw_message, orm);
  EXPECT_EQ(outbound[0].message.message_control_id, lis.messages()[0].control_id);
  EXPECT_EQ(order.hl7_message_id, outbound[0].id);
  EXPECT_EQ(dispatcher_->counters()["lab"].accepted, 1);
}

TEST_P(OrderDispatcherTest, ApplicationErrorTwiceThenAcceptedAfterThreeAttemptsWithBackoff) {
  ScriptedLis lis([](const LisMessage& m) {
    return LisAction::Reply({LisAck(m.index < 2 ? "AE" : "AA", m.control_id)});
  });
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place();
  ASSERT_TRUE(WaitForStatus(id, "sent"));
  EXPECT_EQ(Order(id).attempts, 3);
  const std::vector<LisMessage> got = lis.messages();
  ASSERT_EQ(got.size(), 3u);
  // The same message each time (the LIS can drop duplicates by MSH-10).
  EXPECT_EQ(got[1].control_id, got[0].control_id);
  EXPECT_EQ(got[2].payload, got[0].payload);
  // Exponential backoff with jitter in [d/2, d]: d = 200 ms, then 400 ms.
  EXPECT_GE(got[1].received_at - got[0].received_at, absl::Milliseconds(100));
  EXPECT_GE(got[2].received_at - got[1].received_at, absl::Milliseconds(200));
  const std::vector<storage::StoredMessage> outbound = Outbound();
  ASSERT_EQ(outbound.size(), 3u);
  EXPECT_EQ(outbound[0].message.ack_status, "AE");
  EXPECT_EQ(outbound[2].message.ack_status, "AA");
  EXPECT_EQ(dispatcher_->counters()["lab"].retries, 2);
}

TEST_P(OrderDispatcherTest, SilentLisRetriesThenFails) {
  ScriptedLis lis([](const LisMessage&) { return LisAction::Silence(); });
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place();
  ASSERT_TRUE(WaitForStatus(id, "failed"));
  const storage::StoredOrder order = Order(id);
  EXPECT_EQ(order.attempts, 3);
  EXPECT_NE(order.last_error.find("no ACK from LIS lab"), std::string::npos) << order.last_error;
  EXPECT_EQ(lis.messages().size(), 3u);
  EXPECT_EQ(dispatcher_->counters()["lab"].failed, 1);
  EXPECT_EQ(dispatcher_->counters()["lab"].timeouts, 3);
  EXPECT_NE(dispatcher_->MetricsText().find("labbridge_orders_failed_total{endpoint=\"lab\"} 1"),
            std::string::npos);
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(lis.messages().size(), 3u) << "no sends after giving up";
}

TEST_P(OrderDispatcherTest, RejectedOrderIsNotRetried) {
  ScriptedLis lis(
      [](const LisMessage& m) { return LisAction::Reply({LisAck("AR", m.control_id)}); });
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place();
  ASSERT_TRUE(WaitForStatus(id, "rejected"));
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(lis.messages().size(), 1u);
  EXPECT_EQ(Order(id).attempts, 1);
  EXPECT_NE(Order(id).last_error.find("rejected"), std::string::npos);
}

TEST_P(OrderDispatcherTest, LateAckForFirstOrderIsNotTakenForTheSecond) {
  // First order: no answer in time (given up after one attempt). Second
  // order: the LIS first sends the late AA for the first, then AR for the
  // second. A client that took the first reply would mark the second sent.
  ScriptedLis lis([](const LisMessage& m) {
    static std::string first;
    if (m.index == 0) {
      first = m.control_id;
      return LisAction::Silence();
    }
    return LisAction::Reply({LisAck("AA", first), LisAck("AR", m.control_id)});
  });
  LisEndpoint e = Endpoint("lab", lis.port());
  e.max_attempts = 1;
  StartDispatcher(One(e));
  const std::int64_t first = Place();
  const std::int64_t second = Place();
  ASSERT_TRUE(WaitForStatus(second, "rejected"));
  EXPECT_EQ(Order(first).status, "failed");
  EXPECT_EQ(dispatcher_->counters()["lab"].stray_acks, 1);
  // The late ACK is in the audit trail, marked as not taken.
  storage::MessageQuery query;
  query.limit = 100;
  absl::StatusOr<storage::MessagePage> page = store_->ListMessages(query);
  ASSERT_TRUE(page.ok());
  int strays = 0;
  for (const storage::StoredMessage& m : page->messages) {
    if (m.direction == "inbound" && m.message.message_type == "ACK") {
      ++strays;
      EXPECT_NE(m.message.error_detail.find("not taken"), std::string::npos);
      EXPECT_NE(m.message.raw_message.find("MSA|AA|" + lis.messages()[0].control_id),
                std::string::npos);
    }
  }
  EXPECT_EQ(strays, 1);
}

TEST_P(OrderDispatcherTest, DroppedConnectionResendsWithTheSameControlId) {
  ScriptedLis lis([](const LisMessage& m) {
    if (m.index == 0) {
      return LisAction::HangUp();  // read it, then hang up without an ACK
    }
    return LisAction::Reply({LisAck("AA", m.control_id)});
  });
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place();
  ASSERT_TRUE(WaitForStatus(id, "sent"));
  const std::vector<LisMessage> got = lis.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].control_id, got[1].control_id);
  EXPECT_EQ(got[0].payload, got[1].payload);
  EXPECT_NE(got[0].connection, got[1].connection);
  EXPECT_EQ(Order(id).attempts, 2);
  EXPECT_EQ(dispatcher_->counters()["lab"].connection_lost, 1);
}

TEST_P(OrderDispatcherTest, OrdersWaitForAnUnreachableLisAndLeaveInPlacementOrder) {
  std::uint16_t port = 0;
  {
    ScriptedLis probe(bridge::testing::AlwaysAccept());
    port = probe.port();  // free once closed
  }
  LisEndpoint e = Endpoint("lab", port);
  e.max_attempts = 1;  // an unreachable LIS must not use attempts up
  StartDispatcher(One(e));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(Place({"CBC"}, std::to_string(1000 + i)));
  }
  ASSERT_TRUE(WaitUntil([&] { return dispatcher_->counters()["lab"].unreachable >= 2; }, kWait));
  for (std::int64_t id : ids) {
    EXPECT_EQ(Order(id).status, "pending");
    EXPECT_EQ(Order(id).attempts, 0);
  }
  EXPECT_NE(Order(ids[0]).last_error.find("unreachable"), std::string::npos);
  ScriptedLis lis(bridge::testing::AlwaysAccept(), port);
  ASSERT_TRUE(lis.WaitForMessages(ids.size(), kWait));
  ASSERT_TRUE(WaitForStatus(ids.back(), "sent"));
  const std::vector<LisMessage> got = lis.messages();
  ASSERT_EQ(got.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(Segments(got[i].payload, "PID")[0][3], std::to_string(1000 + i) + "^^^MPS_PMS^MR")
        << "message " << i << " out of placement order";
    EXPECT_EQ(Order(ids[i]).status, "sent");
  }
}

TEST_P(OrderDispatcherTest, CancelOfSentOrderSendsOrcCa) {
  ScriptedLis lis(bridge::testing::AlwaysAccept());
  StartDispatcher(One(Endpoint("lab", lis.port())));
  const std::int64_t id = Place({"CBC", "BMP"});
  ASSERT_TRUE(WaitForStatus(id, "sent"));
  absl::StatusOr<OrderView> cancelled = orders_->Cancel(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->order.status, "cancelled");
  ASSERT_TRUE(lis.WaitForMessages(2, kWait));
  const std::string ca = lis.messages()[1].payload;
  ASSERT_EQ(Segments(ca, "ORC").size(), 2u);
  EXPECT_EQ(Segments(ca, "ORC")[0][1], "CA");
  EXPECT_EQ(Segments(ca, "ORC")[1][1], "CA");
  EXPECT_EQ(Segments(ca, "OBR")[0][2], Order(id).placer_order_number + "-1^MPS_PMS");
  EXPECT_EQ(Segments(ca, "MSH")[0][4], "LAB_LIS");
  EXPECT_NE(lis.messages()[1].control_id, lis.messages()[0].control_id);
  ASSERT_TRUE(WaitUntil([&] { return Outbound().size() == 2; }, kWait));
  EXPECT_EQ(Outbound()[1].message.ack_status, "AA");
  EXPECT_EQ(Order(id).status, "cancelled");
  EXPECT_FALSE(orders_->Cancel(id).ok()) << "cancelling twice";
}

TEST_P(OrderDispatcherTest, CancelOfUnsentOrderSendsNothing) {
  StartDispatcher(LisEndpoints{});  // no LIS: the order waits
  const std::int64_t id = Place();
  absl::StatusOr<OrderView> cancelled = orders_->Cancel(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->order.status, "cancelled");
  ScriptedLis lis(bridge::testing::AlwaysAccept());
  ASSERT_TRUE(dispatcher_->Reload(One(Endpoint("lab", lis.port()))).ok());
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_TRUE(lis.messages().empty()) << "neither the order nor a cancel goes out";
  EXPECT_EQ(Order(id).status, "cancelled");
}

TEST_P(OrderDispatcherTest, WithoutEndpointOrdersStayPendingUntilReload) {
  StartDispatcher(LisEndpoints{});
  const std::int64_t id = Place();
  ASSERT_TRUE(WaitUntil([&] { return !Order(id).last_error.empty(); }, kWait));
  EXPECT_EQ(Order(id).status, "pending");
  EXPECT_NE(Order(id).last_error.find("no LIS endpoint is configured"), std::string::npos);
  ScriptedLis lis(bridge::testing::AlwaysAccept());
  ASSERT_TRUE(dispatcher_->Reload(One(Endpoint("lab", lis.port()))).ok());
  ASSERT_TRUE(WaitForStatus(id, "sent"));
  EXPECT_EQ(lis.messages().size(), 1u);
  EXPECT_EQ(Order(id).lis_endpoint, "lab");
}

TEST_P(OrderDispatcherTest, RoutesByTestCodeAndRefusesMixedOrders) {
  ScriptedLis chemistry(bridge::testing::AlwaysAccept());
  ScriptedLis hematology(bridge::testing::AlwaysAccept());
  LisEndpoints endpoints;
  LisEndpoint a = Endpoint("chemistry", chemistry.port());
  a.is_default = true;
  LisEndpoint b = Endpoint("hematology", hematology.port());
  b.is_default = false;
  b.test_codes = {"CBC"};
  b.receiving_application = "HEME";
  b.flavor = fhir_to_v2::OrmOptions::Flavor::kOmlO21;
  b.test_code_map = {{"CBC", "HEM-CBC"}};
  b.coding_system = "99HEM";
  endpoints.endpoints = {a, b};
  StartDispatcher(endpoints);
  const std::int64_t cbc = Place({"CBC"});
  const std::int64_t bmp = Place({"BMP"});
  ASSERT_TRUE(WaitForStatus(cbc, "sent"));
  ASSERT_TRUE(WaitForStatus(bmp, "sent"));
  ASSERT_EQ(hematology.messages().size(), 1u);
  ASSERT_EQ(chemistry.messages().size(), 1u);
  const std::string oml = hematology.messages()[0].payload;
  EXPECT_EQ(Segments(oml, "MSH")[0][8], "OML^O21^OML_O21");
  EXPECT_EQ(Segments(oml, "MSH")[0][4], "HEME");
  EXPECT_EQ(Segments(oml, "OBR")[0][4].substr(0, 8), "HEM-CBC^");
  EXPECT_NE(Segments(oml, "OBR")[0][4].find("^99HEM"), std::string::npos);

  OrderInput mixed;
  mixed.pms_patient_id = "42";
  mixed.test_codes = {"CBC", "BMP"};
  absl::StatusOr<OrderView> refused = orders_->Create(mixed);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status()));
  EXPECT_NE(refused.status().message().find("one order per laboratory"), absl::string_view::npos);
}

TEST_P(OrderDispatcherTest, EnhancedModeCommitThenApplicationAck) {
  // Commit accept at once; the application ACK follows on the connection.
  ScriptedLis lis([](const LisMessage& m) {
    return LisAction::Reply({LisAck("CA", m.control_id), LisAck("AA", m.control_id)});
  });
  LisEndpoint e = Endpoint("lab", lis.port());
  e.enhanced_ack = true;
  StartDispatcher(One(e));
  const std::int64_t first = Place();
  // Sent on the commit ACK, acknowledged on the application ACK that came
  // right behind it (read off the connection, no further order needed).
  ASSERT_TRUE(WaitForStatus(first, "acknowledged"));
  EXPECT_TRUE(Order(first).sent_at.has_value());
  EXPECT_TRUE(Order(first).acknowledged_at.has_value());
  EXPECT_EQ(Outbound()[0].message.ack_status, "CA");
  // A second order on the same connection is not confused by the first's ACKs.
  const std::int64_t second = Place();
  ASSERT_TRUE(WaitForStatus(second, "acknowledged"));
}

TEST_P(OrderDispatcherTest, EnhancedModeApplicationAckOnAnIdleConnection) {
  // The application ACK comes a moment after the commit ACK and no other
  // order follows: it must still be read off the idle connection.
  ScriptedLis lis(
      [](const LisMessage& m) { return LisAction::Reply({LisAck("CA", m.control_id)}); });
  LisEndpoint e = Endpoint("lab", lis.port());
  e.enhanced_ack = true;
  StartDispatcher(One(e));
  const std::int64_t order = Place();
  ASSERT_TRUE(WaitForStatus(order, "sent"));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Order(order).status, "sent");
  ASSERT_TRUE(lis.SendToLastConnection(LisAck("AA", lis.messages().at(0).control_id)));
  ASSERT_TRUE(WaitForStatus(order, "acknowledged"));
  EXPECT_TRUE(Order(order).acknowledged_at.has_value());
}

TEST_P(OrderDispatcherTest, TwoDispatchersOnOneDatabaseSendEachOrderOnce) {
  ScriptedLis lis(bridge::testing::AlwaysAccept());
  StartDispatcher(One(Endpoint("lab", lis.port())));
  std::unique_ptr<storage::Store> second_store = OpenTestStore();
  OrderDispatcherOptions options;
  options.poll_interval = absl::Milliseconds(10);
  absl::StatusOr<std::unique_ptr<OrderDispatcher>> second =
      OrderDispatcher::Create(*second_store, One(Endpoint("lab", lis.port())), options);
  ASSERT_TRUE(second.ok());
  (*second)->Start();
  constexpr int kOrders = 150;
  for (int i = 0; i < kOrders; ++i) {
    Place({"CBC"}, std::to_string(i));
  }
  ASSERT_TRUE(lis.WaitForMessages(kOrders, absl::Seconds(60)));
  absl::SleepFor(absl::Milliseconds(500));
  (*second)->Stop();
  std::set<std::string> ids;
  for (const LisMessage& m : lis.messages()) {
    EXPECT_TRUE(ids.insert(m.control_id).second) << "sent twice: " << m.control_id;
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kOrders));
  const std::int64_t by_second = (*second)->counters()["lab"].accepted;
  EXPECT_EQ(dispatcher_->counters()["lab"].accepted + by_second, kOrders);
}

TEST_P(OrderDispatcherTest, OverdueListsOrdersWithoutResultsPastTheLimit) {
  absl::Time now = absl::FromUnixSeconds(1800000000);
  OrdersOptions options;
  options.lis_endpoint = kUnroutedEndpoint;
  options.overdue_after = absl::Hours(24);
  options.clock = [&now] { return now; };
  Orders orders(*store_, options);
  OrderInput input;
  input.pms_patient_id = "7";
  input.test_codes = {"CBC"};
  absl::StatusOr<OrderView> old_order = orders.Create(input);
  ASSERT_TRUE(old_order.ok());
  absl::StatusOr<OrderView> resulted = orders.Create(input);
  ASSERT_TRUE(resulted.ok());
  absl::StatusOr<OrderView> cancelled = orders.Create(input);
  ASSERT_TRUE(cancelled.ok());
  ASSERT_TRUE(store_->UpdateOrderStatus(old_order->order.id, "sent", absl::Now()).ok());
  ASSERT_TRUE(store_->UpdateOrderStatus(resulted->order.id, "resulted", absl::Now()).ok());
  ASSERT_TRUE(orders.Cancel(cancelled->order.id).ok());
  // created_at comes from the store's clock (real time): look from 25 h later.
  now = absl::Now() + absl::Hours(25);
  absl::StatusOr<OrderList> overdue = orders.List("", "overdue", 100, "");
  ASSERT_TRUE(overdue.ok()) << overdue.status();
  ASSERT_EQ(overdue->orders.size(), 1u);
  EXPECT_EQ(overdue->orders[0].order.id, old_order->order.id);
  now = absl::Now() + absl::Hours(23);
  overdue = orders.List("", "overdue", 100, "");
  ASSERT_TRUE(overdue.ok());
  EXPECT_TRUE(overdue->orders.empty());
  EXPECT_TRUE(IsOrderStatus("overdue"));
}

TEST_P(OrderDispatcherTest, EndpointClaimsHoldBehindTheOldestRow) {
  // The store's side of placement order: nothing behind a leased or waiting row.
  OrdersOptions options;
  options.lis_endpoint = "lab";
  Orders orders(*store_, options);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    OrderInput input;
    input.pms_patient_id = std::to_string(i);
    input.test_codes = {"CBC"};
    absl::StatusOr<OrderView> order = orders.Create(input);
    ASSERT_TRUE(order.ok()) << order.status();
    ids.push_back(order->order.id);
  }
  auto claim = [&](const std::string& who, int max_rows) {
    absl::StatusOr<std::vector<storage::OutboxItem>> items =
        store_->ClaimEndpointOutbox(who, "lab", absl::Minutes(1), max_rows, /*in_order=*/true);
    EXPECT_TRUE(items.ok()) << items.status();
    return items.ok() ? *items : std::vector<storage::OutboxItem>{};
  };
  std::vector<storage::OutboxItem> a = claim("a", 1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].order_id, ids[0]);
  EXPECT_TRUE(claim("b", 10).empty()) << "b skipped past a's lease";
  EXPECT_TRUE(store_->ClaimEndpointOutbox("b", "other", absl::Minutes(1), 10, true)->empty());

  storage::OutboxSettlement retry;
  retry.outcome = storage::OutboxSettlement::Outcome::kRetry;
  retry.next_attempt_at = absl::Now() + absl::Hours(1);
  retry.error = "LIS lab answered AE";
  ASSERT_TRUE(store_->SettleOutbox(a[0].id, "a", retry).ok());
  EXPECT_TRUE(claim("b", 10).empty()) << "rows behind a waiting row were claimed";
  EXPECT_EQ(Order(ids[0]).attempts, 1);
  EXPECT_EQ(Order(ids[0]).last_error, "LIS lab answered AE");
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->SettleOutbox(a[0].id, "a", retry)));

  // Not in order (routing): any due row.
  absl::StatusOr<std::vector<storage::OutboxItem>> any =
      store_->ClaimEndpointOutbox("b", "lab", absl::Minutes(1), 10, /*in_order=*/false);
  ASSERT_TRUE(any.ok());
  ASSERT_EQ(any->size(), 2u);
  EXPECT_EQ((*any)[0].order_id, ids[1]);
  for (const storage::OutboxItem& item : *any) {
    storage::OutboxSettlement release;
    release.outcome = storage::OutboxSettlement::Outcome::kRelease;
    release.next_attempt_at = item.next_attempt_at;
    ASSERT_TRUE(store_->SettleOutbox(item.id, "b", release).ok());
  }
  EXPECT_EQ(Order(ids[1]).attempts, 0) << "a release is not an attempt";

  // A configuration without "lab" sends its rows back to routing, due now.
  absl::StatusOr<std::int64_t> moved = store_->RerouteOutbox({"elsewhere"}, kUnroutedEndpoint);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(*moved, 3);
  absl::StatusOr<std::vector<storage::OutboxItem>> unrouted =
      store_->ClaimEndpointOutbox("c", kUnroutedEndpoint, absl::Minutes(1), 10, /*in_order=*/true);
  ASSERT_TRUE(unrouted.ok());
  EXPECT_EQ(unrouted->size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Backends, OrderDispatcherTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return storage::testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace bridge::api::service
