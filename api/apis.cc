// api/apis.cc: builds the use cases and the servers on top of them.
#include "api/apis.h"

#include <memory>
#include <string>
#include <utility>

#include "api/grpc/grpc_server.h"
#include "api/http/fhir_api.h"
#include "api/http/rest_api.h"
#include "api/service/orders.h"
#include "api/service/results.h"

namespace bridge::api {
namespace {

void Counter(std::string* out, const std::string& name, const std::string& help,
             const std::string& type, std::int64_t value) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
          std::to_string(value) + "\n";
}

bool IsFhir(std::string_view path) {
  return path == "/fhir" || path.rfind("/fhir/", 0) == 0 || path.rfind("/fhir?", 0) == 0;
}

class ApisImpl final : public Apis {
 public:
  ApisImpl(const Config& config, storage::Store& store, const ApisOptions& options,
           std::unique_ptr<service::TokenRegistry> tokens,
           std::unique_ptr<service::AccessAudit> audit)
      : store_(store),
        options_(options),
        tokens_(std::move(tokens)),
        audit_(std::move(audit)),
        results_(store),
        orders_(store, {.sending_application = config.identity.sending_application,
                        .sending_facility = config.identity.sending_facility,
                        .lis_endpoint = options.lis_endpoint,
                        .route = options.route_order,
                        .on_outbox_change = options.orders_changed,
                        .overdue_after = absl::Seconds(config.order_overdue_seconds)}),
        rest_(
            results_, orders_, *tokens_, audit_.get(), [this] { return Ready(); },
            [this] { return Metrics(); }, {.metrics_require_token = config.metrics_require_token}),
        fhir_(store, orders_, *tokens_, audit_.get(), config.identity.sending_facility) {}
  ~ApisImpl() override { Stop(); }

  absl::Status StartHttp(http::HttpServerOptions http_options) {
    absl::StatusOr<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Start(
        http_options,
        [this](const http::HttpRequest& r) {
          if (IsFhir(r.path)) {
            return fhir_.Handle(r);
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

  absl::Status StartGrpc(const grpc_api::GrpcServerOptions& options) {
    absl::StatusOr<std::unique_ptr<grpc_api::GrpcServer>> server =
        grpc_api::GrpcServer::Start(options, results_, orders_, store_, *tokens_, audit_.get());
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

  std::string Metrics() {
    std::string out;
    const storage::StoreStats s = store_.stats();
    Counter(&out, "labbridge_store_ingest_records_total", "Records that reached the committer.",
            "counter", s.ingest_records);
    Counter(&out, "labbridge_store_ingest_batches_total", "Ingest transactions committed.",
            "counter", s.ingest_batches);
    Counter(&out, "labbridge_store_ingest_failures_total", "Ingest records that failed.", "counter",
            s.ingest_failures);
    std::int64_t open = 0;
    bool db_ok = true;
    std::string cursor;
    for (int pages = 0; pages < 100; ++pages) {
      absl::StatusOr<service::ResultList> page =
          results_.ListCritical(false, service::kMaxPageSize, cursor);
      if (!page.ok()) {
        db_ok = false;
        break;
      }
      open += static_cast<std::int64_t>(page->results.size());
      if (page->next_cursor.empty()) {
        break;
      }
      cursor = page->next_cursor;
    }
    if (db_ok) {
      Counter(&out, "labbridge_critical_results_open", "Critical results not yet acknowledged.",
              "gauge", open);
    }
    Counter(&out, "labbridge_database_up", "1 when the last metrics query reached the database.",
            "gauge", db_ok ? 1 : 0);
    if (http_) {
      const http::HttpServerStats& h = http_->stats();
      Counter(&out, "labbridge_http_connections_accepted_total", "HTTP connections accepted.",
              "counter", static_cast<std::int64_t>(h.connections_accepted.load()));
      Counter(&out, "labbridge_http_connections_open", "HTTP connections open.", "gauge",
              h.active_connections.load());
      out +=
          "# HELP labbridge_http_responses_total HTTP responses by status class.\n"
          "# TYPE labbridge_http_responses_total counter\n";
      out += "labbridge_http_responses_total{class=\"2xx\"} " +
             std::to_string(h.responses_2xx.load()) + "\n";
      out += "labbridge_http_responses_total{class=\"4xx\"} " +
             std::to_string(h.responses_4xx.load()) + "\n";
      out += "labbridge_http_responses_total{class=\"5xx\"} " +
             std::to_string(h.responses_5xx.load()) + "\n";
      Counter(&out, "labbridge_http_request_timeouts_total", "Requests answered 503 on timeout.",
              "counter", static_cast<std::int64_t>(h.request_timeouts.load()));
    }
    Counter(&out, "labbridge_access_audit_records_total", "API calls recorded in the access audit.",
            "counter", static_cast<std::int64_t>(audit_->recorded()));
    if (options_.extra_metrics) {
      out += options_.extra_metrics();
    }
    return out;
  }

  storage::Store& store_;
  const ApisOptions options_;
  std::unique_ptr<service::TokenRegistry> tokens_;
  std::unique_ptr<service::AccessAudit> audit_;
  service::Results results_;
  service::Orders orders_;
  http::RestApi rest_;
  http::FhirApi fhir_;
  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<grpc_api::GrpcServer> grpc_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Apis>> StartApis(const Config& config, storage::Store& store,
                                                service::EventBus* /*events: WatchResults, SSE*/,
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
  auto apis =
      std::make_unique<ApisImpl>(config, store, options, *std::move(tokens), *std::move(audit));
  http::HttpServerOptions http_options = options.http;
  http_options.listen_host = config.http_listen_host;
  http_options.port = config.http_port;
  http_options.worker_threads = config.worker_threads;
  http_options.body_limit = static_cast<std::size_t>(config.http_max_body_bytes);
  http_options.request_timeout = absl::Seconds(config.http_request_timeout_seconds);
  apis->initial_admin_token_ = std::move(admin_token);
  if (absl::Status s = apis->StartHttp(http_options); !s.ok()) {
    return s;
  }
  grpc_api::GrpcServerOptions grpc_options;
  grpc_options.listen_host = config.http_listen_host;
  grpc_options.port = config.grpc_port;
  grpc_options.worker_threads = config.worker_threads;
  if (absl::Status s = apis->StartGrpc(grpc_options); !s.ok()) {
    return s;
  }
  return std::unique_ptr<Apis>(std::move(apis));
}

}  // namespace bridge::api
