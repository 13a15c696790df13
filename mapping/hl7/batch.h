// Splitting input that holds several messages: an FHS/BHS batch, an MLLP
// capture, or a plain export with one message after another (CR, LF or
// CRLF separated). FHS, BHS, BTS and FTS lines are envelope, not message,
// and are dropped; a new message starts at every line that begins with MSH.
//
//   MessageSplitter splitter;
//   while (read a chunk) splitter.Feed(chunk, [&](const SplitMessage& m) { ... });
//   splitter.Finish([&](const SplitMessage& m) { ... });
//
// The splitter holds at most one message plus one partial line, so a
// multi-gigabyte export is read in constant memory. No I/O; not thread-safe
// (one splitter per stream).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bridge::hl7 {

struct SplitMessage {
  std::string_view bytes;    // the message, valid during the callback only
  std::uint64_t offset = 0;  // byte offset of its first byte in the stream
  std::uint64_t index = 0;   // 0-based number of the message in the stream
  // True when these bytes are not a message: text before the first MSH (or a
  // message cut at max_message_bytes) that is not envelope. It is reported so
  // the caller can count it as a failure rather than lose it silently.
  bool is_stray = false;
};

class MessageSplitter {
 public:
  using Callback = std::function<void(const SplitMessage&)>;

  // `max_message_bytes` bounds memory: a longer message is reported as stray
  // bytes (truncated to that size) so the stream can go on.
  explicit MessageSplitter(std::size_t max_message_bytes = 64u << 20)
      : max_message_bytes_(max_message_bytes) {}

  void Feed(std::string_view chunk, const Callback& on_message);
  // Flushes the last message at the end of the stream.
  void Finish(const Callback& on_message);

 private:
  void OnLine(std::string_view line, std::uint64_t line_offset, const Callback& on_message);
  void Flush(const Callback& on_message);

  std::size_t max_message_bytes_;
  std::string line_;               // the current partial line
  std::uint64_t line_offset_ = 0;  // stream offset of line_[0]
  std::uint64_t consumed_ = 0;     // bytes fed so far
  std::string message_;            // the message being collected, CR-terminated lines
  std::uint64_t message_offset_ = 0;
  bool message_is_stray_ = false;
  bool message_overflowed_ = false;
  std::uint64_t next_index_ = 0;
};

// Splits a whole buffer (convenience over MessageSplitter); the result owns
// copies of the messages, stray content included with is_stray set.
struct OwnedMessage {
  std::string bytes;
  std::uint64_t offset = 0;
  bool is_stray = false;
};
std::vector<OwnedMessage> SplitMessages(std::string_view bytes);

}  // namespace bridge::hl7
