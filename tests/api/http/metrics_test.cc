// tests/api/http/metrics_test.cc
//
// /metrics wired as the composition root wires it: the MLLP handler counts
// every message it answers (type, ACK code, ACK latency, results stored) in
// the service::Metrics that StartApis serves, beside the store's gauges
// (open criticals, outbox depth, database errors) and the listeners'
// connection counters. A real MLLP socket, a real Store (SQLite and
// PostgreSQL) and a real HTTP client.
#include "api/service/metrics.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"

#include "api/apis.h"
#include "api/config.h"
#include "api/http/mllp_metrics.h"
#include "api/mllp_handler.h"
#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "mllp/client.h"
#include "mllp/server.h"
#include "storage/store.h"
#include "tests/api/http/http_test_client.h"
#include "tests/storage/store_fixture.h"
#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

using storage::testing::Backend;
using testing::Fetch;
using testing::HttpResult;

// The value of one series (name with its labels, as the text format writes
// them) in a Prometheus text body; nullopt when absent.
std::optional<double> Sample(const std::string& body, const std::string& series) {
  std::size_t at = 0;
  while ((at = body.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || body[at - 1] == '\n') {
      return std::strtod(body.c_str() + at + series.size() + 1, nullptr);
    }
    at += series.size();
  }
  return std::nullopt;
}

std::string Msa1(const std::string& ack) {
  const std::size_t msa = ack.find("MSA|");
  return msa == std::string::npos ? "" : ack.substr(msa + 4, 2);
}

class MetricsTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
    ASSERT_NE(store_, nullptr);

    ingest_ = std::make_unique<service::Ingest>(*store_, bus_, service::IngestOptions{});
    handler_ = std::make_unique<MllpHandler>(*ingest_, 2, 1 << 20, &metrics_);
    mllp::ServerOptions mllp_options;
    mllp_options.listen_host = "127.0.0.1";
    mllp_options.port = 0;
    absl::StatusOr<std::unique_ptr<mllp::Server>> server =
        mllp::Server::Start(mllp_options, *handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    mllp_ = *std::move(server);

    Config config;
    config.http_listen_host = "127.0.0.1";
    config.http_port = 0;
    config.grpc_port = 0;
    config.api_worker_threads = 2;
    config.api_tokens_file = (dir_.path() / "tokens.json").string();
    config.access_audit_file = (dir_.path() / "access.jsonl").string();
    ApisOptions options;
    options.metrics = &metrics_;
    mllp::Server* mllp_server = mllp_.get();
    options.extra_metrics = [mllp_server] { return http::MllpMetricsText(mllp_server->stats()); };
    absl::StatusOr<std::unique_ptr<Apis>> apis = StartApis(config, *store_, &bus_, options);
    ASSERT_TRUE(apis.ok()) << apis.status();
    apis_ = *std::move(apis);
    admin_ = apis_->initial_admin_token();

    mllp::ClientOptions client_options;
    client_options.port = mllp_->port();
    absl::StatusOr<std::unique_ptr<mllp::Client>> client =
        mllp::Client::Create(client_options, nullptr);  // the first reply answers
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    if (apis_) {
      apis_->Stop();
    }
    if (mllp_) {
      mllp_->Stop();
    }
    if (handler_) {
      handler_->Shutdown();
    }
  }

  std::string Send(const std::string& message) {
    absl::StatusOr<mllp::Exchange> exchange = client_->SendAndAwait(message, "");
    EXPECT_TRUE(exchange.ok()) << exchange.status();
    return exchange.ok() ? exchange->reply : "";
  }

  std::string Scrape() {
    HttpResult r = Fetch(apis_->http_port(), "GET", "/metrics");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("content-type").rfind("text/plain", 0), 0u) << r.Header("content-type");
    return r.body;
  }

  bridge::testing::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  service::EventBus bus_;
  service::Metrics metrics_;
  std::unique_ptr<service::Ingest> ingest_;
  std::unique_ptr<MllpHandler> handler_;
  std::unique_ptr<mllp::Server> mllp_;
  std::unique_ptr<Apis> apis_;
  std::unique_ptr<mllp::Client> client_;
  std::string admin_;
};

TEST_P(MetricsTest, MessagesAckLatencyResultsAndStoreGauges) {
  const std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                         "tests/fixtures/hl7/guide_sample_oru.hl7");
  ASSERT_EQ(Msa1(Send(oru)), "AA");
  ASSERT_EQ(Msa1(Send(oru)), "AA");  // a resend: the original ACK, nothing stored again
  const std::string bad_code = Msa1(Send("this is not HL7"));
  ASSERT_FALSE(bad_code.empty());
  ASSERT_NE(bad_code, "AA");

  std::string body = Scrape();
  const std::string aa =
      R"(labbridge_hl7_messages_total{ack_code="AA",direction="in",type="ORU^R01"})";
  EXPECT_EQ(Sample(body, aa), 2) << body;
  EXPECT_EQ(Sample(body, R"(labbridge_hl7_messages_total{ack_code=")" + bad_code +
                             R"(",direction="in",type="unknown"})"),
            1)
      << body;
  EXPECT_NE(body.find("# TYPE labbridge_ack_latency_seconds histogram"), std::string::npos);
  EXPECT_EQ(Sample(body, "labbridge_ack_latency_seconds_count"), 3) << body;
  EXPECT_EQ(Sample(body, R"(labbridge_ack_latency_seconds_bucket{le="+Inf"})"), 3);
  EXPECT_GT(Sample(body, "labbridge_ack_latency_seconds_sum").value_or(0), 0);
  EXPECT_EQ(Sample(body, "labbridge_results_stored_total"), 5);
  // The potassium 6.8 HH result waits for acknowledgement; no order yet.
  EXPECT_EQ(Sample(body, "labbridge_critical_results_open"), 1);
  EXPECT_EQ(Sample(body, "labbridge_outbox_depth"), 0);
  EXPECT_EQ(Sample(body, "labbridge_database_errors_total"), 0);
  EXPECT_EQ(Sample(body, "labbridge_database_up"), 1);
  EXPECT_EQ(Sample(body, "labbridge_mllp_connections_open"), 1);
  EXPECT_EQ(Sample(body, "labbridge_mllp_frames_received_total"), 3);
  EXPECT_EQ(Sample(body, "labbridge_http_connections_open"), 1);  // this scrape
  EXPECT_TRUE(Sample(body, R"(labbridge_http_responses_total{class="2xx"})").has_value());

  // An order waits in the outbox; acknowledging the critical closes it.
  HttpResult order =
      Fetch(apis_->http_port(), "POST", "/api/lab-orders", admin_,
            R"({"patient_id": 12345, "test_codes": ["CBC"], "ordering_provider": "Dr. Smith"})");
  ASSERT_EQ(order.status, 201) << order.body;
  HttpResult critical = Fetch(apis_->http_port(), "GET", "/api/lab-results/critical", admin_);
  const std::size_t id_at = critical.body.find("\"id\":");
  ASSERT_NE(id_at, std::string::npos) << critical.body;
  const long id = std::strtol(critical.body.c_str() + id_at + 5, nullptr, 10);
  ASSERT_EQ(Fetch(apis_->http_port(), "POST",
                  "/api/lab-results/" + std::to_string(id) + "/acknowledge", admin_, "{}")
                .status,
            200);
  body = Scrape();
  EXPECT_EQ(Sample(body, "labbridge_outbox_depth"), 1) << body;
  EXPECT_EQ(Sample(body, "labbridge_critical_results_open"), 0);
  EXPECT_GE(Sample(body, R"(labbridge_http_responses_total{class="2xx"})").value_or(0), 3);
}

TEST_P(MetricsTest, ControlIdReuseIsCounted) {
  const std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                         "tests/fixtures/hl7/guide_sample_oru.hl7");
  ASSERT_EQ(Msa1(Send(oru)), "AA");
  ASSERT_EQ(Msa1(Send(oru)), "AA");  // the same bytes again: a duplicate, not a reuse
  EXPECT_EQ(Sample(Scrape(), "labbridge_hl7_control_id_reused_total"), 0);
  // The same sender and MSH-10 (MSG001) with another value: a reuse.
  std::string changed = oru;
  const std::size_t at = changed.find("|6.8|");
  ASSERT_NE(at, std::string::npos);
  changed.replace(at, 5, "|6.9|");
  ASSERT_EQ(Msa1(Send(changed)), "AA");
  EXPECT_EQ(Sample(Scrape(), "labbridge_hl7_control_id_reused_total"), 1);
}

TEST(MetricsRegistryTest, SenderChosenTypesAreBoundedAndSanitized) {
  service::Metrics metrics;
  metrics.CountMessage(service::Metrics::Direction::kOut, "ORM^O01\"} 1\n", "A\"");
  for (int i = 0; i < 200; ++i) {
    metrics.CountMessage(service::Metrics::Direction::kIn, "Z" + std::to_string(i) + "^X", "AA");
  }
  const std::string text = metrics.Text({});
  EXPECT_EQ(
      Sample(text, R"(labbridge_hl7_messages_total{ack_code="AA",direction="in",type="Z0^X"})"), 1);
  // Beyond kMaxMessageTypes distinct types, the rest share "other".
  EXPECT_EQ(
      Sample(text, R"(labbridge_hl7_messages_total{ack_code="AA",direction="in",type="other"})"),
      200 - service::Metrics::kMaxMessageTypes + 1);
  // Quotes and newlines from a sender never reach the text format.
  EXPECT_EQ(
      Sample(text,
             R"(labbridge_hl7_messages_total{ack_code="A_",direction="out",type="ORM^O01___1_"})"),
      1)
      << text;
}

INSTANTIATE_TEST_SUITE_P(Backends, MetricsTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

}  // namespace
}  // namespace bridge::api
