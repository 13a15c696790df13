// api/service/event_bus.h
//
// EventBus: in-process publish/subscribe of stored-result events. Ingest
// publishes one ResultEvent per lab_results row, after the transaction that
// stored it has committed; the gRPC WatchResults stream and the HTTP SSE feed
// subscribe. Events carry ids and flags only, never values or names.
//
//   EventBus bus;
//   EventBus::Subscription sub = bus.Subscribe([](const ResultEvent& e) { ... });
//   bus.Publish({{.result_id = 7, .patient_id = 3, .critical = true}});
//   sub.Cancel();  // or let it go out of scope
//
// Positions: an event's position is its result_id (lab_results.id), which
// grows with every insert. A subscriber that disconnects remembers the last
// result_id it saw; on reconnect it subscribes first, then replays from
// storage (Store::ListResults, ids above that position), and drops live
// events whose id it has already replayed. The bus itself keeps no history.
//
// Delivery: callbacks run synchronously on the publishing thread (an Ingest
// worker), in publication order per publisher, and must be quick and must
// not block: a streaming API should push into its own bounded queue and
// drop the subscriber (to resync from storage) when the queue is full. A
// callback must not call Subscribe/Cancel on the same bus.
//
// Thread-safety: every method may be called from any thread. After Cancel()
// (or the Subscription's destruction) returns, the callback is never called
// again and is not running.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace bridge::api::service {

struct ResultEvent {
  std::int64_t result_id = 0;   // lab_results.id: the event's position
  std::int64_t patient_id = 0;  // patients.id
  std::string pms_patient_id;   // PID-3 with our assigning authority ("" when none)
  std::int64_t message_id = 0;  // hl7_messages.id of the ORU that carried it
  bool critical = false;
  std::string status;      // OBX-11 (F, P, C, ...)
  bool corrected = false;  // OBX-11 == "C"
};

class EventBus {
 public:
  using Callback = std::function<void(const ResultEvent&)>;

  // Ends one subscription when cancelled or destroyed. Move-only.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription();

    void Cancel();
    bool active() const { return bus_ != nullptr; }

   private:
    friend class EventBus;
    Subscription(EventBus* bus, std::uint64_t id) : bus_(bus), id_(id) {}
    EventBus* bus_ = nullptr;
    std::uint64_t id_ = 0;
  };

  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // The bus must outlive every Subscription it returns.
  Subscription Subscribe(Callback callback);

  // Delivers each event, in order, to every current subscriber.
  void Publish(const std::vector<ResultEvent>& events);

  int subscriber_count() const;
  // Events published since construction.
  std::uint64_t published() const;

 private:
  void Unsubscribe(std::uint64_t id);

  mutable std::shared_mutex mutex_;  // shared: Publish; exclusive: (un)subscribe
  std::map<std::uint64_t, std::shared_ptr<Callback>> subscribers_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> published_{0};
};

}  // namespace bridge::api::service
