// api/http/event_feed.cc: SSE streams fed by the EventBus and the REST paths.
#include "api/http/event_feed.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace bridge::api::http {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(Writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void String(Writer& w, std::string_view value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void PatientIdMember(Writer& w, const std::string& pms_patient_id) {
  Key(w, "patient_id");
  const std::string json = PatientIdJson(pms_patient_id);
  w.RawValue(json.c_str(), json.size(), rapidjson::kNumberType);
}

std::string Event(std::string_view name, const rapidjson::StringBuffer& data, std::int64_t id = 0) {
  std::string out;
  if (id > 0) {
    absl::StrAppend(&out, "id: ", id, "\n");
  }
  absl::StrAppend(&out, "event: ", std::string(name),
                  "\ndata: ", std::string(data.GetString(), data.GetSize()), "\n\n");
  return out;
}

std::string ResultEventText(std::int64_t result_id, const std::string& pms_patient_id,
                            bool critical, const std::string& status, bool corrected) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "result_id");
  w.Int64(result_id);
  PatientIdMember(w, pms_patient_id);
  Key(w, "critical");
  w.Bool(critical);
  Key(w, "status");
  String(w, status);
  Key(w, "corrected");
  w.Bool(corrected);
  w.EndObject();
  return Event("result", buffer, result_id);
}

constexpr char kResync[] = "event: resync\ndata: {}\n\n";
constexpr char kKeepAlive[] = ": keep-alive\n\n";
constexpr char kUnauthorized[] =
    "event: unauthorized\ndata: {\"detail\":\"the API token is no longer valid\"}\n\n";

}  // namespace

std::string PatientIdJson(const std::string& pms_patient_id) {
  const bool digits =
      !pms_patient_id.empty() && pms_patient_id.size() <= 18 &&
      std::all_of(pms_patient_id.begin(), pms_patient_id.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }) &&
      (pms_patient_id[0] != '0' || pms_patient_id == "0");
  if (digits) {
    return pms_patient_id;
  }
  if (pms_patient_id.empty()) {
    return "null";
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  String(w, pms_patient_id);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// One client's stream: events queue here until the server's session asks for
// them (Next), woken through the function the server gave to Start.
class EventFeed::Stream final : public ResponseStream {
 public:
  Stream(EventFeed* feed, StillAuthorized still_authorized, std::size_t queue_limit)
      : feed_(feed), still_authorized_(std::move(still_authorized)), queue_limit_(queue_limit) {}
  ~Stream() override { feed_->Remove(this); }

  // Called by Open before the stream is handed to the server.
  void SetOpening(std::string text, std::set<std::int64_t> replayed) {
    std::lock_guard lock(mutex_);
    opening_ = std::move(text);
    replayed_ = std::move(replayed);
  }

  void Start(std::function<void()> wake) override {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
    wake_ = std::move(wake);
    wake_();
  }

  std::optional<std::string> Next(bool idle) override {
    if (ended_) {
      return std::nullopt;
    }
    if (idle && still_authorized_ && !still_authorized_()) {
      ended_ = true;
      std::lock_guard lock(mutex_);
      if (wake_) {
        wake_();  // come back for the end at once
      }
      return std::string(kUnauthorized);
    }
    std::lock_guard lock(mutex_);
    std::string out = std::move(opening_);
    opening_.clear();
    if (overflowed_) {
      overflowed_ = false;
      out += kResync;
    }
    for (const auto& [result_id, text] : queue_) {
      if (result_id > 0 && replayed_.count(result_id) > 0) {
        continue;
      }
      out += text;
    }
    queue_.clear();
    if (out.empty() && idle) {
      out = kKeepAlive;
    }
    return out;
  }

  void Close() override {
    feed_->Remove(this);
    std::lock_guard lock(mutex_);
    closed_ = true;
    wake_ = nullptr;
  }

  // From EventFeed::Broadcast, under the feed's streams lock.
  void Push(std::int64_t result_id, const std::string& text) {
    std::lock_guard lock(mutex_);
    if (closed_) {
      return;
    }
    if (queue_.size() >= queue_limit_) {
      // The client is not reading fast enough: drop what is queued and tell
      // it to re-read the state instead of silently missing events.
      queue_.clear();
      overflowed_ = true;
    } else {
      queue_.emplace_back(result_id, text);
    }
    if (wake_) {
      wake_();
    }
  }

 private:
  EventFeed* const feed_;
  const StillAuthorized still_authorized_;
  const std::size_t queue_limit_;
  bool ended_ = false;  // server session only
  std::mutex mutex_;
  std::function<void()> wake_;
  bool closed_ = false;
  bool overflowed_ = false;
  std::string opening_;
  std::set<std::int64_t> replayed_;
  std::deque<std::pair<std::int64_t, std::string>> queue_;
};

EventFeed::EventFeed(service::EventBus* bus, service::Results& results, EventFeedOptions options)
    : results_(results), options_(std::move(options)) {
  if (bus != nullptr) {
    subscription_ = bus->Subscribe([this](const service::ResultEvent& e) {
      {
        std::lock_guard lock(streams_mutex_);
        if (streams_.empty()) {
          return;
        }
      }
      Broadcast(e.result_id,
                ResultEventText(e.result_id, e.pms_patient_id, e.critical, e.status, e.corrected));
    });
  }
}

EventFeed::~EventFeed() { subscription_.Cancel(); }

absl::StatusOr<std::string> EventFeed::IssueTicket(const service::Principal& who,
                                                   std::string_view token) {
  absl::StatusOr<std::string> random = service::NewToken();
  if (!random.ok()) {
    return random.status();
  }
  const std::string ticket = "evt_" + random->substr(3);
  const absl::Time now = options_.clock();
  std::lock_guard lock(tickets_mutex_);
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    it = it->second.expires <= now ? tickets_.erase(it) : std::next(it);
  }
  if (static_cast<int>(tickets_.size()) >= options_.max_tickets) {
    return absl::ResourceExhaustedError("too many event-stream tickets outstanding; retry later");
  }
  tickets_[service::Sha256Hex(ticket)] =
      Ticket{Grant{who, std::string(token)}, now + options_.ticket_lifetime};
  return ticket;
}

absl::StatusOr<EventFeed::Grant> EventFeed::RedeemTicket(std::string_view ticket) {
  const std::string key = service::Sha256Hex(ticket);
  std::lock_guard lock(tickets_mutex_);
  auto it = tickets_.find(key);
  if (it == tickets_.end()) {
    return absl::UnauthenticatedError("unknown or already used event-stream ticket");
  }
  Ticket found = std::move(it->second);
  tickets_.erase(it);
  if (found.expires <= options_.clock()) {
    return absl::UnauthenticatedError("expired event-stream ticket");
  }
  return std::move(found.grant);
}

absl::StatusOr<std::shared_ptr<ResponseStream>> EventFeed::Open(std::int64_t last_event_id,
                                                                StillAuthorized still_authorized) {
  auto stream = std::make_shared<Stream>(this, std::move(still_authorized), options_.queue_limit);
  {
    // Registered before storage is read, so nothing stored meanwhile is
    // missed; what is both replayed and queued is sent once.
    std::lock_guard lock(streams_mutex_);
    streams_.push_back(stream.get());
  }
  service::ResultFilter filter;
  filter.limit = last_event_id > 0 ? options_.replay_limit + 1 : 1;
  absl::StatusOr<service::ResultList> newest = results_.List(filter);
  if (!newest.ok()) {
    return newest.status();  // the stream unregisters itself when dropped
  }
  const std::int64_t last_result_id =
      newest->results.empty() ? 0 : newest->results.front().result.id;
  std::string opening = absl::StrCat("retry: ", options_.retry_milliseconds, "\n\n");
  {
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    Key(w, "last_result_id");
    w.Int64(last_result_id);
    w.EndObject();
    opening += Event("ready", buffer);
  }
  std::set<std::int64_t> replayed;
  if (last_event_id > 0) {
    std::vector<const service::ResultView*> missed;
    for (const service::ResultView& view : newest->results) {
      if (view.result.id > last_event_id) {
        missed.push_back(&view);
      }
    }
    if (static_cast<int>(missed.size()) > options_.replay_limit) {
      opening += kResync;
    } else {
      for (auto it = missed.rbegin(); it != missed.rend(); ++it) {
        const storage::StoredResult& r = (*it)->result;
        opening += ResultEventText(r.id, (*it)->pms_patient_id, r.result.critical,
                                   r.result.result_status, r.result.result_status == "C");
        replayed.insert(r.id);
      }
    }
  }
  stream->SetOpening(std::move(opening), std::move(replayed));
  return std::shared_ptr<ResponseStream>(std::move(stream));
}

void EventFeed::PublishAcknowledged(std::int64_t result_id, const std::string& pms_patient_id) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "result_id");
  w.Int64(result_id);
  PatientIdMember(w, pms_patient_id);
  w.EndObject();
  Broadcast(0, Event("acknowledged", buffer));
}

void EventFeed::PublishOrder(std::int64_t order_id, const std::string& pms_patient_id,
                             const std::string& status) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "order_id");
  w.Int64(order_id);
  PatientIdMember(w, pms_patient_id);
  Key(w, "status");
  String(w, status);
  w.EndObject();
  Broadcast(0, Event("order", buffer));
}

int EventFeed::open_streams() const {
  std::lock_guard lock(streams_mutex_);
  return static_cast<int>(streams_.size());
}

void EventFeed::Broadcast(std::int64_t result_id, const std::string& text) {
  std::lock_guard lock(streams_mutex_);
  for (Stream* stream : streams_) {
    stream->Push(result_id, text);
  }
}

void EventFeed::Remove(Stream* stream) {
  std::lock_guard lock(streams_mutex_);
  streams_.remove(stream);
}

}  // namespace bridge::api::http
