// tests/api/http/rest_api_test.cc
//
// The guide's REST paths over the real HttpServer, RestApi, services and
// Store (SQLite and PostgreSQL), through a real HTTP client on loopback.
#include "api/http/rest_api.h"

#include <rapidjson/document.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/http/fhir_api.h"
#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "storage/store.h"
#include "tests/api/http/http_test_client.h"
#include "tests/storage/store_fixture.h"
#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

using storage::testing::Backend;
using testing::Fetch;
using testing::HttpResult;
using testing::HttpTestClient;

// The guide's Part D Step 1 ORU^R01 (MSG001, patient 12345^^^MPS_PMS^MR,
// five OBX, potassium 6.8 HH) as the inbound pipeline stores it.
storage::IngestRecord GuideSampleOru() {
  storage::IngestRecord record;
  record.message.message_type = "ORU";
  record.message.trigger_event = "R01";
  record.message.message_control_id = "MSG001";
  record.message.sending_application = "LAB_LIS";
  record.message.sending_facility = "REFERENCE_LAB";
  record.message.receiving_application = "PMS_LAB";
  record.message.receiving_facility = "MPS_PMS";
  record.message.version = "2.5.1";
  record.message.raw_message = "MSH|^~\\&|LAB_LIS|REFERENCE_LAB|...";
  record.message.ack_status = "AA";
  record.patient = storage::PatientRecord{"12345", "", "Doe", "Jane", "19900315", "F"};
  struct Row {
    const char* code;
    const char* name;
    const char* value;
    const char* units;
    const char* range;
    const char* flag;
  };
  const Row rows[] = {{"WBC", "White Blood Cell Count", "7.5", "10*3/uL", "4.5-11.0", "N"},
                      {"RBC", "Red Blood Cell Count", "4.8", "10*6/uL", "4.0-5.5", "N"},
                      {"HGB", "Hemoglobin", "14.2", "g/dL", "12.0-16.0", "N"},
                      {"PLT", "Platelet Count", "250", "10*3/uL", "150-400", "N"},
                      {"K", "Potassium", "6.8", "mEq/L", "3.5-5.0", "HH"}};
  for (const Row& row : rows) {
    storage::ResultRecord r;
    r.test_code = row.code;
    r.test_name = row.name;
    r.value = row.value;
    r.value_type = "NM";
    r.units = row.units;
    r.reference_range = row.range;
    r.abnormal_flag = row.flag;
    r.result_status = "F";
    r.sending_facility = "REFERENCE_LAB";
    r.filler_order_number = "FIL001";
    r.placer_order_number = "ORD001";
    r.observation_date = absl::FromUnixSeconds(1771671600);  // 2026-02-21T11:00:00Z
    r.critical = std::string(row.flag) == "HH";
    record.results.push_back(r);
  }
  return record;
}

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text;
  return doc;
}

// "<url>; rel=\"next\"" -> url.
std::string NextLink(const HttpResult& r) {
  const std::string link = r.Header("link");
  const std::size_t open = link.find('<');
  const std::size_t close = link.find('>');
  if (open == std::string::npos || close == std::string::npos) {
    return "";
  }
  return link.substr(open + 1, close - open - 1);
}

class RestApiTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
    ASSERT_NE(store_, nullptr);
    StartServer({});
  }

  void StartServer(ApisOptions options, Config config = {}) {
    if (apis_) {
      apis_->Stop();
    }
    apis_.reset();
    config.http_listen_host = "127.0.0.1";
    config.http_port = 0;
    config.grpc_port = 0;
    config.api_worker_threads = 2;
    config.api_tokens_file = (dir_.path() / "tokens.json").string();
    config.access_audit_file = (dir_.path() / "access.jsonl").string();
    absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store_, nullptr, options);
    ASSERT_TRUE(apis.ok()) << apis.status();
    apis_ = *std::move(apis);
    port_ = apis_->http_port();
    if (admin_.empty()) {
      // The first start with no token created an admin token.
      admin_ = apis_->initial_admin_token();
      ASSERT_FALSE(admin_.empty());
      absl::StatusOr<std::string> reader = apis_->tokens().Create(
          "reader", static_cast<std::uint32_t>(service::Role::kResultsRead), absl::Now());
      ASSERT_TRUE(reader.ok()) << reader.status();
      reader_ = *reader;
      // Holds none of the read roles: every read path must refuse it.
      absl::StatusOr<std::string> writer = apis_->tokens().Create(
          "writer", static_cast<std::uint32_t>(service::Role::kOrdersWrite), absl::Now());
      ASSERT_TRUE(writer.ok()) << writer.status();
      writer_ = *writer;
    }
  }

  void TearDown() override {
    if (apis_) {
      apis_->Stop();
    }
  }

  void StoreGuideOru() {
    absl::StatusOr<storage::IngestOutcome> outcome = store_->Ingest(GuideSampleOru());
    ASSERT_TRUE(outcome.ok()) << outcome.status();
  }

  HttpResult Get(const std::string& target) { return Fetch(port_, "GET", target, admin_); }
  HttpResult Post(const std::string& target, const std::string& body) {
    return Fetch(port_, "POST", target, admin_, body);
  }

  bridge::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Apis> apis_;
  std::uint16_t port_ = 0;
  std::string admin_;
  std::string reader_;
  std::string writer_;  // orders:write only
};

// Part D Step 2: five results including K with flag HH; the critical feed
// holds the potassium 6.8 mEq/L HH result.
TEST_P(RestApiTest, GuidePartDStep2ResultsAndCriticalFeed) {
  StoreGuideOru();
  HttpResult r = Get("/api/lab-results?patient_id=12345");
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  rapidjson::Document doc = ParseJson(r.body);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.Size(), 5u);
  std::set<std::string> codes;
  for (const auto& row : doc.GetArray()) {
    codes.insert(row["test_code"].GetString());
    EXPECT_EQ(row["patient_id"].GetInt64(), 12345);
    if (std::string(row["test_code"].GetString()) == "K") {
      EXPECT_STREQ(row["test_name"].GetString(), "Potassium");
      EXPECT_STREQ(row["abnormal_flag"].GetString(), "HH");
      EXPECT_STREQ(row["value"].GetString(), "6.8");
      EXPECT_TRUE(row["critical"].GetBool());
    }
  }
  EXPECT_EQ(codes, (std::set<std::string>{"WBC", "RBC", "HGB", "PLT", "K"}));

  r = Get("/api/lab-results/critical");
  ASSERT_EQ(r.status, 200) << r.body;
  doc = ParseJson(r.body);
  ASSERT_EQ(doc.Size(), 1u);
  EXPECT_STREQ(doc[0]["test_code"].GetString(), "K");
  EXPECT_STREQ(doc[0]["value"].GetString(), "6.8");
  EXPECT_STREQ(doc[0]["units"].GetString(), "mEq/L");
  EXPECT_STREQ(doc[0]["abnormal_flag"].GetString(), "HH");
  EXPECT_FALSE(doc[0]["acknowledged"].GetBool());

  // abnormal_only keeps only K (the N flags are normal).
  r = Get("/api/lab-results?patient_id=12345&abnormal_only=true");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(ParseJson(r.body).Size(), 1u);
  // An unknown patient is an empty list, not an error.
  r = Get("/api/lab-results?patient_id=99999");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
}

TEST_P(RestApiTest, ResultPagesFollowTheLinkHeaderWithoutGapsOrRepeats) {
  StoreGuideOru();
  std::string target = "/api/lab-results?patient_id=12345&limit=2";
  std::set<std::int64_t> seen;
  int pages = 0;
  while (!target.empty()) {
    HttpResult r = Get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    rapidjson::Document doc = ParseJson(r.body);
    EXPECT_LE(doc.Size(), 2u);
    for (const auto& row : doc.GetArray()) {
      const std::int64_t id = row["id"].GetInt64();
      EXPECT_TRUE(seen.insert(id).second) << "repeated " << id;
    }
    target = NextLink(r);
    if (!target.empty()) {
      EXPECT_NE(target.find("patient_id=12345"), std::string::npos);
    }
    ASSERT_LT(++pages, 10);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(pages, 3);
}

// Every list pages the same way: the Link header's URL, filters kept.
TEST_P(RestApiTest, OrderAndCriticalPagesFollowTheLinkHeader) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Post("/api/lab-orders",
                   R"({"patient_id": 4242, "test_codes": ["CBC"], "ordering_provider": "X"})")
                  .status,
              201);
  }
  ASSERT_EQ(Post("/api/lab-orders",
                 R"({"patient_id": 1, "test_codes": ["CBC"], "ordering_provider": "X"})")
                .status,
            201);
  for (int i = 0; i < 3; ++i) {
    storage::IngestRecord record = GuideSampleOru();
    record.message.message_control_id = "PAGE" + std::to_string(i);
    record.message.raw_message += std::to_string(i);
    ASSERT_TRUE(store_->Ingest(record).ok());
  }
  const auto follow = [&](std::string target, const std::string& kept) {
    std::vector<std::int64_t> ids;
    std::set<std::int64_t> seen;
    int pages = 0;
    while (!target.empty() && pages < 10) {
      HttpResult r = Get(target);
      EXPECT_EQ(r.status, 200) << target << ": " << r.body;
      rapidjson::Document doc = ParseJson(r.body);
      EXPECT_LE(doc.Size(), 2u);
      for (const auto& row : doc.GetArray()) {
        EXPECT_TRUE(seen.insert(row["id"].GetInt64()).second) << "repeated on " << target;
        ids.push_back(row["id"].GetInt64());
      }
      target = NextLink(r);
      if (!target.empty()) {
        EXPECT_NE(target.find(kept), std::string::npos) << target;
      }
      ++pages;
    }
    return std::make_pair(ids, pages);
  };
  auto [orders, order_pages] = follow("/api/lab-orders?patient_id=4242&limit=2", "patient_id=4242");
  EXPECT_EQ(orders.size(), 5u);
  EXPECT_EQ(order_pages, 3);
  auto [criticals, critical_pages] =
      follow("/api/lab-results/critical?acknowledged=false&limit=2", "acknowledged=false");
  EXPECT_EQ(criticals.size(), 3u);
  EXPECT_EQ(critical_pages, 2);
  // The last page has no Link header at all.
  EXPECT_EQ(Get("/api/lab-orders?patient_id=1&limit=2").Header("link"), "");
}

TEST_P(RestApiTest, AcknowledgeClosesTheCriticalAlertOnce) {
  StoreGuideOru();
  rapidjson::Document critical = ParseJson(Get("/api/lab-results/critical").body);
  ASSERT_EQ(critical.Size(), 1u);
  const std::int64_t id = critical[0]["id"].GetInt64();
  const std::string path = "/api/lab-results/" + std::to_string(id) + "/acknowledge";

  HttpResult one = Get("/api/lab-results/" + std::to_string(id));
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_STREQ(ParseJson(one.body)["test_code"].GetString(), "K");
  EXPECT_EQ(ParseJson(one.body)["patient_id"].GetInt64(), 12345);
  EXPECT_EQ(Get("/api/lab-results/987654").status, 404);

  HttpResult r = Post(path, R"({"acknowledged_by": "Dr. Smith", "note": "called patient"})");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc = ParseJson(r.body);
  EXPECT_STREQ(doc["acknowledged_by"].GetString(), "Dr. Smith");

  EXPECT_EQ(Get("/api/lab-results/critical").body, "[]");
  doc = ParseJson(Get("/api/lab-results/critical?acknowledged=true").body);
  ASSERT_EQ(doc.Size(), 1u);
  EXPECT_STREQ(doc[0]["acknowledged_by"].GetString(), "Dr. Smith");
  EXPECT_STREQ(doc[0]["acknowledgement_note"].GetString(), "called patient");

  r = Post(path, "");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
  r = Post("/api/lab-results/999999/acknowledge", "");
  EXPECT_EQ(r.status, 404) << r.body;
  r = Post("/api/lab-results/abc/acknowledge", "");
  EXPECT_EQ(r.status, 422) << r.body;
}

// Part B Step 4 / Part D Step 4: the order is stored pending with its outbox
// row; read back, listed by patient and status, cancelled once.
TEST_P(RestApiTest, OrderLifecycle) {
  HttpResult r = Post("/api/lab-orders", R"({
    "patient_id": 1, "encounter_id": 1, "test_codes": ["CBC", "BMP"],
    "ordering_provider": "Dr. Smith", "priority": "R"})");
  ASSERT_EQ(r.status, 201) << r.body;
  rapidjson::Document order = ParseJson(r.body);
  const std::int64_t id = order["id"].GetInt64();
  EXPECT_EQ(order["patient_id"].GetInt64(), 1);
  EXPECT_STREQ(order["status"].GetString(), "pending");
  ASSERT_EQ(order["test_codes"].Size(), 2u);
  EXPECT_STREQ(order["test_codes"][1].GetString(), "BMP");
  EXPECT_TRUE(order["created_at"].IsString());
  EXPECT_EQ(order["encounter_id"].GetInt64(), 1);
  EXPECT_EQ(r.Header("location"), "/api/lab-orders/" + std::to_string(id));

  // The outbox row holds an ORM^O01 for the dispatcher.
  absl::StatusOr<std::vector<storage::OutboxItem>> claimed =
      store_->ClaimOutbox("test", absl::Minutes(1), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_NE((*claimed)[0].payload.find("ORM^O01"), std::string::npos);
  EXPECT_NE((*claimed)[0].payload.find("1^^^MPS_PMS^MR"), std::string::npos);

  r = Get("/api/lab-orders/" + std::to_string(id));
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document got = ParseJson(r.body);
  EXPECT_STREQ(got["ordering_provider"].GetString(), "Dr. Smith");
  EXPECT_TRUE(got["results"].IsArray());

  r = Get("/api/lab-orders?patient_id=1&status=pending");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ParseJson(r.body).Size(), 1u);
  EXPECT_EQ(Get("/api/lab-orders?patient_id=2").body, "[]");
  EXPECT_EQ(Get("/api/lab-orders?status=sent").body, "[]");
  EXPECT_EQ(Get("/api/lab-orders?status=bogus").status, 422);

  r = Post("/api/lab-orders/" + std::to_string(id) + "/cancel", "");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(ParseJson(r.body)["status"].GetString(), "cancelled");
  r = Post("/api/lab-orders/" + std::to_string(id) + "/cancel", "");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(Get("/api/lab-orders/999999").status, 404);
  EXPECT_EQ(Post("/api/lab-orders/999999/cancel", "").status, 404);
}

TEST_P(RestApiTest, BadOrderBodiesAre422NamingTheField) {
  struct Case {
    const char* body;
    const char* field;
  };
  const Case cases[] = {
      {R"({"test_codes": ["CBC"], "ordering_provider": "Dr. Smith"})", "patient_id"},
      {R"({"patient_id": 1, "ordering_provider": "Dr. Smith"})", "test_codes"},
      {R"({"patient_id": 1, "test_codes": [], "ordering_provider": "Dr. Smith"})", "test_codes"},
      {R"({"patient_id": 1, "test_codes": [7], "ordering_provider": "Dr. Smith"})", "test_codes"},
      {R"({"patient_id": 1, "test_codes": ["CBC"]})", "ordering_provider"},
      {R"({"patient_id": 1, "test_codes": ["CBC"], "ordering_provider": "X", "priority": "Z"})",
       "priority"},
      {R"({"patient_id": true, "test_codes": ["CBC"], "ordering_provider": "X"})", "patient_id"},
      {R"({"patient_id": 1, "encounter_id": "x", "test_codes": ["CBC"], "ordering_provider": "X"})",
       "encounter_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    HttpResult r = Post("/api/lab-orders", c.body);
    ASSERT_EQ(r.status, 422) << r.body;
    rapidjson::Document doc = ParseJson(r.body);
    ASSERT_TRUE(doc["detail"].IsArray());
    EXPECT_STREQ(doc["detail"][0]["loc"][0].GetString(), "body");
    EXPECT_STREQ(doc["detail"][0]["loc"][1].GetString(), c.field);
  }
  EXPECT_EQ(Post("/api/lab-orders", "{not json").status, 422);
  EXPECT_EQ(Post("/api/lab-orders", "[1]").status, 422);
  HttpTestClient client(port_);
  HttpResult r =
      client.Send("POST", "/api/lab-orders",
                  {{"Authorization", "Bearer " + admin_}, {"Content-Type", "text/plain"}}, "x");
  EXPECT_EQ(r.status, 415) << r.body;
  // Nothing was stored by any of them.
  EXPECT_EQ(Get("/api/lab-orders").body, "[]");
}

TEST_P(RestApiTest, BadQueryParametersAre422) {
  for (const char* target :
       {"/api/lab-results?limit=0", "/api/lab-results?limit=1001", "/api/lab-results?limit=x",
        "/api/lab-results?abnormal_only=maybe", "/api/lab-results?from=yesterday",
        "/api/lab-results/critical?acknowledged=2", "/api/lab-orders?limit=-1",
        "/api/lab-orders/0"}) {
    SCOPED_TRACE(target);
    HttpResult r = Get(target);
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_TRUE(ParseJson(r.body)["detail"].IsArray());
  }
}

TEST_P(RestApiTest, EveryApiPathNeedsATokenAndItsRole) {
  StoreGuideOru();
  struct Route {
    const char* method;
    const char* target;
    bool reader_allowed;  // results:read
    bool writer_allowed;  // orders:write
  };
  const Route routes[] = {
      {"GET", "/api/lab-results?patient_id=12345", true, false},
      {"GET", "/api/lab-results/critical", true, false},
      {"GET", "/api/lab-results/1", true, false},
      {"POST", "/api/lab-results/1/acknowledge", false, false},
      {"GET", "/api/lab-orders", true, false},
      {"GET", "/api/lab-orders/1", true, false},
      {"POST", "/api/lab-orders", false, true},
      {"POST", "/api/lab-orders/1/cancel", false, true},
      {"GET", "/api/access-audit", false, false},
      {"GET", "/api/access-audit?patient_id=12345", false, false},
      {"GET", "/api/patients?q=Doe", true, false},
      {"POST", "/api/events/ticket", true, false},
  };
  const auto expect_role_check = [&](const Route& route, const std::string& token, bool allowed) {
    HttpResult r = Fetch(port_, route.method, route.target, token, "{}");
    if (allowed) {
      EXPECT_NE(r.status, 401) << r.body;
      EXPECT_NE(r.status, 403) << r.body;
    } else {
      EXPECT_EQ(r.status, 403) << r.body;
      EXPECT_EQ(r.Header("content-type"), "application/json");
      EXPECT_NE(r.body.find("lacks the role"), std::string::npos) << r.body;
      EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
    }
  };
  for (const Route& route : routes) {
    SCOPED_TRACE(std::string(route.method) + " " + route.target);
    HttpResult r = Fetch(port_, route.method, route.target);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(r.Header("www-authenticate"), "Bearer realm=\"lab-bridge\"");
    EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
    r = Fetch(port_, route.method, route.target, "lb_not-a-real-token");
    EXPECT_EQ(r.status, 401) << r.body;
    HttpTestClient client(port_);
    r = client.Send(route.method, route.target, {{"Authorization", "Basic " + admin_}});
    EXPECT_EQ(r.status, 401) << r.body;
    {
      SCOPED_TRACE("reader");
      expect_role_check(route, reader_, route.reader_allowed);
    }
    {
      SCOPED_TRACE("writer");
      expect_role_check(route, writer_, route.writer_allowed);
    }
  }
  // The event stream refuses before it opens (an allowed token would hold
  // the connection open, so only the refusals are checked here).
  EXPECT_EQ(Fetch(port_, "GET", "/api/events").status, 401);
  HttpResult r = Fetch(port_, "GET", "/api/events", writer_);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
  // A revoked token stops working at once.
  ASSERT_TRUE(apis_->tokens().Revoke("reader").ok());
  EXPECT_EQ(Fetch(port_, "GET", "/api/lab-results", reader_).status, 401);
}

// Who read which patient's data, refused attempts included (HIPAA 164.312(b)).
TEST_P(RestApiTest, EveryApiCallIsInTheAccessAudit) {
  StoreGuideOru();
  ASSERT_EQ(Fetch(port_, "GET", "/api/lab-results?patient_id=12345", reader_).status, 200);
  ASSERT_EQ(Fetch(port_, "GET", "/api/lab-results/critical").status, 401);
  ASSERT_EQ(Post("/api/lab-orders",
                 R"({"patient_id": 777, "test_codes": ["CBC"], "ordering_provider": "X"})")
                .status,
            201);
  // Reading the audit needs audit:read.
  EXPECT_EQ(Fetch(port_, "GET", "/api/access-audit", reader_).status, 403);
  HttpResult r = Get("/api/access-audit?patient_id=12345");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc = ParseJson(r.body);
  ASSERT_EQ(doc.Size(), 1u) << r.body;
  EXPECT_STREQ(doc[0]["who"].GetString(), "reader");
  EXPECT_STREQ(doc[0]["protocol"].GetString(), "rest");
  EXPECT_STREQ(doc[0]["action"].GetString(), "read");
  EXPECT_STREQ(doc[0]["what"].GetString(), "GET /api/lab-results");
  EXPECT_EQ(doc[0]["outcome"].GetInt(), 200);
  EXPECT_STREQ(doc[0]["source"].GetString(), "127.0.0.1");
  EXPECT_TRUE(doc[0]["time"].IsString());

  doc = ParseJson(Get("/api/access-audit?limit=10").body);
  // Newest first: the audit query above, the 403, the order, the 401, the read.
  ASSERT_EQ(doc.Size(), 5u) << r.body;
  EXPECT_EQ(doc[1]["outcome"].GetInt(), 403);
  EXPECT_STREQ(doc[1]["who"].GetString(), "reader");
  EXPECT_STREQ(doc[2]["action"].GetString(), "create");
  EXPECT_STREQ(doc[2]["patients"][0].GetString(), "777");
  EXPECT_EQ(doc[3]["outcome"].GetInt(), 401);
  EXPECT_STREQ(doc[3]["who"].GetString(), "-");
  // Values and names never reach the audit file. Each line is searched
  // without its own timestamp, whose seconds could read "...:06.8...".
  const std::string file = bridge::testing::ReadFileOrDie(dir_.path() / "access.jsonl");
  std::string without_times = file;
  for (std::size_t at = without_times.find("\"time\":\""); at != std::string::npos;
       at = without_times.find("\"time\":\"", at)) {
    const std::size_t end = without_times.find('"', at + 8);
    ASSERT_NE(end, std::string::npos) << file;
    without_times.erase(at, end + 1 - at);
  }
  EXPECT_EQ(without_times.find("6.8"), std::string::npos) << file;
  EXPECT_EQ(file.find("Doe"), std::string::npos);
  EXPECT_EQ(file.find(admin_), std::string::npos);
}

TEST_P(RestApiTest, OperatorEndpointsNeedNoToken) {
  StoreGuideOru();
  HttpResult r = Fetch(port_, "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  r = Fetch(port_, "GET", "/readyz");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Fetch(port_, "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("labbridge_critical_results_open 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("# TYPE labbridge_http_responses_total counter"), std::string::npos);
  EXPECT_NE(r.body.find("labbridge_database_up 1"), std::string::npos);

  // Configurable: /metrics behind a token with audit:read.
  Config config;
  config.metrics_require_token = true;
  StartServer({}, config);
  EXPECT_EQ(Fetch(port_, "GET", "/metrics").status, 401);
  EXPECT_EQ(Fetch(port_, "GET", "/metrics", reader_).status, 403);
  EXPECT_EQ(Fetch(port_, "GET", "/metrics", admin_).status, 200);
  EXPECT_EQ(Fetch(port_, "GET", "/healthz").status, 200);
  // Not the first start any more: no new admin token.
  EXPECT_TRUE(apis_->initial_admin_token().empty());
}

TEST_P(RestApiTest, UnknownPathsAndMethodsAreJsonErrors) {
  HttpResult r = Get("/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
  EXPECT_EQ(Get("/api/lab-results/1/2/3").status, 404);
  EXPECT_EQ(Fetch(port_, "POST", "/api/lab-results/1", admin_).status, 405);
  r = Fetch(port_, "DELETE", "/api/lab-orders", admin_);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("allow"), "GET, HEAD, POST");
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
  EXPECT_EQ(Fetch(port_, "POST", "/healthz").status, 405);
  EXPECT_EQ(Fetch(port_, "GET", "/api/lab-results/1/acknowledge", admin_).status, 405);
}

TEST_P(RestApiTest, OversizeBodyIs413AndMalformedRequestIs400) {
  Config config;
  config.http_max_body_bytes = 1024;
  StartServer({}, config);
  HttpResult r = Post("/api/lab-orders", std::string(4096, ' '));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
  HttpTestClient client(port_);
  r = client.SendRaw("GARBAGE\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.error;
  EXPECT_TRUE(ParseJson(r.body).HasMember("detail"));
}

TEST_P(RestApiTest, KeepAliveServesManyRequestsOnOneConnection) {
  HttpTestClient client(port_);
  for (int i = 0; i < 20; ++i) {
    HttpResult r = client.Send("GET", "/api/lab-results", {{"Authorization", "Bearer " + admin_}});
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.keep_alive);
  }
  EXPECT_EQ(client.connections_opened(), 1);
}

// ----- the FHIR facade (api/http/fhir_api.h) on the same server -----

TEST_P(RestApiTest, FhirMetadataListsWhatIsImplemented) {
  HttpResult r = Fetch(port_, "GET", "/fhir/metadata");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/fhir+json; charset=utf-8");
  rapidjson::Document doc = ParseJson(r.body);
  EXPECT_STREQ(doc["resourceType"].GetString(), "CapabilityStatement");
  EXPECT_STREQ(doc["fhirVersion"].GetString(), "4.0.1");
  std::set<std::string> types;
  for (const auto& res : doc["rest"][0]["resource"].GetArray()) {
    types.insert(res["type"].GetString());
  }
  EXPECT_EQ(types,
            (std::set<std::string>{"Patient", "DiagnosticReport", "Observation", "ServiceRequest",
                                   "Specimen", "Practitioner", "Organization", "AuditEvent"}));
  // Interactions per type: read and vread everywhere but AuditEvent, which
  // is only searched; create only for ServiceRequest.
  std::map<std::string, std::set<std::string>> interactions;
  for (const auto& res : doc["rest"][0]["resource"].GetArray()) {
    for (const auto& i : res["interaction"].GetArray()) {
      interactions[res["type"].GetString()].insert(i["code"].GetString());
    }
  }
  EXPECT_EQ(interactions["AuditEvent"], (std::set<std::string>{"search-type"}));
  EXPECT_EQ(interactions["ServiceRequest"],
            (std::set<std::string>{"read", "vread", "search-type", "create"}));
  EXPECT_EQ(interactions["Specimen"], (std::set<std::string>{"read", "vread"}));
  // The security it declares is what the server does: bearer tokens of its
  // own, not OAuth (no restful-security-service code fits them).
  const rapidjson::Value& security = doc["rest"][0]["security"];
  EXPECT_FALSE(security.HasMember("service")) << r.body;
  const std::string description = security["description"].GetString();
  EXPECT_NE(description.find("Bearer"), std::string::npos);
  EXPECT_NE(description.find("lab-bridge token create"), std::string::npos);
  EXPECT_EQ(r.body.find("\"OAuth\""), std::string::npos);
  // Exactly the search parameters the facade answers, per type.
  std::map<std::string, std::set<std::string>> params;
  for (const auto& res : doc["rest"][0]["resource"].GetArray()) {
    std::set<std::string>& names = params[res["type"].GetString()];
    if (res.HasMember("searchParam")) {
      for (const auto& p : res["searchParam"].GetArray()) {
        names.insert(p["name"].GetString());
      }
    }
  }
  const std::set<std::string> results = {"patient",  "subject", "code",        "date",
                                         "category", "status",  "_lastUpdated"};
  EXPECT_EQ(params["Observation"], results);
  EXPECT_EQ(params["DiagnosticReport"], results);
  EXPECT_EQ(params["ServiceRequest"],
            (std::set<std::string>{"patient", "subject", "code", "date", "status", "identifier",
                                   "_lastUpdated"}));
  EXPECT_EQ(params["Patient"],
            (std::set<std::string>{"identifier", "name", "birthdate", "_lastUpdated"}));
  EXPECT_TRUE(params["Specimen"].empty());
  EXPECT_EQ(params["AuditEvent"], (std::set<std::string>{"patient", "entity-id"}));
  // And what it lists is answered: AuditEvent by both parameters.
  EXPECT_EQ(Get("/fhir/AuditEvent?patient=12345").status, 200);
  EXPECT_EQ(Get("/fhir/AuditEvent?entity-id=12345").status, 200);
}

// Patient identifier/name/birthdate, _lastUpdated and ServiceRequest
// identifier over what the real inbound pipeline stores for the guide's ORU
// (Patient ids are UUIDs there: a client finds the Patient, then its results).
TEST_P(RestApiTest, FhirSearchesOverTheInboundPipeline) {
  service::EventBus bus;
  service::Ingest ingest(*store_, bus, {});
  const std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                         "tests/fixtures/hl7/guide_sample_oru.hl7");
  service::IngestPeer peer;
  peer.source_ip = "127.0.0.1";
  ASSERT_TRUE(ingest.Handle(oru, peer).stored);
  const auto total = [&](const std::string& target) {
    HttpResult r = Get(target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    rapidjson::Document doc = ParseJson(r.body);
    return doc.IsObject() && doc.HasMember("total") ? doc["total"].GetInt() : -1;
  };

  HttpResult r = Get("/fhir/Patient?identifier=12345");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document bundle = ParseJson(r.body);
  ASSERT_EQ(bundle["total"].GetInt(), 1) << r.body;
  const rapidjson::Value& patient = bundle["entry"][0]["resource"];
  const std::string patient_id = patient["id"].GetString();
  std::string system;
  for (const auto& id : patient["identifier"].GetArray()) {
    if (std::string(id["value"].GetString()) == "12345") {
      system = id["system"].GetString();
    }
  }
  ASSERT_FALSE(system.empty());
  EXPECT_EQ(total("/fhir/Patient?identifier=" + http::PercentEncode(system + "|12345")), 1);
  EXPECT_EQ(total("/fhir/Patient?identifier=urn:other%7C12345"), 0);
  EXPECT_EQ(total("/fhir/Patient?identifier=%7C12345"), 0);  // |12345: no system
  EXPECT_EQ(total("/fhir/Patient?identifier=" + http::PercentEncode(system + "|")), 1);
  EXPECT_EQ(total("/fhir/Patient?identifier=1234"), 0);
  EXPECT_EQ(total("/fhir/Patient?name=doe"), 1);
  EXPECT_EQ(total("/fhir/Patient?name=JA"), 1);  // given, any case
  EXPECT_EQ(total("/fhir/Patient?name=Doe&name=Jane"), 1);
  EXPECT_EQ(total("/fhir/Patient?name=smith"), 0);
  EXPECT_EQ(total("/fhir/Patient?birthdate=1990-03-15"), 1);
  EXPECT_EQ(total("/fhir/Patient?birthdate=ge1990&birthdate=lt1991"), 1);
  EXPECT_EQ(total("/fhir/Patient?birthdate=lt1990-03-15"), 0);
  EXPECT_EQ(total("/fhir/Patient?name=doe&birthdate=1985"), 0);
  // The Patient found leads to its results.
  EXPECT_EQ(total("/fhir/Observation?patient=" + patient_id), 5);

  // _lastUpdated: the time lab-bridge stored the resources.
  const absl::Time now = absl::Now();
  const std::string today = absl::FormatTime("%Y-%m-%d", now, absl::UTCTimeZone());
  EXPECT_EQ(total("/fhir/Observation?_lastUpdated=" + today), 5);
  EXPECT_EQ(total("/fhir/Observation?_lastUpdated=ge" + today + "&patient=" + patient_id), 5);
  EXPECT_EQ(total("/fhir/Observation?_lastUpdated=lt" + today), 0);
  EXPECT_EQ(total("/fhir/Observation?_lastUpdated=gt" +
                  http::PercentEncode(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now + absl::Minutes(2),
                                                       absl::UTCTimeZone()))),
            0);
  EXPECT_EQ(total("/fhir/Observation?_lastUpdated=le" +
                  http::PercentEncode(absl::FormatTime("%Y-%m-%dT%H:%M:%S+14:00",
                                                       now + absl::Hours(14) + absl::Minutes(2),
                                                       absl::UTCTimeZone()))),
            5);
  EXPECT_EQ(total("/fhir/Patient?_lastUpdated=ge2000-01"), 1);
  EXPECT_EQ(total("/fhir/DiagnosticReport?_lastUpdated=2000"), 0);

  // ServiceRequest by identifier: the ORU's order (OBR-2 ORD001), and an
  // order placed here by its placer number.
  EXPECT_EQ(total("/fhir/ServiceRequest?identifier=ORD001"), 1);
  // ... and by patient or status alone (the ORU's ServiceRequest).
  r = Get("/fhir/ServiceRequest?patient=" + patient_id);
  ASSERT_EQ(r.status, 200) << r.body;
  bundle = ParseJson(r.body);
  ASSERT_EQ(bundle["total"].GetInt(), 1) << r.body;
  const std::string oru_status = bundle["entry"][0]["resource"]["status"].GetString();
  EXPECT_EQ(total("/fhir/ServiceRequest?subject=Patient/" + patient_id), 1);
  EXPECT_EQ(total("/fhir/ServiceRequest?patient=no-such-patient"), 0);
  EXPECT_EQ(total("/fhir/ServiceRequest?status=" + oru_status), 1);
  EXPECT_EQ(total(std::string("/fhir/ServiceRequest?status=") +
                  (oru_status == "revoked" ? "draft" : "revoked")),
            0);
  r = Post("/api/lab-orders",
           R"({"patient_id": 12345, "test_codes": ["CBC"], "ordering_provider": "Dr. Smith"})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string placer = ParseJson(r.body)["placer_order_number"].GetString();
  const std::string order_id = std::to_string(ParseJson(r.body)["id"].GetInt64());
  r = Get("/fhir/ServiceRequest?identifier=" + http::PercentEncode(placer));
  ASSERT_EQ(r.status, 200) << r.body;
  bundle = ParseJson(r.body);
  ASSERT_EQ(bundle["total"].GetInt(), 1) << r.body;
  EXPECT_EQ(std::string(bundle["entry"][0]["resource"]["id"].GetString()), "order-" + order_id);
  EXPECT_EQ(total("/fhir/ServiceRequest?identifier=" +
                  http::PercentEncode("urn:lab-bridge:placer:MPS_PMS|" + placer)),
            1);
  EXPECT_EQ(total("/fhir/ServiceRequest?identifier=" + http::PercentEncode("urn:x|" + placer)), 0);
  EXPECT_EQ(total("/fhir/ServiceRequest?status=active&identifier=" + http::PercentEncode(placer)),
            1);
  EXPECT_EQ(total("/fhir/ServiceRequest?status=revoked&identifier=" + http::PercentEncode(placer)),
            0);

  // Bad values are 400 invalid; a parameter the type does not have is
  // ignored, or 400 not-supported under Prefer: handling=strict.
  for (const char* target :
       {"/fhir/Observation?_lastUpdated=yesterday", "/fhir/Observation?_lastUpdated=ne2026",
        "/fhir/Observation?_lastUpdated=2026-13",
        "/fhir/Patient?identifier=", "/fhir/Patient?name=%20", "/fhir/Patient?birthdate=soon"}) {
    r = Get(target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_NE(r.body.find("\"invalid\""), std::string::npos) << target << r.body;
  }
  EXPECT_EQ(total("/fhir/Patient?code=x"), 1);
  EXPECT_EQ(total("/fhir/Observation?name=x"), 5);
  HttpTestClient client(port_);
  HttpResult strict =
      client.Send("GET", "/fhir/Patient?code=x",
                  {{"Authorization", "Bearer " + admin_}, {"Prefer", "handling=strict"}});
  EXPECT_EQ(strict.status, 400);
  EXPECT_NE(strict.body.find("not-supported"), std::string::npos) << strict.body;
}

// Over real ingest the FHIR Patient id is a UUID, yet the access audit names
// the patient by PMS id on every protocol: one query by PMS id finds the
// FHIR reads and searches of that patient next to the REST ones.
TEST_P(RestApiTest, FhirAccessesAreAuditedByPmsPatientId) {
  service::EventBus bus;
  service::Ingest ingest(*store_, bus, {});
  const std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                         "tests/fixtures/hl7/guide_sample_oru.hl7");
  ASSERT_TRUE(ingest.Handle(oru, service::IngestPeer{}).stored);
  rapidjson::Document found = ParseJson(Get("/fhir/Patient?identifier=12345").body);
  ASSERT_EQ(found["total"].GetInt(), 1);
  const std::string uuid = found["entry"][0]["resource"]["id"].GetString();
  ASSERT_NE(uuid, "12345");
  rapidjson::Document observations = ParseJson(Get("/fhir/Observation?patient=" + uuid).body);
  ASSERT_EQ(observations["total"].GetInt(), 5);
  const std::string observation = observations["entry"][0]["resource"]["id"].GetString();
  ASSERT_EQ(Fetch(port_, "GET", "/fhir/Patient/" + uuid, reader_).status, 200);
  ASSERT_EQ(Fetch(port_, "GET", "/fhir/Observation/" + observation, reader_).status, 200);
  ASSERT_EQ(Fetch(port_, "GET", "/api/lab-results?patient_id=12345", reader_).status, 200);

  HttpResult r = Get("/api/access-audit?patient_id=12345&limit=100");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document audit = ParseJson(r.body);
  std::multiset<std::string> fhir;
  bool rest = false;
  for (const auto& e : audit.GetArray()) {
    ASSERT_EQ(e["patients"].Size(), 1u) << r.body;
    EXPECT_STREQ(e["patients"][0].GetString(), "12345");
    if (std::string(e["protocol"].GetString()) == "fhir") {
      fhir.insert(e["what"].GetString());
    } else {
      rest = rest || std::string(e["what"].GetString()) == "GET /api/lab-results";
    }
  }
  EXPECT_EQ(fhir, (std::multiset<std::string>{"GET /fhir/Patient", "GET /fhir/Observation",
                                              "GET /fhir/Patient/" + uuid,
                                              "GET /fhir/Observation/" + observation}))
      << r.body;
  EXPECT_TRUE(rest) << r.body;
  // The UUID never stands in for the patient in the audit.
  EXPECT_EQ(bridge::testing::ReadFileOrDie(dir_.path() / "access.jsonl").find("\"" + uuid + "\""),
            std::string::npos);

  // AuditEvent finds the same accesses by the PMS id or by the FHIR id.
  for (const std::string& patient : {std::string("12345"), "Patient/" + uuid}) {
    SCOPED_TRACE(patient);
    r = Get("/fhir/AuditEvent?patient=" + http::PercentEncode(patient) + "&_count=100");
    ASSERT_EQ(r.status, 200) << r.body;
    rapidjson::Document events = ParseJson(r.body);
    int fhir_events = 0;
    for (const auto& entry : events["entry"].GetArray()) {
      const rapidjson::Value& event = entry["resource"];
      fhir_events += std::string(event["outcomeDesc"].GetString()).rfind("fhir ", 0) == 0;
      EXPECT_STREQ(event["entity"][1]["what"]["identifier"]["value"].GetString(), "12345");
    }
    EXPECT_GE(fhir_events, 4) << r.body;
  }
}

TEST_P(RestApiTest, FhirReadAndSearchStoredResources) {
  ASSERT_TRUE(store_->Ingest(storage::testing::MakeOru("F1", "12345", 3)).ok());
  HttpResult r = Get("/fhir/Observation?patient=Patient/12345&_count=2");
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document bundle = ParseJson(r.body);
  EXPECT_STREQ(bundle["resourceType"].GetString(), "Bundle");
  EXPECT_STREQ(bundle["type"].GetString(), "searchset");
  ASSERT_EQ(bundle["entry"].Size(), 2u);
  ASSERT_EQ(bundle["link"].Size(), 2u);
  EXPECT_STREQ(bundle["link"][1]["relation"].GetString(), "next");
  std::string next = bundle["link"][1]["url"].GetString();
  next = next.substr(next.find("/fhir/"));
  rapidjson::Document second = ParseJson(Get(next).body);
  ASSERT_EQ(second["entry"].Size(), 1u);
  EXPECT_FALSE(second.HasMember("total") && second["total"].GetInt() == 3);

  // Bare id, code, status, category and date prefixes.
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?patient=12345").body)["total"].GetInt(), 3);
  EXPECT_EQ(
      ParseJson(Get("/fhir/Observation?subject=Patient/12345&code=TEST1").body)["total"].GetInt(),
      1);
  EXPECT_EQ(
      ParseJson(Get("/fhir/Observation?status=final&category=laboratory").body)["total"].GetInt(),
      3);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=ge2026-01-01&date=lt2026-01-02").body)["total"]
                .GetInt(),
            3);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=gt2026-01-01").body)["total"].GetInt(), 0);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=2026-01-01").body)["total"].GetInt(), 3);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=lt2026-01-01").body)["total"].GetInt(), 0);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=le2026-01-01").body)["total"].GetInt(), 3);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=le2026-01").body)["total"].GetInt(), 3);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?date=le2025-12-31").body)["total"].GetInt(), 0);
  EXPECT_EQ(ParseJson(Get("/fhir/DiagnosticReport?patient=12345").body)["total"].GetInt(), 1);
  EXPECT_EQ(ParseJson(Get("/fhir/Observation?patient=999").body)["total"].GetInt(), 0);

  // Read: id, meta, ETag, Last-Modified; _history of the current version.
  const std::string id = bundle["entry"][0]["resource"]["id"].GetString();
  r = Get("/fhir/Observation/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document obs = ParseJson(r.body);
  EXPECT_EQ(std::string(obs["id"].GetString()), id);
  const std::string version = obs["meta"]["versionId"].GetString();
  EXPECT_EQ(r.Header("etag"), "W/\"" + version + "\"");
  EXPECT_NE(r.Header("last-modified").find("GMT"), std::string::npos);
  EXPECT_EQ(Get("/fhir/Observation/" + id + "/_history/" + version).status, 200);
  EXPECT_EQ(Get("/fhir/Observation/" + id + "/_history/999").status, 404);
}

// A resource as stored gets its id and meta, and nothing else changes: a
// decimal keeps its trailing zeros (its precision in FHIR), nested ids stay,
// and a stored top-level id or meta gives way to the store's.
TEST_P(RestApiTest, FhirReadKeepsTheStoredResourceAsWritten) {
  storage::IngestRecord record = storage::testing::MakeOru("F7", "12345", 2);
  record.fhir_resources[0].json =
      R"({"resourceType":"Observation","status":"final",)"
      R"("valueQuantity":{"value":0.60,"unit":"mg/dL"},"referenceRange":[{"low":{"value":1.50}}]})";
  record.fhir_resources[1].json =
      R"({"id":"stale","meta":{"source":"lis"},"resourceType":"Observation",)"
      R"("extension":[{"id":"x1","url":"https://example.org/e","valueDecimal":2.50}],)"
      R"("note":[{"text":"ok"}]})";
  ASSERT_TRUE(store_->Ingest(record).ok());
  const std::string plain_id = record.fhir_resources[0].id;
  const std::string edited_id = record.fhir_resources[1].id;

  for (const std::string& target : std::vector<std::string>{
           "/fhir/Observation/" + plain_id, "/fhir/Observation?patient=12345&_count=50"}) {
    HttpResult r = Get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find(R"("valueQuantity":{"value":0.60,"unit":"mg/dL"})"), std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find(R"("referenceRange":[{"low":{"value":1.50}}])"), std::string::npos)
        << r.body;
    EXPECT_NE(r.body.find(R"({"resourceType":"Observation","id":")" + plain_id +
                          R"(","meta":{"versionId":"1","lastUpdated":")"),
              std::string::npos)
        << r.body;
  }

  HttpResult r = Get("/fhir/Observation/" + edited_id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("extension":[{"id":"x1","url":"https://example.org/e",)"
                        R"("valueDecimal":2.50}])"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("stale"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("\"source\""), std::string::npos) << r.body;
  rapidjson::Document obs = ParseJson(r.body);
  ASSERT_TRUE(obs.IsObject()) << r.body;
  EXPECT_EQ(std::string(obs["id"].GetString()), edited_id);
  EXPECT_STREQ(obs["meta"]["versionId"].GetString(), "1");
  EXPECT_STREQ(obs["note"][0]["text"].GetString(), "ok");
  EXPECT_EQ(obs.MemberCount(), 5u) << r.body;  // resourceType, id, meta, extension, note
}

TEST_P(RestApiTest, FhirErrorsAreOperationOutcomes) {
  struct Case {
    const char* method;
    const char* target;
    std::string token;
    int status;
    const char* code;
  };
  const std::vector<Case> cases = {
      {"GET", "/fhir/Observation/nope", admin_, 404, "not-found"},
      {"GET", "/fhir/Bogus/1", admin_, 404, "not-found"},
      {"GET", "/fhir/Observation", "", 401, "security"},
      {"GET", "/fhir/Observation", "wrong", 401, "security"},
      {"POST", "/fhir/ServiceRequest", reader_, 403, "security"},
      {"DELETE", "/fhir/Observation/1", admin_, 405, "not-supported"},
      {"GET", "/fhir/Observation?_count=0", admin_, 400, "invalid"},
      {"GET", "/fhir/Observation?date=yesterday", admin_, 400, "invalid"},
      {"GET", "/fhir/Specimen?type=x", admin_, 400, "not-supported"},
      {"POST", "/fhir/ServiceRequest", admin_, 422, "invalid"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.target);
    HttpResult r = Fetch(port_, c.method, c.target, c.token, c.method[0] == 'P' ? "{}" : "");
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/fhir+json; charset=utf-8");
    rapidjson::Document doc = ParseJson(r.body);
    EXPECT_STREQ(doc["resourceType"].GetString(), "OperationOutcome");
    EXPECT_STREQ(doc["issue"][0]["code"].GetString(), c.code);
  }
  // Unknown parameters: ignored, unless the client asks for strict handling.
  EXPECT_EQ(Get("/fhir/Observation?foo=1").status, 200);
  HttpTestClient client(port_);
  HttpResult r =
      client.Send("GET", "/fhir/Observation?foo=1",
                  {{"Authorization", "Bearer " + admin_}, {"Prefer", "handling=strict"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_STREQ(ParseJson(r.body)["issue"][0]["code"].GetString(), "not-supported");
  // Server refusals under /fhir are OperationOutcomes too.
  Config config;
  config.http_max_body_bytes = 1024;
  StartServer({}, config);
  r = Fetch(port_, "POST", "/fhir/ServiceRequest", admin_, std::string(4096, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_STREQ(ParseJson(r.body)["resourceType"].GetString(), "OperationOutcome");
}

// A token without results:read reads nothing through the facade: read,
// vread, each type's search; AuditEvent needs audit:read as well.
TEST_P(RestApiTest, FhirReadsNeedTheirRole) {
  ASSERT_TRUE(store_->Ingest(storage::testing::MakeOru("F1", "12345", 1)).ok());
  rapidjson::Document bundle = ParseJson(Get("/fhir/Observation?patient=12345").body);
  ASSERT_EQ(bundle["total"].GetInt(), 1);
  const std::string observation = bundle["entry"][0]["resource"]["id"].GetString();
  std::vector<std::string> targets = {"/fhir/Observation/" + observation,
                                      "/fhir/Observation/" + observation + "/_history/1",
                                      "/fhir/Observation?patient=12345",
                                      "/fhir/DiagnosticReport?patient=12345",
                                      "/fhir/ServiceRequest?status=active",
                                      "/fhir/Patient?identifier=12345",
                                      "/fhir/AuditEvent",
                                      "/fhir/AuditEvent?patient=12345"};
  for (const char* type : {"Patient", "DiagnosticReport", "Observation", "ServiceRequest",
                           "Specimen", "Practitioner", "Organization"}) {
    targets.push_back(std::string("/fhir/") + type + "/some-id");
    targets.push_back(std::string("/fhir/") + type + "/some-id/_history/1");
  }
  const auto expect_refused = [&](const std::string& target, const std::string& token) {
    SCOPED_TRACE(target);
    HttpResult r = Fetch(port_, "GET", target, token);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/fhir+json; charset=utf-8");
    rapidjson::Document doc = ParseJson(r.body);
    ASSERT_TRUE(doc.IsObject()) << r.body;
    EXPECT_STREQ(doc["resourceType"].GetString(), "OperationOutcome");
    EXPECT_STREQ(doc["issue"][0]["code"].GetString(), "security");
    EXPECT_EQ(r.body.find(observation), std::string::npos) << "refused yet leaked: " << r.body;
  };
  for (const std::string& target : targets) {
    expect_refused(target, writer_);
    if (target.rfind("/fhir/AuditEvent", 0) == 0) {
      expect_refused(target, reader_);
    } else {
      EXPECT_NE(Fetch(port_, "GET", target, reader_).status, 403) << target;
    }
    EXPECT_EQ(Fetch(port_, "GET", target).status, 401) << target;
  }
  // The writer still places orders, and reads the CapabilityStatement.
  EXPECT_NE(Fetch(port_, "POST", "/fhir/ServiceRequest", writer_, "{}").status, 403);
  EXPECT_EQ(Fetch(port_, "GET", "/fhir/metadata", writer_).status, 200);
}

TEST_P(RestApiTest, FhirCreateServiceRequestPlacesTheSameOrderAsRest) {
  const std::string body = R"({"resourceType": "ServiceRequest", "status": "active",
    "intent": "order", "priority": "stat",
    "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "CMP"}]},
    "subject": {"reference": "#p1"},
    "contained": [{"resourceType": "Patient", "id": "p1",
      "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "12345"}],
      "name": [{"family": "Doe", "given": ["Jane"]}], "gender": "female", "birthDate": "1990-03-15"}],
    "requester": {"display": "Dr. Smith"}})";
  HttpResult r = Post("/fhir/ServiceRequest", body);
  ASSERT_EQ(r.status, 201) << r.body;
  rapidjson::Document created = ParseJson(r.body);
  EXPECT_STREQ(created["resourceType"].GetString(), "ServiceRequest");
  EXPECT_STREQ(created["status"].GetString(), "active");
  EXPECT_STREQ(created["priority"].GetString(), "stat");
  const std::string id = created["id"].GetString();
  EXPECT_NE(r.Header("location").find("/fhir/ServiceRequest/" + id), std::string::npos);

  // The same order the REST path shows: pending, patient 12345.
  rapidjson::Document orders = ParseJson(Get("/api/lab-orders?patient_id=12345").body);
  ASSERT_EQ(orders.Size(), 1u);
  EXPECT_STREQ(orders[0]["status"].GetString(), "pending");
  EXPECT_STREQ(orders[0]["priority"].GetString(), "S");
  EXPECT_EQ("order-" + std::to_string(orders[0]["id"].GetInt64()), id);
  r = Get("/fhir/ServiceRequest/" + id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_STREQ(ParseJson(r.body)["subject"]["identifier"]["value"].GetString(), "12345");
}

// A transaction Bundle as FHIR clients build it: urn:uuid fullUrls, the
// ServiceRequest referring to the Patient by its fullUrl, and (being new)
// with neither id nor identifier.
TEST_P(RestApiTest, FhirCreateServiceRequestFromATransactionBundle) {
  const std::string body = R"({"resourceType": "Bundle", "type": "transaction", "entry": [
    {"fullUrl": "urn:uuid:0b7a7a9e-7b1e-4a47-9d0c-2f7f3b6f1c01",
     "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
       "priority": "routine",
       "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC"}]},
       "subject": {"reference": "urn:uuid:5d3c2f1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"},
       "requester": {"display": "Dr. Smith"}},
     "request": {"method": "POST", "url": "ServiceRequest"}},
    {"fullUrl": "urn:uuid:5d3c2f1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f",
     "resource": {"resourceType": "Patient",
       "identifier": [{"type": {"coding": [{"code": "MR"}]}, "value": "24680"}],
       "name": [{"family": "Roe", "given": ["Richard"]}], "gender": "male",
       "birthDate": "1971-04-02"},
     "request": {"method": "POST", "url": "Patient"}}]})";
  HttpResult r = Post("/fhir/ServiceRequest", body);
  ASSERT_EQ(r.status, 201) << r.body;
  rapidjson::Document created = ParseJson(r.body);
  EXPECT_STREQ(created["resourceType"].GetString(), "ServiceRequest");
  const std::string id = created["id"].GetString();
  EXPECT_STREQ(created["subject"]["identifier"]["value"].GetString(), "24680");
  // The placer number is lab-bridge's, not the stand-in the mapping needed.
  EXPECT_STRNE(created["identifier"][0]["value"].GetString(), "new");

  rapidjson::Document orders = ParseJson(Get("/api/lab-orders?patient_id=24680").body);
  ASSERT_EQ(orders.Size(), 1u);
  EXPECT_EQ("order-" + std::to_string(orders[0]["id"].GetInt64()), id);
  EXPECT_STREQ(orders[0]["status"].GetString(), "pending");
  EXPECT_STREQ(orders[0]["test_codes"][0].GetString(), "58410-2");
  // The Bundle's Patient became the order's patient, demographics included.
  rapidjson::Document patients = ParseJson(Get("/api/patients?q=24680").body);
  ASSERT_EQ(patients.Size(), 1u) << Get("/api/patients?q=24680").body;
  EXPECT_STREQ(patients[0]["family_name"].GetString(), "Roe");

  // Two ServiceRequests in one Bundle are refused, and nothing is stored.
  std::string two = body;
  const std::size_t second = two.find("{\"fullUrl\": \"urn:uuid:5d3c");
  ASSERT_NE(second, std::string::npos);
  two.insert(second, R"({"resource": {"resourceType": "ServiceRequest", "status": "active",
    "intent": "order", "code": {"coding": [{"code": "BMP"}]},
    "subject": {"reference": "urn:uuid:5d3c2f1e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"}}},)");
  r = Post("/fhir/ServiceRequest", two);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_STREQ(ParseJson(r.body)["resourceType"].GetString(), "OperationOutcome");
  EXPECT_EQ(ParseJson(Get("/api/lab-orders?patient_id=24680").body).Size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RestApiTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return storage::testing::BackendName(info.param);
                         });

TEST(HttpStatusForTest, OneTableForEveryCode) {
  const std::pair<absl::Status, int> cases[] = {
      {absl::OkStatus(), 200},
      {absl::InvalidArgumentError("x"), 400},
      {absl::UnauthenticatedError("x"), 401},
      {absl::PermissionDeniedError("x"), 403},
      {absl::NotFoundError("x"), 404},
      {absl::AlreadyExistsError("x"), 409},
      {absl::FailedPreconditionError("x"), 409},
      {absl::ResourceExhaustedError("x"), 429},
      {absl::UnimplementedError("x"), 501},
      {absl::UnavailableError("x"), 503},
      {absl::DeadlineExceededError("x"), 504},
      {absl::InternalError("x"), 500},
      {absl::DataLossError("x"), 500},
  };
  for (const auto& [status, code] : cases) {
    EXPECT_EQ(http::HttpStatusFor(status), code) << status;
  }
  // 500 bodies never carry internals.
  EXPECT_EQ(http::ToHttpResponse(absl::InternalError("SELECT secret")).body,
            R"({"detail":"internal error"})");
}

TEST_P(RestApiTest, TimesAreRfc3339Utc) {
  StoreGuideOru();
  rapidjson::Document doc = ParseJson(Get("/api/lab-results?patient_id=12345&limit=1").body);
  EXPECT_STREQ(doc[0]["observation_date"].GetString(), "2026-02-21T11:00:00Z");
  absl::Time t;
  std::string error;
  ASSERT_TRUE(
      absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", doc[0]["received_at"].GetString(), &t, &error))
      << doc[0]["received_at"].GetString();
  EXPECT_LT(absl::AbsDuration(absl::Now() - t), absl::Minutes(5));
}

TEST(FormatRfc3339Test, MatchesAbslAtEveryPrecision) {
  // The hand-written formatter against absl's, over fractions, the epoch,
  // leap days and the four-digit edges.
  const absl::Time base =
      absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 58), absl::UTCTimeZone());
  for (const absl::Time t :
       {base, base + absl::Microseconds(1), base + absl::Milliseconds(120),
        base + absl::Microseconds(999999), absl::UnixEpoch(),
        absl::UnixEpoch() - absl::Microseconds(1),
        absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone()),
        absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
            absl::Microseconds(5)}) {
    EXPECT_EQ(http::FormatRfc3339(t),
              absl::FormatTime("%4Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()));
    EXPECT_EQ(http::FormatFhirInstant(t),
              absl::FormatTime("%4Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  }
  // Every 7th day and an odd time of day from 1600 to 2400: century and
  // 400-year leap rules, both sides of the epoch.
  const absl::Time from =
      absl::FromCivil(absl::CivilSecond(1600, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  for (int day = 0; day < 292200; day += 7) {
    const absl::Time t = from + absl::Hours(24) * day + absl::Seconds(day % 86400) +
                         absl::Microseconds(day % 3 == 0 ? 0 : day);
    ASSERT_EQ(http::FormatRfc3339(t),
              absl::FormatTime("%4Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()));
    ASSERT_EQ(http::FormatFhirInstant(t),
              absl::FormatTime("%4Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
  }
}

TEST(ParseQueryTest, DecodesPercentAndPlus) {
  auto q = http::ParseQuery("a=1&b=x%20y+z&&c&d=%zz");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[1].second, "x y z");
  EXPECT_EQ(q[2].first, "c");
  EXPECT_EQ(q[3].second, "%zz");
  EXPECT_EQ(http::PercentEncode("a b/c"), "a%20b%2Fc");
}

}  // namespace
}  // namespace bridge::api
