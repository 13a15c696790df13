// api/http/rest_api.h
//
// RestApi: the original guide's REST paths and the operator endpoints, as an
// HttpHandler. It only translates HTTP into calls on api/service use cases
// and their results into JSON (RapidJSON); errors become HTTP answers in one
// place, ToHttpResponse (STYLE.md 3.3).
//
//   /healthz                               process up (no token)
//   /readyz                                database reachable (no token)
//   /metrics                               Prometheus text (token optional)
//   POST /api/lab-orders                   orders:write   -> 201 order
//   GET  /api/lab-orders?patient_id=&status=&limit=&cursor=   results:read
//   GET  /api/lab-orders/{id}              results:read   (with its results)
//   POST /api/lab-orders/{id}/cancel       orders:write
//   GET  /api/lab-results?patient_id=&abnormal_only=&critical=&acknowledged=
//        &test_code=&from=&to=&limit=&cursor=               results:read
//   GET  /api/lab-results/critical?acknowledged=false       results:read
//   GET  /api/lab-results/{id}                              results:read
//   POST /api/lab-results/{id}/acknowledge {acknowledged_by?, note?}  criticals:ack
//   GET  /api/access-audit?patient_id=&limit=               audit:read
//   GET  /api/patients?q=&limit=           results:read   (patient search)
//   POST /api/events/ticket                results:read   -> 201 {ticket, expires_in}
//   GET  /api/events[?ticket=][&last_event_id=]  results:read  server-sent events
//   (the last three only when RestApiOptions names a Patients / EventFeed)
//
// Every /api call, refused ones included, is recorded in the AccessAudit
// (who, what, which patients, outcome, from where) before it is answered;
// if the record cannot be written the caller gets 503, not the data.
//
// Lists are JSON arrays (the guide's `jq '.[]'` works); the next page is in
// a `Link: <...>; rel="next"` header. Errors are FastAPI-shaped JSON:
// {"detail": "..."}, and for a bad body or parameter 422 with
// {"detail": [{"loc": ["body", "test_codes"], "msg": "...", "type": "value_error"}]}.
//
// Thread-safe; Handle blocks on storage (the server runs it on its pool).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "api/http/event_feed.h"
#include "api/http/server.h"
#include "api/service/access_audit.h"
#include "api/service/auth.h"
#include "api/service/orders.h"
#include "api/service/patients.h"
#include "api/service/results.h"

namespace bridge::api::http {

// The one translation of a Status into an HTTP status code (STYLE.md 3.3).
int HttpStatusFor(const absl::Status& status);
// A JSON error response {"detail": message} for `status`.
HttpResponse ToHttpResponse(const absl::Status& status);
// RFC 3339 UTC ("2026-02-21T11:00:00Z", fractional seconds only when set).
std::string FormatRfc3339(absl::Time t);
// The same with milliseconds always ("2026-02-21T11:00:00.000Z"), truncated:
// FHIR's instant (meta.lastUpdated, AuditEvent.recorded).
std::string FormatFhirInstant(absl::Time t);
// Parses YYYY-MM-DD or an RFC 3339 date-time; nullopt otherwise.
std::optional<absl::Time> ParseDateParam(std::string_view text);
// A JSON error response with an explicit HTTP status (server refusals).
HttpResponse JsonError(int http_status, std::string_view message);

struct RestApiOptions {
  bool metrics_require_token = false;
  // Optional parts; their paths answer 404 when null. Both must outlive the
  // RestApi.
  service::Patients* patients = nullptr;
  EventFeed* events = nullptr;
};

class RestApi {
 public:
  using ReadyProbe = std::function<absl::Status()>;
  using MetricsText = std::function<std::string()>;

  // `audit` may be null (nothing recorded; tests of other concerns).
  RestApi(service::Results& results, service::Orders& orders, service::TokenRegistry& tokens,
          service::AccessAudit* audit, ReadyProbe ready, MetricsText metrics,
          RestApiOptions options = {})
      : results_(results),
        orders_(orders),
        tokens_(tokens),
        audit_(audit),
        ready_(std::move(ready)),
        metrics_(std::move(metrics)),
        options_(options) {}
  RestApi(const RestApi&) = delete;
  RestApi& operator=(const RestApi&) = delete;

  HttpResponse Handle(const HttpRequest& request);

 private:
  using Patients = std::vector<std::string>;  // PMS ids touched, for the access audit
  HttpResponse Dispatch(const HttpRequest& request, service::Principal* who, Patients* patients);
  HttpResponse ListOrders(const HttpRequest& request, Patients* patients);
  HttpResponse CreateOrder(const HttpRequest& request, Patients* patients);
  HttpResponse GetOrder(std::int64_t id, Patients* patients);
  HttpResponse CancelOrder(std::int64_t id, Patients* patients);
  HttpResponse ListResults(const HttpRequest& request, bool critical_only, Patients* patients);
  HttpResponse GetResult(std::int64_t id, Patients* patients);
  HttpResponse Acknowledge(const HttpRequest& request, std::int64_t id,
                           const service::Principal& who);
  HttpResponse ListAccessAudit(const HttpRequest& request);
  HttpResponse SearchPatients(const HttpRequest& request, Patients* patients);
  HttpResponse IssueEventTicket(const HttpRequest& request, const service::Principal& who);
  HttpResponse OpenEventStream(const HttpRequest& request, const std::string& token);

  service::Results& results_;
  service::Orders& orders_;
  service::TokenRegistry& tokens_;
  service::AccessAudit* audit_;
  ReadyProbe ready_;
  MetricsText metrics_;
  const RestApiOptions options_;
};

// Authenticates the request's `Authorization: Bearer` header and checks
// `role`. Unauthenticated / PermissionDenied. `*authenticated` (optional)
// gets the token's principal whenever the token itself is valid, so a
// refusal for a missing role can be audited under the token's name.
absl::StatusOr<service::Principal> Authorize(service::TokenRegistry& tokens,
                                             const HttpRequest& request, service::Role role,
                                             service::Principal* authenticated = nullptr);

// The token of an `Authorization: Bearer` header ("" when there is none).
std::string_view BearerToken(const HttpRequest& request);

}  // namespace bridge::api::http
