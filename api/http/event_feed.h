// api/http/event_feed.h
//
// EventFeed: the live feed behind GET /api/events, as server-sent events
// (text/event-stream). The lab dashboard listens to it so a critical result
// shows within a second of being stored, without polling; any SSE client
// (curl -N, EventSource) can do the same.
//
//   EventFeed feed(&bus, results, {});
//   absl::StatusOr<std::string> ticket = feed.IssueTicket(who, token);  // POST /api/events/ticket
//   absl::StatusOr<EventFeed::Grant> grant = feed.RedeemTicket(ticket);  // GET /api/events?ticket=
//   absl::StatusOr<std::shared_ptr<http::ResponseStream>> s = feed.Open(last_id, still_valid);
//   feed.PublishAcknowledged(42, "12345");  // after a successful acknowledge
//
// What it sends (ids and flags only, never values or names; details are read
// through the REST paths, which check roles and write the access audit):
//
//   retry: 2000
//   event: ready            data: {"last_result_id": N}
//   id: N  event: result    data: {"result_id", "patient_id", "critical", "status", "corrected"}
//   event: acknowledged     data: {"result_id", "patient_id"}
//   event: order            data: {"order_id", "patient_id", "status"}
//   event: resync           data: {}   (events were dropped: re-read everything)
//   event: unauthorized     data: {"detail"}, then the stream ends
//   : keep-alive            (a comment, after each idle interval)
//
// `result` events come from the service::EventBus (every stored result, on
// every ingest path); `acknowledged` and `order` come from the callers of
// PublishAcknowledged/PublishOrder (the REST paths of this process). A
// client that reconnects with Last-Event-ID (or ?last_event_id=) first gets
// the results stored after that id, replayed from storage, at most
// replay_limit of them (then `resync`).
//
// Tickets: EventSource cannot send an Authorization header, and a long-lived
// token must never appear in a URL (URLs end up in logs and histories). So a
// client holding a token asks for a ticket: random, single use, valid for
// ticket_lifetime, bound to the token's principal; only its SHA-256 is kept.
// A stream re-checks its token every idle interval and ends with
// `unauthorized` once the token is revoked.
//
// Thread-safety: every method may be called from any thread. The bus and the
// Results must outlive the feed; the feed must outlive its streams' server.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "api/http/server.h"
#include "api/service/auth.h"
#include "api/service/event_bus.h"
#include "api/service/results.h"

namespace bridge::api::http {

struct EventFeedOptions {
  absl::Duration ticket_lifetime = absl::Seconds(30);
  int max_tickets = 10000;         // outstanding; more is ResourceExhausted
  std::size_t queue_limit = 1000;  // events buffered per stream before `resync`
  int replay_limit = 500;          // results replayed after Last-Event-ID
  int retry_milliseconds = 2000;   // the SSE `retry:` hint
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class EventFeed {
 public:
  // Who a redeemed ticket speaks for, and how to tell whether the token
  // behind it is still valid.
  struct Grant {
    service::Principal principal;
    std::string token;
  };
  using StillAuthorized = std::function<bool()>;

  // `bus` may be null (no result events; acknowledgements and orders only).
  EventFeed(service::EventBus* bus, service::Results& results, EventFeedOptions options = {});
  ~EventFeed();
  EventFeed(const EventFeed&) = delete;
  EventFeed& operator=(const EventFeed&) = delete;

  // A single-use ticket for `who` (holding `token`).
  absl::StatusOr<std::string> IssueTicket(const service::Principal& who, std::string_view token);
  // Unauthenticated when the ticket is unknown, used or expired.
  absl::StatusOr<Grant> RedeemTicket(std::string_view ticket);

  // A stream starting after `last_event_id` (0: live events only). It ends
  // with `unauthorized` once `still_authorized` (may be empty) says false.
  absl::StatusOr<std::shared_ptr<ResponseStream>> Open(std::int64_t last_event_id,
                                                       StillAuthorized still_authorized);

  void PublishAcknowledged(std::int64_t result_id, const std::string& pms_patient_id);
  void PublishOrder(std::int64_t order_id, const std::string& pms_patient_id,
                    const std::string& status);

  int open_streams() const;
  absl::Duration ticket_lifetime() const { return options_.ticket_lifetime; }

  class Stream;  // one client's queue (event_feed.cc)

 private:
  void Broadcast(std::int64_t result_id, const std::string& text);
  void Remove(Stream* stream);

  service::Results& results_;
  const EventFeedOptions options_;
  struct Ticket {
    Grant grant;
    absl::Time expires;
  };
  std::mutex tickets_mutex_;
  std::map<std::string, Ticket> tickets_;  // by SHA-256 of the ticket
  mutable std::mutex streams_mutex_;
  std::list<Stream*> streams_;
  service::EventBus::Subscription subscription_;  // last: cancelled first
};

// The SSE `data:` JSON of an event for a PMS patient id: a JSON number when
// it is one (as in the REST answers), a string otherwise.
std::string PatientIdJson(const std::string& pms_patient_id);

}  // namespace bridge::api::http
