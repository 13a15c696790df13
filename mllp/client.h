// mllp/client.h
//
// Client is a blocking MLLP sender for one peer: it connects (plain TCP or
// TLS with server-name verification), sends a frame and waits for the reply
// frame that answers it, up to ClientOptions::ack_timeout. It keeps the
// connection for the next send and reconnects after an error.
//
// Correlation without HL7 knowledge: the caller injects a function that
// reads the correlation id out of a reply payload (for HL7: MSA-2, supplied
// by api/ from the HL7 codec). A reply whose id differs from the id the
// caller expects (a late ACK for an earlier message, or a mismatched one) is
// never taken as the answer: it is reported as a stray reply and the client
// keeps waiting until the deadline.
//
//   auto client = Client::Create(options, [](std::string_view ack) { return Msa2(ack); });
//   absl::StatusOr<Exchange> ex = (*client)->SendAndAwait(orm_er7, "CTRL0001");
//   if (ex.ok()) { use(ex->reply); log(ex->stray_replies); }
//
// Thread-safety: not thread-safe; use one Client per thread (a CLI, or the
// order dispatcher's sending thread). Calls block the calling thread; never
// call them from an io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "mllp/options.h"

namespace bridge::mllp {

// Returns the correlation id of a reply payload (HL7: MSA-2), or nullopt
// when it has none. Must not throw.
using CorrelationIdExtractor =
    std::function<std::optional<std::string>(std::string_view reply_payload)>;

// A reply frame that did not answer the message being waited for.
struct StrayReply {
  std::string payload;
  std::optional<std::string> correlation_id;  // what the extractor returned
};

struct Exchange {
  std::string reply;                      // payload of the matching reply, unframed
  std::vector<StrayReply> stray_replies;  // late or mismatched replies seen meanwhile
  bool reused_connection = false;         // false: a new connection was opened for it
};

class Client {
 public:
  // Loads the TLS files when options.tls.enabled; does not connect yet.
  // InvalidArgument for unreadable TLS files or an empty host.
  // An empty `extractor` takes the first reply as the answer (no correlation).
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options,
                                                        CorrelationIdExtractor extractor);
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection now (SendAndAwait does so on demand).
  // Unavailable on resolution/connect/handshake failure or connect_timeout,
  // including a server certificate that does not verify or does not match
  // the server name.
  absl::Status Connect();

  // Sends `payload` in one frame and waits for the reply whose correlation
  // id equals `expected_id`.
  //  - InvalidArgument: payload contains <VT> or <FS> (cannot be framed).
  //  - Unavailable: cannot connect, the write failed, or the peer closed
  //    before the reply came (the connection is dropped; the next call
  //    reconnects). Whether the peer received the message is unknown.
  //  - DeadlineExceeded: no matching reply within ack_timeout. The
  //    connection is kept, so a late reply is seen (as stray) by a later call.
  //  - ResourceExhausted: the peer sent a reply over max_frame_bytes (the
  //    connection is dropped).
  // Stray replies seen by a call that failed are kept for TakeStrayReplies().
  absl::StatusOr<Exchange> SendAndAwait(std::string_view payload, std::string_view expected_id);

  // Stray replies seen by failed SendAndAwait calls since the last Take.
  std::vector<StrayReply> TakeStrayReplies();

  // Without waiting: those stray replies, plus every frame the peer sent on
  // the open connection since the last call although nothing was in flight
  // (in enhanced mode, the application ACK that follows a commit ACK).
  std::vector<StrayReply> TakeUnsolicitedReplies();

  // Closes the connection, if any.
  void Close();

  bool connected() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace bridge::mllp
