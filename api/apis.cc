// api/apis.cc: builds the use cases and the servers on top of them.
#include "api/apis.h"

#include <malloc.h>

#include <memory>
#include <string>
#include <utility>

#include "api/grpc/grpc_server.h"
#include "api/http/event_feed.h"
#include "api/http/fhir_api.h"
#include "api/http/rest_api.h"
#include "api/http/web_ui.h"
#include "api/service/metrics.h"
#include "api/service/orders.h"
#include "api/service/patients.h"
#include "api/service/results.h"

namespace bridge::api {
namespace {

bool IsFhir(std::string_view path) {
  return path == "/fhir" || path.rfind("/fhir/", 0) == 0 || path.rfind("/fhir?", 0) == 0;
}

class ApisImpl final : public Apis {
 public:
  ApisImpl(const Config& config, storage::Store& store, service::EventBus* events,
           const ApisOptions& options, std::unique_ptr<service::TokenRegistry> tokens,
           std::unique_ptr<service::AccessAudit> audit)
      : store_(store),
        options_(options),
        own_metrics_(options.metrics == nullptr ? std::make_unique<service::Metrics>() : nullptr),
        metrics_(options.metrics != nullptr ? options.metrics : own_metrics_.get()),
        tokens_(std::move(tokens)),
        audit_(std::move(audit)),
        results_(store),
        orders_(store, {.sending_application = config.identity.sending_application,
                        .sending_facility = config.identity.sending_facility,
                        .lis_endpoint = options.lis_endpoint,
                        .route = options.route_order,
                        .on_outbox_change = options.orders_changed,
                        .overdue_after = absl::Seconds(config.order_overdue_seconds)}),
        patients_(store),
        feed_(events, results_),
        rest_(
            results_, orders_, *tokens_, audit_.get(), [this] { return Ready(); },
            [this] { return Metrics(); },
            {.metrics_require_token = config.metrics_require_token,
             .patients = &patients_,
             .events = &feed_}),
        fhir_(store, orders_, *tokens_, audit_.get(), config.identity.sending_facility) {}
  ~ApisImpl() override { Stop(); }

  absl::Status StartHttp(http::HttpServerOptions http_options) {
    absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Start(
        http_options,
        [this](const http::HttpRequest& r) {
          if (IsFhir(r.path)) {
            return fhir_.Handle(r);
          }
          if (http::WebUi::Owns(r.path)) {
            return web_.Handle(r);
          }
          return rest_.Handle(r);
        },
        [](int status, std::string_view message, std::string_view target) {
          if (IsFhir(target)) {
            return http::FhirError(status, status == 413 ? "too-costly" : "processing", message);
          }
          return http::JsonError(status, message);
        });
    if (!server.ok()) {
      return server.status();
    }
    http_ = *std::move(server);
    return absl::OkStatus();
  }

  std::uint16_t http_port() const override { return http_ ? http_->port() : 0; }
  int grpc_port() const override { return grpc_ ? grpc_->port() : 0; }

  absl::Status StartGrpc(const grpc_api::GrpcServerOptions& options, service::EventBus* events) {
    absl::StatusOr<std::unique_ptr<grpc_api::GrpcServer>> server = grpc_api::GrpcServer::Start(
        options, results_, orders_, store_, *tokens_, audit_.get(), events);
    if (!server.ok()) {
      return server.status();
    }
    grpc_ = *std::move(server);
    return absl::OkStatus();
  }
  service::TokenRegistry& tokens() override { return *tokens_; }
  service::AccessAudit& access_audit() override { return *audit_; }
  const std::string& initial_admin_token() const override { return initial_admin_token_; }
  std::string initial_admin_token_;
  void Stop() override {
    if (http_) {
      http_->Stop();
    }
    if (grpc_) {
      grpc_->Stop();
    }
  }

 private:
  absl::Status Ready() {
    storage::MessageQuery query;
    query.limit = 1;
    absl::StatusOr<storage::MessagePage> page = store_.ListMessages(query);
    if (!page.ok()) {
      return page.status();
    }
    return absl::OkStatus();
  }

  // The metrics registry (messages, ACK latency, results stored) and what
  // the store and the servers count, read now.
  std::string Metrics() {
    using Type = service::ScrapedFamily::Type;
    std::vector<service::ScrapedFamily> scraped;
    const auto add = [&](const char* name, const char* help, Type type, double value) {
      scraped.push_back({name, help, type, {{{}, value}}});
    };
    const storage::StoreStats s = store_.stats();
    add("labbridge_store_ingest_records_total", "Records that reached the committer.",
        Type::kCounter, static_cast<double>(s.ingest_records));
    add("labbridge_store_ingest_batches_total", "Ingest transactions committed.", Type::kCounter,
        static_cast<double>(s.ingest_batches));
    add("labbridge_store_ingest_failures_total", "Ingest records that failed.", Type::kCounter,
        static_cast<double>(s.ingest_failures));
    add("labbridge_database_errors_total",
        "Queries, transactions and ingest records that failed on the database (connection lost, "
        "disk full, lock timeout).",
        Type::kCounter, static_cast<double>(s.database_errors));
    absl::StatusOr<storage::OpenWork> work = store_.CountOpenWork();
    if (work.ok()) {
      add("labbridge_critical_results_open", "Critical results not yet acknowledged.", Type::kGauge,
          static_cast<double>(work->open_critical_results));
      add("labbridge_outbox_depth", "Outbox rows (orders, cancels) waiting to be sent to a LIS.",
          Type::kGauge, static_cast<double>(work->outbox_pending));
    }
    add("labbridge_database_up", "1 when the last metrics query reached the database.",
        Type::kGauge, work.ok() ? 1 : 0);
    if (http_) {
      const http::HttpServerStats& h = http_->stats();
      add("labbridge_http_connections_accepted_total", "HTTP connections accepted.", Type::kCounter,
          static_cast<double>(h.connections_accepted.load()));
      add("labbridge_http_connections_open", "HTTP connections open.", Type::kGauge,
          static_cast<double>(h.active_connections.load()));
      scraped.push_back({"labbridge_http_responses_total",
                         "HTTP responses by status class.",
                         Type::kCounter,
                         {{{{"class", "2xx"}}, static_cast<double>(h.responses_2xx.load())},
                          {{{"class", "4xx"}}, static_cast<double>(h.responses_4xx.load())},
                          {{{"class", "5xx"}}, static_cast<double>(h.responses_5xx.load())}}});
      add("labbridge_http_request_timeouts_total", "Requests answered 503 on timeout.",
          Type::kCounter, static_cast<double>(h.request_timeouts.load()));
      add("labbridge_event_streams_open", "GET /api/events streams open.", Type::kGauge,
          static_cast<double>(h.open_streams.load()));
    }
    add("labbridge_access_audit_records_total", "API calls recorded in the access audit.",
        Type::kCounter, static_cast<double>(audit_->recorded()));
    std::string text = metrics_->Text(scraped);
    if (options_.extra_metrics) {
      text += options_.extra_metrics();
    }
    return text;
  }

  storage::Store& store_;
  const ApisOptions options_;
  std::unique_ptr<service::Metrics> own_metrics_;  // when the options bring none
  service::Metrics* metrics_;
  std::unique_ptr<service::TokenRegistry> tokens_;
  std::unique_ptr<service::AccessAudit> audit_;
  service::Results results_;
  service::Orders orders_;
  service::Patients patients_;
  http::EventFeed feed_;  // before http_: the server's streams point into it
  http::RestApi rest_;
  http::FhirApi fhir_;
  http::WebUi web_;
  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<grpc_api::GrpcServer> grpc_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Apis>> StartApis(const Config& config, storage::Store& store,
                                                service::EventBus* events,
                                                const ApisOptions& options) {
  absl::StatusOr<std::unique_ptr<service::TokenRegistry>> tokens =
      service::TokenRegistry::Open(config.api_tokens_file);
  if (!tokens.ok()) {
    return tokens.status();
  }
  std::string admin_token;
  if ((*tokens)->empty()) {
    absl::StatusOr<std::string> created =
        (*tokens)->Create("admin", service::kAllRoles, absl::Now());
    if (!created.ok()) {
      return created.status();
    }
    admin_token = *std::move(created);
  }
  absl::StatusOr<std::unique_ptr<service::AccessAudit>> audit =
      service::AccessAudit::Open(config.access_audit_file);
  if (!audit.ok()) {
    return audit.status();
  }
  auto apis = std::make_unique<ApisImpl>(config, store, events, options, *std::move(tokens),
                                         *std::move(audit));
  http::HttpServerOptions http_options = options.http;
  http_options.listen_host = config.http_listen_host;
  http_options.port = config.http_port;
  http_options.worker_threads = config.api_worker_threads;
  http_options.body_limit = static_cast<std::size_t>(config.http_max_body_bytes);
  http_options.request_timeout = absl::Seconds(config.http_request_timeout_seconds);
  apis->initial_admin_token_ = std::move(admin_token);
  if (absl::Status s = apis->StartHttp(http_options); !s.ok()) {
    return s;
  }
  grpc_api::GrpcServerOptions grpc_options;
  grpc_options.listen_host = config.http_listen_host;
  grpc_options.port = config.grpc_port;
  grpc_options.worker_threads = config.api_worker_threads;
  grpc_options.watch_poll_interval = options.watch_poll_interval;
  grpc_options.tls_cert_file = config.grpc_tls_cert_file;
  grpc_options.tls_key_file = config.grpc_tls_key_file;
  grpc_options.tls_client_ca_file = config.grpc_tls_client_ca_file;
  if (absl::Status s = apis->StartGrpc(grpc_options, events); !s.ok()) {
    return s;
  }
  return std::unique_ptr<Apis>(std::move(apis));
}

void TuneAllocatorForServing() {
  // glibc hands the free top of each thread's heap back to the kernel once
  // it passes 128 KiB, and maps big blocks on their own: a 50 KB result page
  // then cost an madvise and fresh page faults per request (a fifth of the
  // server's kernel time in wrk runs). Keep up to 256 MiB for reuse, and
  // take blocks below 16 MiB from the heaps.
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
}

}  // namespace bridge::api
