// api/grpc/grpc_server.h
//
// The gRPC API: service labbridge.v1.LabBridge (proto/labbridge/v1/), the
// standard grpc.health.v1.Health (NOT_SERVING while the database does not
// answer; probed every second) and server reflection (v1alpha, the only one
// Debian's gRPC 1.51 has). Handlers only translate: they call api/service
// use cases on a worker pool and map errors with ToGrpcStatus, once.
//
//   absl::StatusOr<std::unique_ptr<GrpcServer>> server =
//       GrpcServer::Start(options, results, orders, store, tokens, &audit);
//   int port = (*server)->port();
//   (*server)->Stop();
//
// Every RPC needs `authorization: Bearer <token>` metadata and the role
// named in the .proto; every call is recorded in the access audit.
//
// Thread-safety: Stop is idempotent; the services must outlive the server.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/service/access_audit.h"
#include "api/service/auth.h"
#include "api/service/event_bus.h"
#include "api/service/orders.h"
#include "api/service/results.h"
#include "storage/store.h"

namespace grpc {
class Status;
}

namespace bridge::api::grpc_api {

// The one translation of a Status into a gRPC status (STYLE.md 3.3):
// absl::StatusCode and grpc::StatusCode share the google.rpc.Code numbers.
::grpc::Status ToGrpcStatus(const absl::Status& status);

struct GrpcServerOptions {
  std::string listen_host = "0.0.0.0";
  int port = 50051;  // 0: any free port
  int worker_threads = 4;
  // TLS (GRPC_TLS_CERT, GRPC_TLS_KEY): both set, or neither (plaintext).
  // Start refuses files that do not hold a PEM certificate / private key,
  // or a key that is not the certificate's, naming the variable.
  std::string tls_cert_file;
  std::string tls_key_file;
  // GRPC_TLS_CLIENT_CA: when set (with TLS), every client must present a
  // certificate that chains to this CA bundle (mutual TLS); the bearer token
  // is still required.
  std::string tls_client_ca_file;
  // WatchResults looks at the store this often; with an event bus, also at
  // once whenever a result it may want is published.
  absl::Duration watch_poll_interval = absl::Seconds(2);
};

class GrpcServer {
 public:
  // `events` may be null: WatchResults then polls every 200 ms.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, service::Results& results, service::Orders& orders,
      storage::Store& store, service::TokenRegistry& tokens, service::AccessAudit* audit,
      service::EventBus* events = nullptr);
  virtual ~GrpcServer() = default;
  virtual int port() const = 0;
  virtual void Stop() = 0;
};

}  // namespace bridge::api::grpc_api
