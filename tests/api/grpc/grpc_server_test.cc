// tests/api/grpc/grpc_server_test.cc: the gRPC edge's error table. The RPCs
// themselves are exercised by @grpc/grpc-js in tests/interop.
#include "api/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include "gtest/gtest.h"

namespace bridge::api::grpc_api {
namespace {

TEST(ToGrpcStatusTest, OneTableForEveryCode) {
  const std::pair<absl::Status, ::grpc::StatusCode> cases[] = {
      {absl::OkStatus(), ::grpc::StatusCode::OK},
      {absl::InvalidArgumentError("x"), ::grpc::StatusCode::INVALID_ARGUMENT},
      {absl::UnauthenticatedError("x"), ::grpc::StatusCode::UNAUTHENTICATED},
      {absl::PermissionDeniedError("x"), ::grpc::StatusCode::PERMISSION_DENIED},
      {absl::NotFoundError("x"), ::grpc::StatusCode::NOT_FOUND},
      {absl::AlreadyExistsError("x"), ::grpc::StatusCode::ALREADY_EXISTS},
      {absl::FailedPreconditionError("x"), ::grpc::StatusCode::FAILED_PRECONDITION},
      {absl::UnimplementedError("x"), ::grpc::StatusCode::UNIMPLEMENTED},
      {absl::UnavailableError("x"), ::grpc::StatusCode::UNAVAILABLE},
      {absl::DeadlineExceededError("x"), ::grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::InternalError("x"), ::grpc::StatusCode::INTERNAL},
  };
  for (const auto& [status, code] : cases) {
    EXPECT_EQ(ToGrpcStatus(status).error_code(), code) << status;
  }
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("no such order")).error_message(), "no such order");
  // Internal details (SQL, hosts) never leave the process.
  EXPECT_EQ(ToGrpcStatus(absl::InternalError("SELECT secret")).error_message(), "internal error");
}

}  // namespace
}  // namespace bridge::api::grpc_api
