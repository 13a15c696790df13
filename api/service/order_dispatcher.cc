// api/service/order_dispatcher.cc
#include "api/service/order_dispatcher.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/hl7/ack.h"
#include "mapping/hl7/datatypes.h"
#include "mapping/hl7/message.h"
#include "mllp/client.h"

namespace bridge::api::service {
namespace {

std::string Text(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

// Log lines are one line each and carry no message content (no PHI).
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\r', ' ');
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string DefaultInstanceId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) {
    host[0] = '\0';
  }
  std::random_device random;
  char suffix[17];
  std::snprintf(suffix, sizeof(suffix), "%08x", random());
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + suffix;
}

std::optional<std::string> AckControlId(std::string_view reply) {
  absl::StatusOr<hl7::Message> ack = hl7::Message::Parse(reply);
  if (!ack.ok()) {
    return std::nullopt;
  }
  std::optional<hl7::AckSummary> summary = hl7::ReadAck(*ack);
  if (!summary.has_value()) {
    return std::nullopt;
  }
  return summary->acknowledged_control_id;
}

std::optional<hl7::AckSummary> ReadReply(std::string_view reply) {
  absl::StatusOr<hl7::Message> ack = hl7::Message::Parse(reply);
  if (!ack.ok()) {
    return std::nullopt;
  }
  return hl7::ReadAck(*ack);
}

absl::Time ToTime(const hl7::DateTime& t) {
  const absl::TimeZone zone = absl::FixedTimeZone(t.utc_offset_minutes.value_or(0) * 60);
  return absl::FromCivil(absl::CivilSecond(t.year, std::max(t.month, 1), std::max(t.day, 1), t.hour,
                                           t.minute, t.second),
                         zone);
}

// What the outbox row holds: the message placed (ORM^O01, NW or CA).
struct StoredMessage {
  fhir_to_v2::OrderRequest order;
  std::string control_id;
  absl::Time timestamp;
};

absl::StatusOr<StoredMessage> ReadStoredMessage(const std::string& payload, absl::Time now) {
  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(payload);
  if (!message.ok()) {
    return message.status();
  }
  absl::StatusOr<fhir_to_v2::OrderRequest> order = fhir_to_v2::ParseOrder(*message);
  if (!order.ok()) {
    return order.status();
  }
  StoredMessage out;
  out.order = *std::move(order);
  out.control_id = std::string(message->Get("MSH-10").value());
  if (out.control_id.empty()) {
    return absl::InvalidArgumentError("stored order message has no MSH-10");
  }
  absl::StatusOr<hl7::DateTime> when = hl7::ParseDateTime(message->Get("MSH-7").value());
  out.timestamp = when.ok() ? ToTime(*when) : now;
  return out;
}

struct AtomicCounters {
  std::atomic<std::int64_t> accepted{0}, application_errors{0}, rejected{0}, timeouts{0},
      connection_lost{0}, unreachable{0}, retries{0}, failed{0}, stray_acks{0};
  std::atomic<bool> up{false};
};

const std::vector<std::string> kUnsent = {"pending"};

}  // namespace

class OrderDispatcher::Impl {
 public:
  Impl(storage::Store& store, OrderDispatcherOptions options)
      : store_(store), options_(std::move(options)) {
    if (options_.instance_id.empty()) {
      options_.instance_id = DefaultInstanceId();
    }
  }

  ~Impl() { Stop(); }

  // One endpoint's worker: its connection, its thread, its backoff.
  struct Worker {
    LisEndpoint endpoint;
    std::unique_ptr<mllp::Client> client;
    std::shared_ptr<AtomicCounters> counters;
    std::thread thread;
    std::mt19937_64 random{std::random_device{}()};
    int connect_failures = 0;
    // Enhanced mode: control id -> order, for orders committed (CA) whose
    // application ACK has not come yet.
    std::map<std::string, std::int64_t> awaiting_application_ack;
  };

  absl::StatusOr<std::vector<std::unique_ptr<Worker>>> MakeWorkers(const LisEndpoints& endpoints) {
    std::vector<std::unique_ptr<Worker>> workers;
    for (const LisEndpoint& e : endpoints.endpoints) {
      auto w = std::make_unique<Worker>();
      w->endpoint = e;
      mllp::ClientOptions client;
      client.host = e.host;
      client.port = e.port;
      client.connect_timeout = e.connect_timeout;
      client.ack_timeout = e.ack_timeout;
      client.tls = e.tls;
      if (options_.logger) {
        std::shared_ptr<spdlog::logger> logger = options_.logger;
        const std::string id = e.id;
        client.log = [logger, id](mllp::LogLevel level, std::string_view line) {
          // Connection trouble is logged by the dispatcher once per outage.
          logger->log(level == mllp::LogLevel::kError ? spdlog::level::err : spdlog::level::debug,
                      "event=lis_connection endpoint={} {}", id, line);
        };
      }
      absl::StatusOr<std::unique_ptr<mllp::Client>> made =
          mllp::Client::Create(client, AckControlId);
      if (!made.ok()) {
        return absl::InvalidArgumentError("LIS endpoint " + e.id + ": " + Text(made.status()));
      }
      w->client = *std::move(made);
      {
        std::lock_guard<std::mutex> lock(counters_mu_);
        std::shared_ptr<AtomicCounters>& c = counters_[e.id];
        if (!c) {
          c = std::make_shared<AtomicCounters>();
        }
        w->counters = c;
      }
      workers.push_back(std::move(w));
    }
    return workers;
  }

  absl::Status Init(LisEndpoints endpoints) {
    absl::StatusOr<std::vector<std::unique_ptr<Worker>>> workers = MakeWorkers(endpoints);
    if (!workers.ok()) {
      return workers.status();
    }
    std::lock_guard<std::mutex> lock(config_mu_);
    endpoints_ = std::move(endpoints);
    workers_ = *std::move(workers);
    return absl::OkStatus();
  }

  void Start() {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    if (running_) {
      return;
    }
    StartLocked();
  }

  void Stop() {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    StopLocked();
  }

  absl::Status Reload(LisEndpoints endpoints) {
    absl::StatusOr<std::vector<std::unique_ptr<Worker>>> workers = MakeWorkers(endpoints);
    if (!workers.ok()) {
      return workers.status();
    }
    std::lock_guard<std::mutex> run_lock(run_mu_);
    const bool was_running = running_;
    StopLocked();
    {
      std::lock_guard<std::mutex> lock(config_mu_);
      endpoints_ = std::move(endpoints);
      workers_ = *std::move(workers);
    }
    if (was_running) {
      StartLocked();
    }
    return absl::OkStatus();
  }

  void Wake() {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      ++wake_generation_;
    }
    wake_cv_.notify_all();
  }

  absl::StatusOr<std::string> Route(const std::vector<std::string>& codes) const {
    std::lock_guard<std::mutex> lock(config_mu_);
    return endpoints_.Route(codes);
  }

  std::map<std::string, EndpointCounters> counters() const {
    std::map<std::string, EndpointCounters> out;
    std::lock_guard<std::mutex> lock(counters_mu_);
    for (const auto& [id, c] : counters_) {
      EndpointCounters& e = out[id];
      e.accepted = c->accepted;
      e.application_errors = c->application_errors;
      e.rejected = c->rejected;
      e.timeouts = c->timeouts;
      e.connection_lost = c->connection_lost;
      e.unreachable = c->unreachable;
      e.retries = c->retries;
      e.failed = c->failed;
      e.stray_acks = c->stray_acks;
      e.up = c->up;
    }
    return out;
  }

  std::string MetricsText() const {
    const std::map<std::string, EndpointCounters> all = counters();
    std::string out;
    auto family = [&](const char* name, const char* help, const char* type, auto value) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      for (const auto& [id, c] : all) {
        out += std::string(name) + "{endpoint=\"" + id + "\"} " + std::to_string(value(c)) + "\n";
      }
    };
    out +=
        "# HELP labbridge_order_messages_total Order messages sent to a LIS, by ACK outcome.\n"
        "# TYPE labbridge_order_messages_total counter\n";
    for (const auto& [id, c] : all) {
      for (auto [outcome, n] :
           {std::pair{"accepted", c.accepted}, std::pair{"application_error", c.application_errors},
            std::pair{"rejected", c.rejected}, std::pair{"timeout", c.timeouts},
            std::pair{"connection_lost", c.connection_lost}}) {
        out += "labbridge_order_messages_total{endpoint=\"" + id + "\",outcome=\"" + outcome +
               "\"} " + std::to_string(n) + "\n";
      }
    }
    family("labbridge_orders_failed_total", "Orders given up after retry_max_attempts.", "counter",
           [](const EndpointCounters& c) { return c.failed; });
    family("labbridge_orders_rejected_total", "Orders the LIS rejected (AR).", "counter",
           [](const EndpointCounters& c) { return c.rejected; });
    family("labbridge_order_retries_total", "Order messages scheduled to be sent again.", "counter",
           [](const EndpointCounters& c) { return c.retries; });
    family("labbridge_lis_unreachable_total", "Connection attempts to a LIS that failed.",
           "counter", [](const EndpointCounters& c) { return c.unreachable; });
    family("labbridge_lis_stray_acks_total", "ACKs that answered no message in flight.", "counter",
           [](const EndpointCounters& c) { return c.stray_acks; });
    family("labbridge_lis_up", "1 when the last connection attempt to the LIS worked.", "gauge",
           [](const EndpointCounters& c) { return c.up ? 1 : 0; });
    return out;
  }

 private:
  enum class Next { kContinue, kHold };

  void StartLocked() {
    stop_ = false;
    {
      std::lock_guard<std::mutex> lock(config_mu_);
      absl::StatusOr<std::int64_t> moved =
          store_.RerouteOutbox(endpoints_.ids(), kUnroutedEndpoint);
      if (!moved.ok()) {
        Log(spdlog::level::warn,
            "event=order_reroute_failed error=\"" + Text(moved.status()) + "\"");
      } else if (*moved > 0) {
        Log(spdlog::level::info,
            "event=orders_rerouted count=" + std::to_string(*moved) + " reason=endpoints_changed");
      }
      for (std::unique_ptr<Worker>& w : workers_) {
        Worker* worker = w.get();
        worker->thread = std::thread([this, worker] { RunWorker(*worker); });
      }
    }
    router_ = std::thread([this] { RunRouter(); });
    running_ = true;
  }

  void StopLocked() {
    if (!running_) {
      return;
    }
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      stop_ = true;
    }
    wake_cv_.notify_all();
    if (router_.joinable()) {
      router_.join();
    }
    std::lock_guard<std::mutex> lock(config_mu_);
    for (std::unique_ptr<Worker>& w : workers_) {
      if (w->thread.joinable()) {
        w->thread.join();
      }
    }
    running_ = false;
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(wake_mu_);
    return stop_;
  }

  std::uint64_t generation() {
    std::lock_guard<std::mutex> lock(wake_mu_);
    return wake_generation_;
  }

  // Sleeps until Wake(), Stop() or `timeout`.
  void WaitForWork(std::uint64_t seen, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return stop_ || wake_generation_ != seen; });
  }

  void Log(spdlog::level::level_enum level, const std::string& line) const {
    if (options_.logger) {
      options_.logger->log(level, "{}", line);
    }
  }

  absl::Duration Backoff(Worker& w, int attempt) {
    const absl::Duration initial = absl::FromChrono(w.endpoint.backoff_initial);
    const absl::Duration cap = absl::FromChrono(w.endpoint.backoff_max);
    absl::Duration delay = initial;
    for (int i = 1; i < attempt && delay < cap; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, cap);
    // Jitter in [delay/2, delay]: replicas and endpoints do not retry in step.
    std::uniform_real_distribution<double> half(0.5, 1.0);
    return delay * half(w.random);
  }

  void RunWorker(Worker& w) {
    const absl::Duration per_message = absl::FromChrono(w.endpoint.connect_timeout) +
                                       absl::FromChrono(w.endpoint.ack_timeout) + absl::Seconds(5);
    const int full_batch = std::clamp(static_cast<int>(absl::Minutes(2) / per_message), 1,
                                      std::max(1, options_.max_batch));
    while (!stopping()) {
      const std::uint64_t seen = generation();
      // While the LIS is down only the oldest row is taken (to probe), so a
      // crash leaves at most one row leased.
      const int batch = w.client->connected() || w.connect_failures == 0 ? full_batch : 1;
      absl::StatusOr<std::vector<storage::OutboxItem>> items = store_.ClaimEndpointOutbox(
          options_.instance_id, w.endpoint.id, per_message * batch + absl::Seconds(10), batch,
          /*in_order=*/true);
      if (!items.ok()) {
        Log(spdlog::level::warn, "event=outbox_claim_failed endpoint=" + w.endpoint.id +
                                     " error=\"" + OneLine(Text(items.status())) + "\"");
        WaitForWork(seen, absl::Seconds(1));
        continue;
      }
      if (items->empty()) {
        // Nothing to send: read what the LIS sent on its own meanwhile, so an
        // application ACK is taken although no further order follows.
        for (const mllp::StrayReply& reply : w.client->TakeUnsolicitedReplies()) {
          HandleStray(w, reply, "");
        }
        WaitForWork(seen, options_.poll_interval);
        continue;
      }
      std::size_t done = 0;
      while (done < items->size() && !stopping()) {
        if (Dispatch(w, (*items)[done++]) == Next::kHold) {
          break;
        }
      }
      for (std::size_t j = done; j < items->size(); ++j) {
        Release(w, (*items)[j]);
      }
    }
    w.client->Close();
  }

  // Gives a claimed row back untouched (it was not attempted).
  void Release(Worker& w, const storage::OutboxItem& item) {
    storage::OutboxSettlement s;
    s.outcome = storage::OutboxSettlement::Outcome::kRelease;
    s.next_attempt_at = item.next_attempt_at;
    if (absl::Status st = store_.SettleOutbox(item.id, options_.instance_id, s); !st.ok()) {
      Log(spdlog::level::warn, "event=outbox_release_failed endpoint=" + w.endpoint.id +
                                   " outbox_id=" + std::to_string(item.id) + " error=\"" +
                                   OneLine(Text(st)) + "\"");
    }
  }

  Next Settle(Worker& w, const storage::OutboxItem& item, const storage::OutboxSettlement& s) {
    absl::Status st = store_.SettleOutbox(item.id, options_.instance_id, s);
    if (!st.ok()) {
      // The lease expired (another process may resend: the LIS sees the same
      // control id) or the database is down (the lease expires and the row
      // is sent again). Either way, stop this run.
      Log(spdlog::level::err, "event=outbox_settle_failed endpoint=" + w.endpoint.id +
                                  " outbox_id=" + std::to_string(item.id) +
                                  " order_id=" + std::to_string(item.order_id) + " error=\"" +
                                  OneLine(Text(st)) + "\"");
      return Next::kHold;
    }
    return Next::kContinue;
  }

  // The LIS could not be reached (or refused us in the TLS handshake):
  // nothing was delivered, so the row goes back without an attempt and the
  // endpoint backs off; its later rows wait behind it.
  Next Unreachable(Worker& w, const storage::OutboxItem& item, const absl::Status& why) {
    ++w.counters->unreachable;
    ++w.connect_failures;
    if (w.counters->up.exchange(false) || w.connect_failures == 1) {
      Log(spdlog::level::warn, "event=lis_unreachable endpoint=" + w.endpoint.id + " error=\"" +
                                   OneLine(Text(why)) + "\"");
    }
    storage::OutboxSettlement s;
    s.outcome = storage::OutboxSettlement::Outcome::kRelease;
    s.next_attempt_at = options_.clock() + Backoff(w, w.connect_failures);
    s.error = "LIS " + w.endpoint.id + " unreachable: " + Text(why);
    Settle(w, item, s);
    return Next::kHold;
  }

  Next Dispatch(Worker& w, const storage::OutboxItem& item) {
    using Outcome = storage::OutboxSettlement::Outcome;
    const LisEndpoint& ep = w.endpoint;
    const absl::Time now = options_.clock();
    absl::StatusOr<StoredMessage> stored = ReadStoredMessage(item.payload, now);
    std::string built_error;
    absl::StatusOr<std::string> er7 = absl::InternalError("not built");
    bool is_cancel = false;
    fhir_to_v2::OrmOptions orm;
    if (stored.ok()) {
      is_cancel = stored->order.order_control == "CA";
      for (fhir_to_v2::TestCode& code : stored->order.test_codes) {
        auto mapped = ep.test_code_map.find(code.code);
        if (mapped != ep.test_code_map.end()) {
          code.code = mapped->second;
          code.system = ep.coding_system;
        } else if (code.system.empty() || code.system == "L") {
          code.system = ep.coding_system;
        }
      }
      orm.sending_application = options_.sending_application;
      orm.sending_facility = options_.sending_facility;
      orm.receiving_application = ep.receiving_application;
      orm.receiving_facility = ep.receiving_facility;
      orm.control_id = stored->control_id;
      orm.timestamp = stored->timestamp;
      orm.utc_offset_minutes = ep.time_zone.At(stored->timestamp).offset / 60;
      orm.version = ep.version;
      orm.processing_id = ep.processing_id;
      orm.flavor = ep.flavor;
      orm.patient_authority = options_.sending_facility;
      orm.placer_namespace = options_.sending_facility;
      er7 = fhir_to_v2::BuildOrm(stored->order, orm);
    }
    if (!stored.ok() || !er7.ok()) {
      // Nothing will make this row sendable: fail it now, visibly.
      const std::string why = "cannot build the message for LIS " + ep.id + ": " +
                              Text(stored.ok() ? er7.status() : stored.status());
      storage::OutboxSettlement s;
      s.outcome = Outcome::kFail;
      s.error = why;
      if (!is_cancel) {
        s.order_status = "failed";
        s.order_status_from = kUnsent;
      }
      ++w.counters->failed;
      Log(spdlog::level::err, "event=order_failed endpoint=" + ep.id +
                                  " order_id=" + std::to_string(item.order_id) + " error=\"" +
                                  OneLine(why) + "\"");
      return Settle(w, item, s);
    }

    bool fresh_connection = false;
    if (!w.client->connected()) {
      if (absl::Status connected = w.client->Connect(); !connected.ok()) {
        return Unreachable(w, item, connected);
      }
      fresh_connection = true;
    }

    absl::StatusOr<mllp::Exchange> exchange = w.client->SendAndAwait(*er7, orm.control_id);
    if (!exchange.ok() && fresh_connection && ep.tls.enabled &&
        absl::IsUnavailable(exchange.status()) &&
        Text(exchange.status()).find(" alert ") != std::string::npos) {
      // TLS 1.3 finishes the client's handshake before the server has
      // checked the client certificate; its refusal arrives as an alert in
      // place of the ACK. The LIS application never saw the message.
      return Unreachable(w, item, exchange.status());
    }
    if (w.connect_failures > 0 || !w.counters->up) {
      if (!w.counters->up.exchange(true) && w.connect_failures > 0) {
        Log(spdlog::level::info, "event=lis_reachable endpoint=" + ep.id);
      }
      w.connect_failures = 0;
    }
    std::vector<mllp::StrayReply> strays =
        exchange.ok() ? std::move(exchange->stray_replies) : w.client->TakeStrayReplies();
    for (mllp::StrayReply& stray : strays) {
      HandleStray(w, stray, orm.control_id);
    }

    std::string code;
    std::string reply;
    std::string error;
    enum class Verdict { kAccepted, kRetry, kRejected, kFail } verdict = Verdict::kRetry;
    if (exchange.ok()) {
      reply = exchange->reply;
      std::optional<hl7::AckSummary> ack = ReadReply(reply);
      code = ack.has_value() ? ack->code : "";
      if (code == "AA" || code == "CA") {
        verdict = Verdict::kAccepted;
        ++w.counters->accepted;
      } else if (code == "AR" || code == "CR") {
        verdict = Verdict::kRejected;
        ++w.counters->rejected;
        error = "LIS " + ep.id + " rejected the message (" + code + ")";
      } else {
        ++w.counters->application_errors;
        error = code.empty() ? "LIS " + ep.id + " answered with something that is not an ACK"
                             : "LIS " + ep.id + " answered " + code;
      }
      if (ack.has_value() && !ack->error_text.empty() && !error.empty()) {
        error += ": " + ack->error_text;
      }
    } else if (absl::IsDeadlineExceeded(exchange.status())) {
      ++w.counters->timeouts;
      error = "no ACK from LIS " + ep.id + " within " +
              std::to_string(ep.ack_timeout.count() / 1000) + " s";
    } else if (absl::IsInvalidArgument(exchange.status())) {
      verdict = Verdict::kFail;
      error = "cannot send to LIS " + ep.id + ": " + Text(exchange.status());
    } else {
      ++w.counters->connection_lost;
      error = "LIS " + ep.id + " connection lost: " + Text(exchange.status());
    }

    storage::InboundMessage row;
    row.message_type = ep.flavor == fhir_to_v2::OrmOptions::Flavor::kOmlO21 ? "OML" : "ORM";
    row.trigger_event = ep.flavor == fhir_to_v2::OrmOptions::Flavor::kOmlO21 ? "O21" : "O01";
    row.message_control_id = orm.control_id;
    row.sending_application = orm.sending_application;
    row.sending_facility = orm.sending_facility;
    row.receiving_application = orm.receiving_application;
    row.receiving_facility = orm.receiving_facility;
    row.version = orm.version;
    row.raw_message = *er7;
    row.ack_status = code;
    row.ack_message = reply;
    row.error_detail = error;
    const int attempt = item.attempts + 1;
    storage::OutboxSettlement s;
    s.error = error;
    s.outbound_message = std::move(row);
    s.link_order_to_message = !is_cancel;
    const std::string what = is_cancel ? "order_cancel" : "order";
    const std::string ids = "endpoint=" + ep.id + " order_id=" + std::to_string(item.order_id) +
                            " control_id=" + orm.control_id + " attempt=" + std::to_string(attempt);
    switch (verdict) {
      case Verdict::kAccepted:
        s.outcome = Outcome::kDone;
        if (!is_cancel) {
          if (ep.enhanced_ack && code == "CA") {
            s.order_status = "sent";
            s.order_status_from = kUnsent;
            if (w.awaiting_application_ack.size() < 100000) {
              w.awaiting_application_ack[orm.control_id] = item.order_id;
            }
          } else if (ep.enhanced_ack) {
            s.order_status = "acknowledged";
            s.order_status_from = {"pending", "sent"};
          } else {
            s.order_status = "sent";
            s.order_status_from = kUnsent;
          }
        }
        Log(spdlog::level::info, "event=" + what + "_sent " + ids + " ack=" + code);
        return Settle(w, item, s);
      case Verdict::kRejected:
        s.outcome = Outcome::kFail;
        if (!is_cancel) {
          s.order_status = "rejected";
          s.order_status_from = kUnsent;
        }
        Log(spdlog::level::warn, "event=" + what + "_rejected " + ids + " ack=" + code);
        return Settle(w, item, s);
      case Verdict::kFail:
        break;
      case Verdict::kRetry:
        if (attempt < ep.max_attempts) {
          s.outcome = Outcome::kRetry;
          s.next_attempt_at = options_.clock() + Backoff(w, attempt);
          ++w.counters->retries;
          Log(spdlog::level::warn,
              "event=" + what + "_retry " + ids + " retry_in_ms=" +
                  std::to_string(absl::ToInt64Milliseconds(s.next_attempt_at - options_.clock())) +
                  " error=\"" + OneLine(error) + "\"");
          Settle(w, item, s);
          // Later orders of this endpoint wait behind this one.
          return Next::kHold;
        }
        break;
    }
    s.outcome = Outcome::kFail;
    if (!is_cancel) {
      s.order_status = "failed";
      s.order_status_from = kUnsent;
    }
    ++w.counters->failed;
    Log(spdlog::level::err,
        "event=" + what + "_failed " + ids + " error=\"" + OneLine(error) + "\"");
    return Settle(w, item, s);
  }

  // A reply that answered nothing in flight: audit it, count it, and in
  // enhanced mode take it as the application ACK it may be.
  void HandleStray(Worker& w, const mllp::StrayReply& stray, const std::string& awaiting) {
    ++w.counters->stray_acks;
    const std::string answered = stray.correlation_id.value_or("");
    std::optional<hl7::AckSummary> ack = ReadReply(stray.payload);
    auto pending = w.awaiting_application_ack.find(answered);
    if (ack.has_value() && pending != w.awaiting_application_ack.end() &&
        (ack->code == "AA" || ack->code == "AE" || ack->code == "AR")) {
      const std::int64_t order_id = pending->second;
      w.awaiting_application_ack.erase(pending);
      const std::string to = ack->code == "AA" ? "acknowledged" : "rejected";
      absl::StatusOr<bool> moved = store_.TransitionOrder(order_id, {"sent"}, to, options_.clock());
      Log(moved.ok() ? spdlog::level::info : spdlog::level::err,
          "event=order_application_ack endpoint=" + w.endpoint.id + " order_id=" +
              std::to_string(order_id) + " control_id=" + answered + " ack=" + ack->code +
              (moved.ok() ? "" : " error=\"" + OneLine(Text(moved.status())) + "\""));
    } else {
      Log(spdlog::level::warn, "event=stray_ack endpoint=" + w.endpoint.id +
                                   " answered_control_id=" + (answered.empty() ? "-" : answered) +
                                   " awaiting_control_id=" + (awaiting.empty() ? "-" : awaiting) +
                                   " action=ignored");
    }
    storage::IngestRecord record;
    storage::InboundMessage& m = record.message;
    absl::StatusOr<hl7::Message> parsed = hl7::Message::Parse(stray.payload);
    if (parsed.ok()) {
      m.message_type = std::string(parsed->Get("MSH-9-1").value());
      m.trigger_event = std::string(parsed->Get("MSH-9-2").value());
      m.message_control_id = std::string(parsed->Get("MSH-10").value());
      m.sending_application = std::string(parsed->Get("MSH-3").value());
      m.sending_facility = std::string(parsed->Get("MSH-4").value());
      m.receiving_application = std::string(parsed->Get("MSH-5").value());
      m.receiving_facility = std::string(parsed->Get("MSH-6").value());
      m.version = std::string(parsed->Get("MSH-12").value());
    }
    m.raw_message = stray.payload;
    m.source_ip = w.endpoint.host;
    m.error_detail =
        "ACK for " + (answered.empty() ? std::string("no control id") : answered) +
        " received from LIS " + w.endpoint.id +
        (awaiting.empty() ? " on the idle connection"
                          : " while awaiting the ACK for " + awaiting + "; not taken as that ACK");
    if (absl::StatusOr<storage::IngestOutcome> stored = store_.Ingest(record); !stored.ok()) {
      Log(spdlog::level::warn, "event=stray_ack_audit_failed endpoint=" + w.endpoint.id +
                                   " error=\"" + OneLine(Text(stored.status())) + "\"");
    }
  }

  // Orders placed while no endpoint took their tests: route them now.
  void RunRouter() {
    while (!stopping()) {
      const std::uint64_t seen = generation();
      absl::StatusOr<std::vector<storage::OutboxItem>> items = store_.ClaimEndpointOutbox(
          options_.instance_id, kUnroutedEndpoint, absl::Minutes(1), 64, /*in_order=*/false);
      if (!items.ok() || items->empty()) {
        WaitForWork(seen, items.ok() ? options_.poll_interval * 4 : absl::Seconds(1));
        continue;
      }
      bool routed_any = false;
      for (const storage::OutboxItem& item : *items) {
        storage::OutboxSettlement s;
        s.outcome = storage::OutboxSettlement::Outcome::kRelease;
        s.next_attempt_at = options_.clock();
        absl::StatusOr<storage::StoredOrder> order = store_.GetOrder(item.order_id);
        absl::StatusOr<std::string> endpoint =
            order.ok() ? Route(order->test_codes) : absl::StatusOr<std::string>(order.status());
        if (endpoint.ok()) {
          s.endpoint = *endpoint;
          routed_any = true;
        } else if (absl::IsInvalidArgument(endpoint.status())) {
          s.outcome = storage::OutboxSettlement::Outcome::kFail;
          s.error = Text(endpoint.status());
          s.order_status = "failed";
          s.order_status_from = kUnsent;
        } else {
          s.next_attempt_at = options_.clock() + options_.unroutable_retry;
          s.error = "not sent: " + Text(endpoint.status());
        }
        if (absl::Status st = store_.SettleOutbox(item.id, options_.instance_id, s); !st.ok()) {
          Log(spdlog::level::warn,
              "event=order_route_failed order_id=" + std::to_string(item.order_id) + " error=\"" +
                  OneLine(Text(st)) + "\"");
        } else if (!endpoint.ok()) {
          Log(spdlog::level::info,
              "event=order_unrouted order_id=" + std::to_string(item.order_id) + " reason=\"" +
                  OneLine(Text(endpoint.status())) + "\"");
        }
      }
      if (routed_any) {
        Wake();
      }
    }
  }

  storage::Store& store_;
  OrderDispatcherOptions options_;

  std::mutex run_mu_;  // Start/Stop/Reload, one at a time
  bool running_ = false;

  mutable std::mutex config_mu_;
  LisEndpoints endpoints_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::thread router_;

  mutable std::mutex counters_mu_;
  std::map<std::string, std::shared_ptr<AtomicCounters>> counters_;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::uint64_t wake_generation_ = 0;
  bool stop_ = false;
};

absl::StatusOr<std::unique_ptr<OrderDispatcher>> OrderDispatcher::Create(
    storage::Store& store, LisEndpoints endpoints, OrderDispatcherOptions options) {
  auto impl = std::make_unique<Impl>(store, std::move(options));
  if (absl::Status s = impl->Init(std::move(endpoints)); !s.ok()) {
    return s;
  }
  return std::unique_ptr<OrderDispatcher>(new OrderDispatcher(std::move(impl)));
}

OrderDispatcher::OrderDispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OrderDispatcher::~OrderDispatcher() = default;
void OrderDispatcher::Start() { impl_->Start(); }
void OrderDispatcher::Stop() { impl_->Stop(); }
absl::Status OrderDispatcher::Reload(LisEndpoints endpoints) {
  return impl_->Reload(std::move(endpoints));
}
void OrderDispatcher::Wake() { impl_->Wake(); }
absl::StatusOr<std::string> OrderDispatcher::Route(const std::vector<std::string>& codes) const {
  return impl_->Route(codes);
}
std::map<std::string, EndpointCounters> OrderDispatcher::counters() const {
  return impl_->counters();
}
std::string OrderDispatcher::MetricsText() const { return impl_->MetricsText(); }

}  // namespace bridge::api::service
