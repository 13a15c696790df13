// mllp/frame_decoder.h
//
// FrameDecoder turns an arbitrary byte stream into MLLP frames
// (<VT> payload <FS><CR>). It does no I/O and keeps no clock: callers feed it
// whatever bytes a read produced and collect zero or more decoded frames, so
// every framing rule is unit-tested without a socket.
//
//   FrameDecoder decoder(options.max_frame_bytes);
//   std::vector<DecodedFrame> frames;
//   decoder.Feed(bytes_from_socket, &frames);
//   ...
//   decoder.Finish(&frames);  // at end of stream
//
// Leniency rules (senders in the field are sloppy; none of these is an error):
//  - Bytes outside a frame (junk, NUL, CR, LF, a stray <FS>) are skipped and
//    counted in stats().junk_bytes.
//  - <FS> not followed by <CR> still ends the frame (counted in
//    stats().missing_cr); the byte after it is treated as outside a frame.
//    At end of stream, Finish() delivers a frame whose final <CR> never came.
//  - <VT> inside a frame means the sender restarted: the unfinished frame is
//    dropped (stats().truncated_frames, its bytes counted as junk) and a new
//    one begins. <VT> never occurs in HL7 ER7 text.
//
// Size limit: a payload longer than `max_frame_bytes` is never buffered
// whole. As soon as the limit is crossed the decoder emits one DecodedFrame
// with `oversize = true` whose payload holds only the first
// `oversize_prefix_bytes` (enough to read MSH and answer a NAK), frees the
// rest, and skips input up to the end of that frame. The decoder's buffer
// never grows beyond max_frame_bytes (see buffer_capacity()).
//
// Not thread-safe; one decoder per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mllp/options.h"

namespace bridge::mllp {

struct DecodedFrame {
  // The payload without framing bytes; for an oversize frame, its first
  // oversize_prefix_bytes only.
  std::string payload;
  // True when the frame exceeded max_frame_bytes and was cut.
  bool oversize = false;
};

// Counters since construction (not reset by Reset()).
struct DecoderStats {
  std::uint64_t frames = 0;            // complete frames delivered (oversize excluded)
  std::uint64_t oversize_frames = 0;   // frames cut at max_frame_bytes
  std::uint64_t junk_bytes = 0;        // bytes skipped outside any frame
  std::uint64_t missing_cr = 0;        // frames whose <FS> was not followed by <CR>
  std::uint64_t truncated_frames = 0;  // frames abandoned by a new <VT> or end of stream
  std::uint64_t frames_started = 0;    // <VT> seen (lets a caller time each frame)
};

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes = kDefaultMaxFrameBytes,
                        std::size_t oversize_prefix_bytes = kDefaultOversizePrefixBytes);

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Consumes all of `bytes` and appends every frame completed by them (and
  // at most one oversize notice per oversize frame) to `*frames`, in order.
  // Never fails: see the leniency rules above.
  void Feed(std::string_view bytes, std::vector<DecodedFrame>* frames);

  // Signals end of stream. Appends a frame still waiting for its final <CR>
  // to `*frames`. Returns false when a frame was left unfinished (started but
  // no <FS>): it is dropped and counted in truncated_frames. The decoder is
  // back in its initial state afterwards.
  bool Finish(std::vector<DecodedFrame>* frames);

  // Drops any partial frame; stats are kept.
  void Reset();

  // True between a <VT> and the end of its frame (including while skipping
  // an oversize frame). The server times such frames against its read
  // deadline.
  bool in_frame() const { return state_ != State::kIdle; }

  // Bytes held for the current partial frame, and the memory reserved for
  // them; both are always <= max_frame_bytes.
  std::size_t buffered_bytes() const { return current_.size(); }
  std::size_t buffer_capacity() const { return current_.capacity(); }

  const DecoderStats& stats() const { return stats_; }

 private:
  enum class State { kIdle, kInFrame, kSawEndBlock, kDiscarding, kDiscardSawEndBlock };

  void Append(std::string_view bytes, std::vector<DecodedFrame>* frames);
  void EmitCurrent(std::vector<DecodedFrame>* frames);

  const std::size_t max_frame_bytes_;
  const std::size_t oversize_prefix_bytes_;
  State state_ = State::kIdle;
  std::string current_;  // payload collected so far, without framing bytes
  DecoderStats stats_;
};

}  // namespace bridge::mllp
