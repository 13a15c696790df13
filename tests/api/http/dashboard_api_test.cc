// tests/api/http/dashboard_api_test.cc
//
// What the lab dashboard needs from the HTTP server, over the real
// HttpServer, RestApi, EventFeed, services and Store (SQLite and
// PostgreSQL), through real clients on loopback: GET /api/events
// (server-sent events: tickets, live results, acknowledgements, orders,
// replay, keep-alive, revocation, limits), GET /api/patients, the report and
// comment fields of results, and the embedded page at /lab.
#include <rapidjson/document.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/http/event_feed.h"
#include "api/service/event_bus.h"
#include "api/web/web_assets.h"
#include "storage/store.h"
#include "tests/api/http/http_test_client.h"
#include "tests/api/http/sse_test_client.h"
#include "tests/storage/store_fixture.h"
#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

using storage::testing::Backend;
using testing::Fetch;
using testing::HttpResult;
using testing::SseTestClient;
using namespace std::chrono_literals;

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError()) << text;
  return doc;
}

// An ORU for `pms_id` with one potassium result (critical when HH), the
// way the inbound pipeline stores it.
storage::IngestRecord PotassiumOru(const std::string& control_id, const std::string& pms_id,
                                   const std::string& value, const std::string& flag) {
  storage::IngestRecord record = storage::testing::MakeOru(control_id, pms_id, 0);
  record.patient = storage::PatientRecord{pms_id, "", "Doe", "Jane", "19900315", "F"};
  storage::ResultRecord r;
  r.test_code = "K";
  r.test_name = "Potassium";
  r.value = value;
  r.value_type = "NM";
  r.units = "mEq/L";
  r.reference_range = "3.5-5.0";
  r.abnormal_flag = flag;
  r.result_status = "F";
  r.filler_order_number = "F-" + control_id;
  r.report_code = "BMP";
  r.report_name = "Basic Metabolic Panel";
  r.comments = {"Specimen slightly hemolysed.", "Repeat advised."};
  r.critical = flag == "HH" || flag == "LL";
  record.results.push_back(r);
  return record;
}

class DashboardApiTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
    ASSERT_NE(store_, nullptr);
    ApisOptions options;
    options.http.stream_idle_interval = absl::Milliseconds(300);
    StartServer(options);
  }

  void StartServer(ApisOptions options) {
    if (apis_) {
      apis_->Stop();
    }
    apis_.reset();
    Config config;
    config.http_listen_host = "127.0.0.1";
    config.http_port = 0;
    config.grpc_port = 0;
    config.api_worker_threads = 2;
    config.api_tokens_file = (dir_.path() / "tokens.json").string();
    config.access_audit_file = (dir_.path() / "access.jsonl").string();
    absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store_, &bus_, options);
    ASSERT_TRUE(apis.ok()) << apis.status();
    apis_ = *std::move(apis);
    port_ = apis_->http_port();
    if (admin_.empty()) {
      admin_ = apis_->initial_admin_token();
      ASSERT_FALSE(admin_.empty());
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

  // Stores the record and publishes its results as the inbound pipeline
  // does after the commit. Returns the new result ids.
  std::vector<std::int64_t> Ingest(const storage::IngestRecord& record) {
    absl::StatusOr<storage::IngestOutcome> outcome = store_->Ingest(record);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    if (!outcome.ok()) {
      return {};
    }
    std::vector<service::ResultEvent> events;
    for (std::size_t i = 0; i < outcome->result_ids.size(); ++i) {
      events.push_back({.result_id = outcome->result_ids[i],
                        .patient_id = outcome->patient_id.value_or(0),
                        .pms_patient_id = record.patient ? record.patient->pms_patient_id : "",
                        .message_id = outcome->message_id,
                        .critical = record.results[i].critical,
                        .status = record.results[i].result_status,
                        .corrected = record.results[i].result_status == "C"});
    }
    bus_.Publish(events);
    return outcome->result_ids;
  }

  std::string Ticket(const std::string& token) {
    HttpResult r = Fetch(port_, "POST", "/api/events/ticket", token);
    EXPECT_EQ(r.status, 201) << r.body;
    rapidjson::Document doc = ParseJson(r.body);
    if (!doc.IsObject() || !doc.HasMember("ticket")) {
      return "";
    }
    EXPECT_EQ(doc["expires_in"].GetInt(), 30);
    EXPECT_EQ(r.Header("cache-control"), "no-store");
    return doc["ticket"].GetString();
  }

  std::unique_ptr<SseTestClient> OpenWithBearer(const std::string& extra = "") {
    return std::make_unique<SseTestClient>(
        port_, "/api/events" + extra,
        std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer " + admin_}});
  }

  std::string Metric(const std::string& name) {
    HttpResult r = Fetch(port_, "GET", "/metrics");
    std::smatch m;
    const std::regex line("\n" + name + " (\\S+)\n");
    return std::regex_search(r.body, m, line) ? m[1].str() : "";
  }

  bridge::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  service::EventBus bus_;
  std::unique_ptr<Apis> apis_;
  std::uint16_t port_ = 0;
  std::string admin_;
  std::string writer_;
};

TEST_P(DashboardApiTest, TicketOpensOneStreamOnceAndNeverTheTokenInTheUrl) {
  const std::string ticket = Ticket(admin_);
  ASSERT_FALSE(ticket.empty());
  EXPECT_EQ(ticket.find(admin_), std::string::npos);
  {
    SseTestClient stream(port_, "/api/events?ticket=" + ticket);
    ASSERT_EQ(stream.status(), 200) << stream.error();
    EXPECT_EQ(stream.Header("content-type"), "text/event-stream; charset=utf-8");
    EXPECT_EQ(stream.Header("cache-control"), "no-store");
    ASSERT_TRUE(stream.WaitFor("event: ready\n")) << stream.body();
    EXPECT_NE(stream.body().find("retry: 2000\n"), std::string::npos);
    EXPECT_NE(stream.body().find("data: {\"last_result_id\":0}"), std::string::npos);
  }
  // Single use: the same ticket again, an unknown one, none at all.
  for (const std::string& target :
       {"/api/events?ticket=" + ticket, std::string("/api/events?ticket=evt_bogus"),
        std::string("/api/events")}) {
    HttpResult r = Fetch(port_, "GET", target);
    EXPECT_EQ(r.status, 401) << target << " " << r.body;
    EXPECT_NE(r.body.find("\"detail\""), std::string::npos);
  }
  // A token without results:read gets no ticket; HEAD and POST are refused.
  EXPECT_EQ(Fetch(port_, "POST", "/api/events/ticket", writer_).status, 403);
  EXPECT_EQ(Fetch(port_, "POST", "/api/events/ticket").status, 401);
  EXPECT_EQ(Fetch(port_, "GET", "/api/events/ticket", admin_).status, 405);
  EXPECT_EQ(Fetch(port_, "POST", "/api/events", admin_).status, 405);

  // The access audit names the stream without the ticket.
  std::ifstream audit(dir_.path() / "access.jsonl");
  const std::string text((std::istreambuf_iterator<char>(audit)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"what\":\"GET /api/events\""), std::string::npos) << text;
  EXPECT_EQ(text.find(ticket), std::string::npos);
}

TEST_P(DashboardApiTest, ExpiredTicketIsRefused) {
  // Issued by one server (30 s lifetime) and redeemed after it: simulated by
  // a feed whose clock moves, through the public EventFeed API.
  service::Results results(*store_);
  absl::Time now = absl::Now();
  http::EventFeed feed(&bus_, results, {.clock = [&] { return now; }});
  absl::StatusOr<std::string> ticket = feed.IssueTicket({"nurse", service::kAllRoles}, "tok");
  ASSERT_TRUE(ticket.ok());
  now += absl::Seconds(31);
  EXPECT_EQ(feed.RedeemTicket(*ticket).status().code(), absl::StatusCode::kUnauthenticated);
  absl::StatusOr<std::string> second = feed.IssueTicket({"nurse", service::kAllRoles}, "tok");
  ASSERT_TRUE(second.ok());
  absl::StatusOr<http::EventFeed::Grant> grant = feed.RedeemTicket(*second);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->principal.name, "nurse");
  EXPECT_EQ(grant->token, "tok");
}

TEST_P(DashboardApiTest, StoredResultsAcknowledgementsAndOrdersArriveLive) {
  std::unique_ptr<SseTestClient> stream = OpenWithBearer();
  ASSERT_EQ(stream->status(), 200) << stream->error();
  ASSERT_TRUE(stream->WaitFor("event: ready\n"));

  const std::vector<std::int64_t> ids = Ingest(PotassiumOru("LIVE1", "12345", "6.8", "HH"));
  ASSERT_EQ(ids.size(), 1u);
  const std::string expected =
      absl::StrCat("id: ", ids[0], "\nevent: result\ndata: {\"result_id\":", ids[0],
                   ",\"patient_id\":12345,\"critical\":true,\"status\":\"F\",\"corrected\":false}"
                   "\n\n");
  ASSERT_TRUE(stream->WaitFor(expected)) << stream->body();
  // No value, name or units ever go out on the stream.
  EXPECT_EQ(stream->body().find("6.8"), std::string::npos);
  EXPECT_EQ(stream->body().find("Potassium"), std::string::npos);

  HttpResult ack =
      Fetch(port_, "POST", absl::StrCat("/api/lab-results/", ids[0], "/acknowledge"), admin_, "{}");
  ASSERT_EQ(ack.status, 200) << ack.body;
  ASSERT_TRUE(stream->WaitFor(absl::StrCat("event: acknowledged\ndata: {\"result_id\":", ids[0],
                                           ",\"patient_id\":12345}\n\n")))
      << stream->body();
  // A refused acknowledgement (already done) announces nothing.
  EXPECT_EQ(
      Fetch(port_, "POST", absl::StrCat("/api/lab-results/", ids[0], "/acknowledge"), admin_, "{}")
          .status,
      409);

  HttpResult order =
      Fetch(port_, "POST", "/api/lab-orders", admin_,
            R"({"patient_id": 12345, "test_codes": ["CBC", "BMP"], "ordering_provider": "Dr. Smith",
                "priority": "S"})");
  ASSERT_EQ(order.status, 201) << order.body;
  const std::int64_t order_id = ParseJson(order.body)["id"].GetInt64();
  ASSERT_TRUE(stream->WaitFor(absl::StrCat("event: order\ndata: {\"order_id\":", order_id,
                                           ",\"patient_id\":12345,\"status\":\"pending\"}")))
      << stream->body();
  ASSERT_EQ(
      Fetch(port_, "POST", absl::StrCat("/api/lab-orders/", order_id, "/cancel"), admin_).status,
      200);
  ASSERT_TRUE(stream->WaitFor(absl::StrCat("event: order\ndata: {\"order_id\":", order_id,
                                           ",\"patient_id\":12345,\"status\":\"cancelled\"}")))
      << stream->body();
  EXPECT_EQ(stream->body().find("event: acknowledged", stream->body().find("cancelled")),
            std::string::npos);
}

TEST_P(DashboardApiTest, ReconnectReplaysWhatWasMissed) {
  const std::vector<std::int64_t> first = Ingest(PotassiumOru("RP1", "12345", "5.9", "H"));
  const std::vector<std::int64_t> second = Ingest(PotassiumOru("RP2", "12345", "6.1", "H"));
  const std::vector<std::int64_t> third = Ingest(PotassiumOru("RP3", "777", "7.0", "HH"));
  ASSERT_EQ(third.size(), 1u);

  // Last-Event-ID header (what EventSource sends) and the query parameter.
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<SseTestClient> stream =
        i == 0 ? std::make_unique<SseTestClient>(port_, "/api/events",
                                                 std::vector<std::pair<std::string, std::string>>{
                                                     {"Authorization", "Bearer " + admin_},
                                                     {"Last-Event-ID", std::to_string(first[0])}})
               : OpenWithBearer(absl::StrCat("?last_event_id=", first[0]));
    ASSERT_EQ(stream->status(), 200);
    ASSERT_TRUE(stream->WaitFor(absl::StrCat("id: ", third[0], "\n"))) << stream->body();
    const std::string& body = stream->body();
    EXPECT_EQ(body.find(absl::StrCat("id: ", first[0], "\n")), std::string::npos);
    const std::size_t at_second = body.find(absl::StrCat("id: ", second[0], "\n"));
    ASSERT_NE(at_second, std::string::npos);
    EXPECT_LT(at_second, body.find(absl::StrCat("id: ", third[0], "\n")));  // oldest first
    EXPECT_NE(body.find("\"patient_id\":777,\"critical\":true"), std::string::npos);
    EXPECT_NE(body.find(absl::StrCat("{\"last_result_id\":", third[0], "}")), std::string::npos);
  }
  EXPECT_EQ(OpenWithBearer("?last_event_id=abc")->status(), 422);
}

TEST_P(DashboardApiTest, TooManyMissedEventsAskForAResync) {
  for (int i = 0; i < 3; ++i) {
    Ingest(PotassiumOru(absl::StrCat("RS", i), "12345", "4.0", "N"));
  }
  // More missed results than replay_limit (500 on the server): shown with a
  // feed whose limit is 1, through the EventFeed API.
  service::Results results(*store_);
  http::EventFeed feed(nullptr, results, {.replay_limit = 1});
  absl::StatusOr<std::shared_ptr<http::ResponseStream>> stream = feed.Open(1, nullptr);
  ASSERT_TRUE(stream.ok()) << stream.status();
  (*stream)->Start([] {});
  std::optional<std::string> text = (*stream)->Next(false);
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("event: resync\n"), std::string::npos) << *text;
  EXPECT_EQ(text->find("event: result\n"), std::string::npos) << *text;
  (*stream)->Close();
}

TEST_P(DashboardApiTest, IdleStreamsGetKeepAlivesAndEndWhenTheTokenIsRevoked) {
  absl::StatusOr<std::string> nurse = apis_->tokens().Create(
      "nurse", static_cast<std::uint32_t>(service::Role::kResultsRead), absl::Now());
  ASSERT_TRUE(nurse.ok());
  SseTestClient stream(port_, "/api/events?ticket=" + Ticket(*nurse));
  ASSERT_EQ(stream.status(), 200) << stream.error();
  ASSERT_TRUE(stream.WaitFor(": keep-alive\n\n", 3s)) << stream.body();
  ASSERT_TRUE(apis_->tokens().Revoke("nurse").ok());
  ASSERT_TRUE(stream.WaitFor("event: unauthorized\n", 5s)) << stream.body();
  EXPECT_TRUE(stream.WaitForEnd(3s));
}

TEST_P(DashboardApiTest, ClosedClientsFreeTheirStreamAndTheLimitHolds) {
  ApisOptions options;
  options.http.max_streams = 1;
  StartServer(options);
  std::unique_ptr<SseTestClient> first = OpenWithBearer();
  ASSERT_EQ(first->status(), 200);
  ASSERT_TRUE(first->WaitFor("event: ready\n"));
  EXPECT_EQ(Metric("labbridge_event_streams_open"), "1");
  {
    std::unique_ptr<SseTestClient> second = OpenWithBearer();
    EXPECT_EQ(second->status(), 503);
  }
  first->Close();
  // The server notices the close without waiting for a keep-alive.
  std::string open;
  for (int i = 0; i < 50 && (open = Metric("labbridge_event_streams_open")) != "0"; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(open, "0");
  std::unique_ptr<SseTestClient> third = OpenWithBearer();
  EXPECT_EQ(third->status(), 200);
  EXPECT_TRUE(third->WaitFor("event: ready\n"));
}

TEST_P(DashboardApiTest, StoppingTheServerEndsOpenStreams) {
  std::unique_ptr<SseTestClient> stream = OpenWithBearer();
  ASSERT_TRUE(stream->WaitFor("event: ready\n"));
  apis_.reset();
  EXPECT_TRUE(stream->WaitForEnd(5s));
  // Results published after the stop reach nobody and break nothing.
  Ingest(PotassiumOru("AFTER", "12345", "6.9", "HH"));
}

TEST_P(DashboardApiTest, PatientSearchByPmsIdOrName) {
  Ingest(PotassiumOru("PS1", "12345", "4.1", "N"));
  Ingest(PotassiumOru("PS2", "A-77", "4.2", "N"));
  HttpResult r = Fetch(port_, "GET", "/api/patients?q=12345", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc = ParseJson(r.body);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.Size(), 1u);
  EXPECT_EQ(doc[0]["patient_id"].GetInt64(), 12345);
  EXPECT_STREQ(doc[0]["family_name"].GetString(), "Doe");
  EXPECT_STREQ(doc[0]["given_name"].GetString(), "Jane");
  EXPECT_STREQ(doc[0]["birth_date"].GetString(), "19900315");

  r = Fetch(port_, "GET", "/api/patients?q=jane%20DOE", admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  doc = ParseJson(r.body);
  ASSERT_EQ(doc.Size(), 2u);
  std::set<std::string> ids;
  for (const auto& p : doc.GetArray()) {
    ids.insert(p["patient_id"].IsString() ? p["patient_id"].GetString()
                                          : std::to_string(p["patient_id"].GetInt64()));
  }
  EXPECT_EQ(ids, (std::set<std::string>{"12345", "A-77"}));
  EXPECT_EQ(ParseJson(Fetch(port_, "GET", "/api/patients?q=smith", admin_).body).Size(), 0u);

  EXPECT_EQ(Fetch(port_, "GET", "/api/patients", admin_).status, 422);
  EXPECT_EQ(Fetch(port_, "GET", "/api/patients?q=%20", admin_).status, 422);
  EXPECT_EQ(Fetch(port_, "GET", "/api/patients?q=a+b+c+d+e+f", admin_).status, 422);
  EXPECT_EQ(Fetch(port_, "GET", "/api/patients?q=doe&limit=0", admin_).status, 422);
  EXPECT_EQ(Fetch(port_, "GET", "/api/patients?q=doe").status, 401);
  EXPECT_EQ(Fetch(port_, "GET", "/api/patients?q=doe", writer_).status, 403);
  EXPECT_EQ(Fetch(port_, "POST", "/api/patients?q=doe", admin_).status, 405);

  // The access audit names the patients a search returned.
  HttpResult audit = Fetch(port_, "GET", "/api/access-audit?patient_id=A-77", admin_);
  ASSERT_EQ(audit.status, 200);
  EXPECT_NE(audit.body.find("GET /api/patients"), std::string::npos) << audit.body;
}

TEST_P(DashboardApiTest, ResultsCarryTheirReportAndLabComments) {
  const std::vector<std::int64_t> ids = Ingest(PotassiumOru("RC1", "12345", "6.8", "HH"));
  ASSERT_EQ(ids.size(), 1u);
  HttpResult r = Fetch(port_, "GET", absl::StrCat("/api/lab-results/", ids[0]), admin_);
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc = ParseJson(r.body);
  EXPECT_STREQ(doc["report_code"].GetString(), "BMP");
  EXPECT_STREQ(doc["report_name"].GetString(), "Basic Metabolic Panel");
  ASSERT_TRUE(doc["comments"].IsArray());
  ASSERT_EQ(doc["comments"].Size(), 2u);
  EXPECT_STREQ(doc["comments"][0].GetString(), "Specimen slightly hemolysed.");
  EXPECT_STREQ(doc["comments"][1].GetString(), "Repeat advised.");
}

TEST_P(DashboardApiTest, TheDashboardIsServedAtLab) {
  for (const char* path : {"/lab", "/lab/", "/lab/index.html"}) {
    HttpResult r = Fetch(port_, "GET", path);
    ASSERT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.Header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(r.body.find("<label for=\"token\">API token</label>"), std::string::npos);
    const std::string csp = r.Header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(r.Header("x-content-type-options"), "nosniff");
    EXPECT_EQ(r.Header("referrer-policy"), "no-referrer");
  }
  // Every file the page and its modules load is embedded, with its type;
  // nothing comes from another origin.
  std::set<std::string> wanted;
  const std::regex reference(R"((?:src|href)="(/lab/[^"]+)\"|from '\./([^']+)')");
  for (const web::Asset& asset : web::Assets()) {
    std::string body(asset.body);
    // The SVG namespace is a name, not a download.
    for (std::size_t at; (at = body.find("http://www.w3.org/2000/svg")) != std::string::npos;) {
      body.erase(at, 26);
    }
    EXPECT_EQ(body.find("http://"), std::string::npos) << asset.path;
    EXPECT_EQ(body.find("https://"), std::string::npos) << asset.path;
    for (std::sregex_iterator it(body.begin(), body.end(), reference), end; it != end; ++it) {
      wanted.insert((*it)[1].matched ? (*it)[1].str() : "/lab/" + (*it)[2].str());
    }
  }
  EXPECT_GE(wanted.size(), 9u);
  for (const std::string& path : wanted) {
    HttpResult r = Fetch(port_, "GET", path);
    EXPECT_EQ(r.status, 200) << path;
    if (path.ends_with(".js")) {
      EXPECT_EQ(r.Header("content-type"), "text/javascript; charset=utf-8") << path;
    }
    if (path.ends_with(".css")) {
      EXPECT_EQ(r.Header("content-type"), "text/css; charset=utf-8") << path;
    }
  }
  // Revalidation by ETag, unknown files, methods.
  HttpResult app = Fetch(port_, "GET", "/lab/app.js");
  ASSERT_FALSE(app.Header("etag").empty());
  EXPECT_EQ(app.Header("cache-control"), "no-cache");
  testing::HttpTestClient client(port_);
  HttpResult again = client.Send("GET", "/lab/app.js", {{"If-None-Match", app.Header("etag")}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(Fetch(port_, "GET", "/lab/missing.js").status, 404);
  EXPECT_EQ(Fetch(port_, "GET", "/lab/../api/lab-results").status, 404);
  EXPECT_EQ(Fetch(port_, "POST", "/lab/").status, 405);
  EXPECT_EQ(Fetch(port_, "GET", "/laboratory").status, 404);  // not the dashboard's
}

INSTANTIATE_TEST_SUITE_P(Backends, DashboardApiTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? std::string("Sqlite")
                                                                 : std::string("Postgres");
                         });

}  // namespace
}  // namespace bridge::api
