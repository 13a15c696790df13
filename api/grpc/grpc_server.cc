// api/grpc/grpc_server.cc
#include "api/grpc/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "api/http/rest_api.h"
#include "labbridge/v1/labbridge.grpc.pb.h"

namespace bridge::api::grpc_api {
namespace {

namespace pb = ::labbridge::v1;

std::string OptTime(const std::optional<absl::Time>& t) {
  return t.has_value() ? http::FormatRfc3339(*t) : "";
}

void ToProto(const service::ResultView& view, pb::Result* out) {
  const storage::StoredResult& r = view.result;
  out->set_id(r.id);
  out->set_patient_id(view.pms_patient_id);
  out->set_lab_order_id(r.lab_order_id.value_or(0));
  out->set_test_code(r.result.test_code);
  out->set_test_name(r.result.test_name);
  out->set_value(r.result.value);
  out->set_value_type(r.result.value_type);
  out->set_units(r.result.units);
  out->set_reference_range(r.result.reference_range);
  out->set_abnormal_flag(r.result.abnormal_flag);
  out->set_result_status(r.result.result_status);
  out->set_observation_date(OptTime(r.result.observation_date));
  out->set_received_at(http::FormatRfc3339(r.received_at));
  out->set_critical(r.result.critical);
  out->set_acknowledged(r.acknowledged_at.has_value());
  out->set_acknowledged_by(r.acknowledged_by);
  out->set_acknowledged_at(OptTime(r.acknowledged_at));
  out->set_acknowledgement_note(r.acknowledgement_note);
  out->set_hl7_message_id(r.hl7_message_id);
  out->set_sending_facility(r.result.sending_facility);
  out->set_filler_order_number(r.result.filler_order_number);
  out->set_placer_order_number(r.result.placer_order_number);
}

void ToProto(const service::OrderView& view, pb::Order* out) {
  const storage::StoredOrder& o = view.order;
  out->set_id(o.id);
  out->set_patient_id(view.pms_patient_id);
  out->set_encounter_id(o.encounter_id.value_or(0));
  for (const std::string& code : o.test_codes) {
    out->add_test_codes(code);
  }
  out->set_ordering_provider(o.ordering_provider);
  out->set_priority(o.priority);
  out->set_status(o.status);
  out->set_placer_order_number(o.placer_order_number);
  out->set_created_at(http::FormatRfc3339(o.created_at));
  out->set_sent_at(OptTime(o.sent_at));
  out->set_acknowledged_at(OptTime(o.acknowledged_at));
  out->set_attempts(o.attempts);
  out->set_last_error(o.last_error);
  out->set_lis_endpoint(o.lis_endpoint);
  out->set_result_status(o.result_status);
}

void ToProto(const storage::StoredMessage& m, pb::HL7Message* out) {
  out->set_id(m.id);
  out->set_direction(m.direction);
  out->set_message_type(m.message.message_type);
  out->set_trigger_event(m.message.trigger_event);
  out->set_message_control_id(m.message.message_control_id);
  out->set_sending_application(m.message.sending_application);
  out->set_sending_facility(m.message.sending_facility);
  out->set_receiving_facility(m.message.receiving_facility);
  out->set_ack_status(m.message.ack_status);
  out->set_processed_at(OptTime(m.message.processed_at));
  out->set_source_ip(m.message.source_ip);
  out->set_message_hash(m.message_hash);
  out->set_raw_message(m.message.raw_message);
  out->set_error_detail(m.message.error_detail);
}

absl::Status PageSize(int requested, int* limit) {
  *limit = requested == 0 ? service::kDefaultPageSize : requested;
  if (absl::Status s = service::CheckLimit(*limit); !s.ok()) {
    return absl::InvalidArgumentError("page_size: expected 1-1000");
  }
  return absl::OkStatus();
}

absl::Status ParseOptionalTime(const std::string& field, const std::string& text,
                               std::optional<absl::Time>* out) {
  if (text.empty()) {
    return absl::OkStatus();
  }
  *out = http::ParseDateParam(text);
  if (!out->has_value()) {
    return absl::InvalidArgumentError(field + ": expected YYYY-MM-DD or RFC 3339");
  }
  return absl::OkStatus();
}

// WatchResults: one stream, served by its own thread that reads the store
// for result ids above the last one sent and writes them one at a time,
// oldest first. The store is the only source of what is sent, so
// reconnecting with after_result_id = the last position seen replays exactly
// what was missed, whether or not the process restarted in between. The
// thread reads when the event bus publishes a result this stream may want
// (stored by this process), and every `poll` regardless (results stored by
// another replica never reach this bus). It subscribes before its first
// read, so no event falls between the two.
class WatchReactor final : public ::grpc::ServerWriteReactor<pb::ResultEvent> {
 public:
  WatchReactor(service::Results& results, const pb::WatchResultsRequest& request,
               std::atomic<int>& active, service::EventBus* events, absl::Duration poll)
      : results_(results),
        patient_(request.patient_id()),
        critical_only_(request.critical_only()),
        last_(request.after_result_id()),
        active_(active),
        poll_(events != nullptr ? poll : absl::Milliseconds(200)) {
    ++active_;
    if (events != nullptr) {
      subscription_ = events->Subscribe([this](const service::ResultEvent& e) {
        if ((!patient_.empty() && e.pms_patient_id != patient_) ||
            (critical_only_ && !e.critical)) {
          return;
        }
        std::lock_guard<std::mutex> lock(mu_);
        woken_ = true;
        cv_.notify_all();
      });
    }
    std::thread([this] { Loop(); }).detach();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      stop_ = true;
    }
    cv_.notify_all();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  void OnDone() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      stop_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return exited_; });
    }
    --active_;
    delete this;
  }

 private:
  void Loop() {
    absl::Status status;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) {
          break;
        }
      }
      absl::StatusOr<std::vector<service::ResultView>> fresh =
          results_.After(patient_, critical_only_, last_);
      if (!fresh.ok() && !absl::IsUnavailable(fresh.status())) {
        status = fresh.status();
        break;
      }
      if (fresh.ok()) {
        for (const service::ResultView& view : *fresh) {
          std::unique_lock<std::mutex> lock(mu_);
          if (stop_) {
            break;
          }
          event_.Clear();
          event_.set_position(view.result.id);
          event_.set_corrected(view.result.result.result_status == "C");
          ToProto(view, event_.mutable_result());
          writing_ = true;
          StartWrite(&event_);
          cv_.wait(lock, [this] { return !writing_; });
          if (stop_) {
            break;
          }
          last_ = view.result.id;
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoMilliseconds(poll_), [this] { return stop_ || woken_; });
      woken_ = false;
      if (stop_) {
        break;
      }
    }
    subscription_.Cancel();  // before exited_: the reactor may be deleted after it
    {
      std::lock_guard<std::mutex> lock(mu_);
      exited_ = true;
      cv_.notify_all();
    }
    Finish(ToGrpcStatus(status));
  }

  service::Results& results_;
  const std::string patient_;
  const bool critical_only_;
  std::int64_t last_;
  std::atomic<int>& active_;
  const absl::Duration poll_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool writing_ = false;
  bool exited_ = false;
  bool woken_ = false;  // a matching result was published since the last read
  pb::ResultEvent event_;
  service::EventBus::Subscription subscription_;
};

class LabBridgeService final : public pb::LabBridge::CallbackService {
 public:
  LabBridgeService(service::Results& results, service::Orders& orders, storage::Store& store,
                   service::TokenRegistry& tokens, service::AccessAudit* audit, int workers,
                   service::EventBus* events, absl::Duration watch_poll)
      : results_(results),
        orders_(orders),
        store_(store),
        tokens_(tokens),
        audit_(audit),
        events_(events),
        watch_poll_(watch_poll),
        pool_(static_cast<std::size_t>(std::max(1, workers))) {}
  ~LabBridgeService() override { pool_.join(); }

  // Runs `work` (returning absl::Status, filling the response) on the pool
  // after authorizing `role`; records the call; finishes the reactor.
  template <typename Work>
  ::grpc::ServerUnaryReactor* Run(::grpc::CallbackServerContext* context, const char* method,
                                  service::Role role, Work work) {
    ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::string authorization;
    const auto& metadata = context->client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      authorization.assign(it->second.data(), it->second.size());
    }
    std::string peer = context->peer();
    boost::asio::post(pool_, [this, reactor, method, role, work = std::move(work),
                              authorization = std::move(authorization),
                              peer = std::move(peer)]() mutable {
      http::HttpRequest request;  // Authorize reads the bearer header from here
      request.headers.emplace_back("authorization", authorization);
      service::Principal who{"-", 0};
      std::vector<std::string> patients;
      absl::StatusOr<service::Principal> authorized = http::Authorize(tokens_, request, role, &who);
      absl::Status status = authorized.ok() ? work(*authorized, &patients) : authorized.status();
      if (audit_ != nullptr) {
        std::sort(patients.begin(), patients.end());
        patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
        if (!patients.empty() && patients.front().empty()) {
          patients.erase(patients.begin());
        }
        service::AccessEvent event;
        event.time = absl::Now();
        event.who = who.name;
        event.protocol = "grpc";
        event.action = role == service::Role::kOrdersWrite || role == service::Role::kCriticalsAck
                           ? "update"
                           : "read";
        event.what = std::string("/labbridge.v1.LabBridge/") + method;
        event.patients = std::move(patients);
        event.outcome = static_cast<int>(status.code());
        event.source = peer;
        if (absl::Status s = audit_->Record(event); !s.ok()) {
          status = absl::UnavailableError("access audit unavailable");
        }
      }
      reactor->Finish(ToGrpcStatus(status));
    });
    return reactor;
  }

  ::grpc::ServerUnaryReactor* SubmitOrder(::grpc::CallbackServerContext* context,
                                          const pb::SubmitOrderRequest* request,
                                          pb::Order* response) override {
    return Run(
        context, "SubmitOrder", service::Role::kOrdersWrite,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          service::OrderInput input;
          input.pms_patient_id = request->patient_id();
          if (request->encounter_id() != 0) {
            input.encounter_id = request->encounter_id();
          }
          for (const std::string& code : request->test_codes()) {
            input.test_codes.push_back(code);
          }
          input.ordering_provider = request->ordering_provider();
          if (!request->priority().empty()) {
            input.priority = request->priority();
          }
          patients->push_back(input.pms_patient_id);
          absl::StatusOr<service::OrderView> order = orders_.Create(input);
          if (!order.ok()) {
            return order.status();
          }
          ToProto(*order, response);
          return absl::OkStatus();
        });
  }

  ::grpc::ServerUnaryReactor* GetOrder(::grpc::CallbackServerContext* context,
                                       const pb::GetOrderRequest* request,
                                       pb::GetOrderResponse* response) override {
    return Run(
        context, "GetOrder", service::Role::kResultsRead,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          absl::StatusOr<service::OrderView> order = orders_.Get(request->id());
          if (!order.ok()) {
            return order.status();
          }
          patients->push_back(order->pms_patient_id);
          absl::StatusOr<std::vector<service::ResultView>> linked = results_.ForOrder(order->order);
          if (!linked.ok()) {
            return linked.status();
          }
          ToProto(*order, response->mutable_order());
          for (const service::ResultView& r : *linked) {
            ToProto(r, response->add_results());
          }
          return absl::OkStatus();
        });
  }

  ::grpc::ServerUnaryReactor* ListOrders(::grpc::CallbackServerContext* context,
                                         const pb::ListOrdersRequest* request,
                                         pb::ListOrdersResponse* response) override {
    return Run(
        context, "ListOrders", service::Role::kResultsRead,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          int limit = 0;
          if (absl::Status s = PageSize(request->page_size(), &limit); !s.ok()) {
            return s;
          }
          absl::StatusOr<service::OrderList> list =
              orders_.List(request->patient_id(), request->status(), limit, request->page_token());
          if (!list.ok()) {
            return list.status();
          }
          for (const service::OrderView& o : list->orders) {
            patients->push_back(o.pms_patient_id);
            ToProto(o, response->add_orders());
          }
          response->set_next_page_token(list->next_cursor);
          return absl::OkStatus();
        });
  }

  ::grpc::ServerUnaryReactor* CancelOrder(::grpc::CallbackServerContext* context,
                                          const pb::CancelOrderRequest* request,
                                          pb::Order* response) override {
    return Run(
        context, "CancelOrder", service::Role::kOrdersWrite,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          absl::StatusOr<service::OrderView> order = orders_.Cancel(request->id());
          if (!order.ok()) {
            return order.status();
          }
          patients->push_back(order->pms_patient_id);
          ToProto(*order, response);
          return absl::OkStatus();
        });
  }

  absl::Status ListInto(const service::ResultFilter& filter, pb::ListResultsResponse* response,
                        std::vector<std::string>* patients) {
    absl::StatusOr<service::ResultList> list = results_.List(filter);
    if (!list.ok()) {
      return list.status();
    }
    for (const service::ResultView& r : list->results) {
      patients->push_back(r.pms_patient_id);
      ToProto(r, response->add_results());
    }
    response->set_next_page_token(list->next_cursor);
    return absl::OkStatus();
  }

  ::grpc::ServerUnaryReactor* ListResults(::grpc::CallbackServerContext* context,
                                          const pb::ListResultsRequest* request,
                                          pb::ListResultsResponse* response) override {
    return Run(
        context, "ListResults", service::Role::kResultsRead,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          service::ResultFilter filter;
          if (absl::Status s = PageSize(request->page_size(), &filter.limit); !s.ok()) {
            return s;
          }
          filter.cursor = request->page_token();
          filter.pms_patient_id = request->patient_id();
          filter.abnormal_only = request->abnormal_only();
          if (request->critical_only()) {
            filter.critical = true;
          }
          filter.test_code = request->test_code();
          if (absl::Status s = ParseOptionalTime("observed_from", request->observed_from(),
                                                 &filter.observed_from);
              !s.ok()) {
            return s;
          }
          if (absl::Status s =
                  ParseOptionalTime("observed_to", request->observed_to(), &filter.observed_to);
              !s.ok()) {
            return s;
          }
          return ListInto(filter, response, patients);
        });
  }

  ::grpc::ServerUnaryReactor* GetResult(::grpc::CallbackServerContext* context,
                                        const pb::GetResultRequest* request,
                                        pb::Result* response) override {
    return Run(
        context, "GetResult", service::Role::kResultsRead,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          absl::StatusOr<service::ResultView> result = results_.Get(request->id());
          if (!result.ok()) {
            return result.status();
          }
          patients->push_back(result->pms_patient_id);
          ToProto(*result, response);
          return absl::OkStatus();
        });
  }

  ::grpc::ServerUnaryReactor* ListCriticalResults(::grpc::CallbackServerContext* context,
                                                  const pb::ListCriticalResultsRequest* request,
                                                  pb::ListResultsResponse* response) override {
    return Run(
        context, "ListCriticalResults", service::Role::kResultsRead,
        [this, request, response](const service::Principal&, std::vector<std::string>* patients) {
          service::ResultFilter filter;
          if (absl::Status s = PageSize(request->page_size(), &filter.limit); !s.ok()) {
            return s;
          }
          filter.cursor = request->page_token();
          filter.critical = true;
          if (!request->include_acknowledged()) {
            filter.acknowledged = false;
          }
          return ListInto(filter, response, patients);
        });
  }

  ::grpc::ServerUnaryReactor* AcknowledgeCriticalResult(
      ::grpc::CallbackServerContext* context, const pb::AcknowledgeCriticalResultRequest* request,
      pb::AcknowledgeCriticalResultResponse* response) override {
    return Run(context, "AcknowledgeCriticalResult", service::Role::kCriticalsAck,
               [this, request, response](const service::Principal& who, std::vector<std::string>*) {
                 const std::string by =
                     request->acknowledged_by().empty() ? who.name : request->acknowledged_by();
                 const absl::Time now = absl::Now();
                 if (absl::Status s = results_.Acknowledge(request->id(), by, now, request->note());
                     !s.ok()) {
                   return s;
                 }
                 response->set_id(request->id());
                 response->set_acknowledged_by(by);
                 response->set_acknowledged_at(http::FormatRfc3339(now));
                 return absl::OkStatus();
               });
  }

  ::grpc::ServerWriteReactor<pb::ResultEvent>* WatchResults(
      ::grpc::CallbackServerContext* context, const pb::WatchResultsRequest* request) override;

  ::grpc::ServerUnaryReactor* GetMessage(::grpc::CallbackServerContext* context,
                                         const pb::GetMessageRequest* request,
                                         pb::HL7Message* response) override {
    return Run(context, "GetMessage", service::Role::kAuditRead,
               [this, request, response](const service::Principal&, std::vector<std::string>*) {
                 absl::StatusOr<storage::StoredMessage> m = store_.GetMessage(request->id());
                 if (!m.ok()) {
                   return m.status();
                 }
                 ToProto(*m, response);
                 return absl::OkStatus();
               });
  }

  ::grpc::ServerUnaryReactor* ListMessages(::grpc::CallbackServerContext* context,
                                           const pb::ListMessagesRequest* request,
                                           pb::ListMessagesResponse* response) override {
    return Run(context, "ListMessages", service::Role::kAuditRead,
               [this, request, response](const service::Principal&, std::vector<std::string>*) {
                 storage::MessageQuery query;
                 if (absl::Status s = PageSize(request->page_size(), &query.limit); !s.ok()) {
                   return s;
                 }
                 query.cursor = request->page_token();
                 if (absl::Status s = ParseOptionalTime("processed_from", request->processed_from(),
                                                        &query.processed_from);
                     !s.ok()) {
                   return s;
                 }
                 if (absl::Status s = ParseOptionalTime("processed_to", request->processed_to(),
                                                        &query.processed_to);
                     !s.ok()) {
                   return s;
                 }
                 absl::StatusOr<storage::MessagePage> page = store_.ListMessages(query);
                 if (!page.ok()) {
                   return page.status();
                 }
                 for (const storage::StoredMessage& m : page->messages) {
                   ToProto(m, response->add_messages());
                 }
                 response->set_next_page_token(page->next_cursor);
                 return absl::OkStatus();
               });
  }

 private:
  service::Results& results_;
  service::Orders& orders_;
  storage::Store& store_;
  service::TokenRegistry& tokens_;
  service::AccessAudit* audit_;
  service::EventBus* events_;
  const absl::Duration watch_poll_;
  boost::asio::thread_pool pool_;
  std::atomic<int> watchers_{0};
};

constexpr int kMaxWatchers = 64;

::grpc::ServerWriteReactor<pb::ResultEvent>* LabBridgeService::WatchResults(
    ::grpc::CallbackServerContext* context, const pb::WatchResultsRequest* request) {
  // Authorize on the gRPC thread (a hash and a lookup; no database).
  http::HttpRequest http_request;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    http_request.headers.emplace_back("authorization",
                                      std::string(it->second.data(), it->second.size()));
  }
  service::Principal who{"-", 0};
  absl::Status status =
      http::Authorize(tokens_, http_request, service::Role::kResultsRead, &who).status();
  if (status.ok() && watchers_.load() >= kMaxWatchers) {
    status = absl::ResourceExhaustedError("too many WatchResults streams");
  }
  if (audit_ != nullptr) {
    service::AccessEvent event;
    event.time = absl::Now();
    event.who = who.name;
    event.protocol = "grpc";
    event.action = "read";
    event.what = "/labbridge.v1.LabBridge/WatchResults";
    if (!request->patient_id().empty()) {
      event.patients.push_back(request->patient_id());
    }
    event.outcome = static_cast<int>(status.code());
    event.source = context->peer();
    if (absl::Status s = audit_->Record(event); !s.ok()) {
      status = absl::UnavailableError("access audit unavailable");
    }
  }
  if (!status.ok()) {
    class Refused final : public ::grpc::ServerWriteReactor<pb::ResultEvent> {
     public:
      explicit Refused(const absl::Status& s) { Finish(ToGrpcStatus(s)); }
      void OnDone() override { delete this; }
    };
    return new Refused(status);
  }
  return new WatchReactor(results_, *request, watchers_, events_, watch_poll_);
}

// The PEM text of a TLS file, checked: a certificate (or CA bundle) must hold
// at least one certificate, a key a private key. The error names the
// configuration variable, so a bad file stops the start with its name.
absl::StatusOr<std::string> ReadPem(const std::string& variable, const std::string& path,
                                    bool private_key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(variable + " " + path + ": cannot be read");
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string pem = text.str();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  bool ok = false;
  if (private_key) {
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    ok = key != nullptr;
    EVP_PKEY_free(key);
  } else {
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    ok = cert != nullptr;
    X509_free(cert);
  }
  BIO_free(bio);
  ERR_clear_error();
  if (!ok) {
    return absl::InvalidArgumentError(variable + " " + path + ": no PEM " +
                                      (private_key ? "private key" : "certificate") + " in it");
  }
  return pem;
}

// Whether the key belongs to the (first) certificate.
bool KeyMatchesCertificate(const std::string& cert_pem, const std::string& key_pem) {
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  const bool match = cert != nullptr && key != nullptr && X509_check_private_key(cert, key) == 1;
  EVP_PKEY_free(key);
  X509_free(cert);
  BIO_free(key_bio);
  BIO_free(cert_bio);
  ERR_clear_error();
  return match;
}

class GrpcServerImpl final : public GrpcServer {
 public:
  GrpcServerImpl(std::unique_ptr<LabBridgeService> service, storage::Store& store)
      : service_(std::move(service)), store_(store) {}
  ~GrpcServerImpl() override { Stop(); }

  absl::Status Start(const GrpcServerOptions& options) {
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "GRPC_TLS_CERT and GRPC_TLS_KEY: set both (TLS) or neither (plaintext)");
    }
    if (!options.tls_client_ca_file.empty() && options.tls_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "GRPC_TLS_CLIENT_CA: client certificates need TLS; set GRPC_TLS_CERT and GRPC_TLS_KEY");
    }
    std::shared_ptr<::grpc::ServerCredentials> credentials = ::grpc::InsecureServerCredentials();
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPem("GRPC_TLS_CERT", options.tls_cert_file, false);
      if (!cert.ok()) {
        return cert.status();
      }
      absl::StatusOr<std::string> key = ReadPem("GRPC_TLS_KEY", options.tls_key_file, true);
      if (!key.ok()) {
        return key.status();
      }
      if (!KeyMatchesCertificate(*cert, *key)) {
        return absl::InvalidArgumentError("GRPC_TLS_KEY " + options.tls_key_file +
                                          ": not the key of GRPC_TLS_CERT " +
                                          options.tls_cert_file);
      }
      ::grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      if (!options.tls_client_ca_file.empty()) {
        absl::StatusOr<std::string> ca =
            ReadPem("GRPC_TLS_CLIENT_CA", options.tls_client_ca_file, false);
        if (!ca.ok()) {
          return ca.status();
        }
        ssl.pem_root_certs = *ca;
        ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      }
      credentials = ::grpc::SslServerCredentials(ssl);
    }
    ::grpc::EnableDefaultHealthCheckService(true);
    // Debian links with --as-needed: without this call the reflection
    // library is dropped and reflection answers UNIMPLEMENTED (TOOLS.md 1).
    ::grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen_host + ":" + std::to_string(options.port), credentials,
                             &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      return absl::UnavailableError("gRPC listen " + options.listen_host + ":" +
                                    std::to_string(options.port) + ": cannot bind");
    }
    UpdateHealth();
    prober_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_) {
        lock.unlock();
        UpdateHealth();
        lock.lock();
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
      }
    });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        return;
      }
      stopping_ = true;
    }
    cv_.notify_all();
    if (prober_.joinable()) {
      prober_.join();
    }
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
  }

 private:
  void UpdateHealth() {
    storage::MessageQuery query;
    query.limit = 1;
    const bool serving = store_.ListMessages(query).ok();
    ::grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    if (health == nullptr) {
      return;
    }
    health->SetServingStatus(serving);  // every service, "" included
  }

  std::unique_ptr<LabBridgeService> service_;
  storage::Store& store_;
  std::unique_ptr<::grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread prober_;
};

}  // namespace

::grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) {
    return ::grpc::Status::OK;
  }
  if (status.code() == absl::StatusCode::kInternal) {
    return ::grpc::Status(::grpc::StatusCode::INTERNAL, "internal error");
  }
  return ::grpc::Status(static_cast<::grpc::StatusCode>(status.code()),
                        std::string(status.message()));
}

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, service::Results& results, service::Orders& orders,
    storage::Store& store, service::TokenRegistry& tokens, service::AccessAudit* audit,
    service::EventBus* events) {
  auto service = std::make_unique<LabBridgeService>(results, orders, store, tokens, audit,
                                                    options.worker_threads, events,
                                                    options.watch_poll_interval);
  auto server = std::make_unique<GrpcServerImpl>(std::move(service), store);
  if (absl::Status s = server->Start(options); !s.ok()) {
    return s;
  }
  return std::unique_ptr<GrpcServer>(std::move(server));
}

}  // namespace bridge::api::grpc_api
