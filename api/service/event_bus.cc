#include "api/service/event_bus.h"

#include <utility>

namespace bridge::api::service {

EventBus::Subscription::Subscription(Subscription&& other) noexcept
    : bus_(std::exchange(other.bus_, nullptr)), id_(other.id_) {}

EventBus::Subscription& EventBus::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Cancel();
    bus_ = std::exchange(other.bus_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

EventBus::Subscription::~Subscription() { Cancel(); }

void EventBus::Subscription::Cancel() {
  if (bus_ != nullptr) std::exchange(bus_, nullptr)->Unsubscribe(id_);
}

EventBus::Subscription EventBus::Subscribe(Callback callback) {
  std::unique_lock lock(mutex_);
  const std::uint64_t id = next_id_++;
  subscribers_.emplace(id, std::make_shared<Callback>(std::move(callback)));
  return Subscription(this, id);
}

void EventBus::Unsubscribe(std::uint64_t id) {
  // Exclusive lock: waits for any Publish in progress, so the callback is not
  // running once this returns.
  std::unique_lock lock(mutex_);
  subscribers_.erase(id);
}

void EventBus::Publish(const std::vector<ResultEvent>& events) {
  if (events.empty()) return;
  published_.fetch_add(events.size(), std::memory_order_relaxed);
  std::shared_lock lock(mutex_);
  for (const ResultEvent& event : events) {
    for (const auto& [id, callback] : subscribers_) (*callback)(event);
  }
}

int EventBus::subscriber_count() const {
  std::shared_lock lock(mutex_);
  return static_cast<int>(subscribers_.size());
}

std::uint64_t EventBus::published() const { return published_.load(std::memory_order_relaxed); }

}  // namespace bridge::api::service
