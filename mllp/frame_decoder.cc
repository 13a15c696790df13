#include "mllp/frame_decoder.h"

#include <algorithm>
#include <utility>

#include "mllp/frame_encoder.h"

namespace bridge::mllp {

FrameDecoder::FrameDecoder(std::size_t max_frame_bytes, std::size_t oversize_prefix_bytes)
    : max_frame_bytes_(max_frame_bytes),
      oversize_prefix_bytes_(std::min(oversize_prefix_bytes, max_frame_bytes)) {}

void FrameDecoder::Feed(std::string_view bytes, std::vector<DecodedFrame>* frames) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    switch (state_) {
      case State::kIdle: {
        // Skip everything up to the next start block in one step.
        const std::size_t vt = bytes.find(kStartBlock, i);
        const std::size_t end = vt == std::string_view::npos ? bytes.size() : vt;
        stats_.junk_bytes += end - i;
        i = end;
        if (vt != std::string_view::npos) {
          ++i;
          ++stats_.frames_started;
          current_.clear();
          state_ = State::kInFrame;
        }
        break;
      }
      case State::kInFrame: {
        const std::size_t stop = bytes.find_first_of(std::string_view("\x0b\x1c", 2), i);
        const std::size_t end = stop == std::string_view::npos ? bytes.size() : stop;
        Append(bytes.substr(i, end - i), frames);
        i = end;
        if (stop == std::string_view::npos || state_ != State::kInFrame) {
          break;  // chunk consumed, or Append switched to discarding an oversize frame
        }
        if (bytes[stop] == kEndBlock) {
          state_ = State::kSawEndBlock;
        } else {
          // A new <VT> before <FS>: the sender gave up on the previous frame.
          ++stats_.truncated_frames;
          stats_.junk_bytes += current_.size() + 1;  // its bytes and its <VT>
          ++stats_.frames_started;
          current_.clear();
        }
        ++i;
        break;
      }
      case State::kSawEndBlock: {
        EmitCurrent(frames);
        state_ = State::kIdle;
        if (bytes[i] == kCarriageReturn) {
          ++i;
        } else {
          ++stats_.missing_cr;  // the byte is looked at again as outside a frame
        }
        break;
      }
      case State::kDiscarding: {
        const std::size_t fs = bytes.find(kEndBlock, i);
        if (fs == std::string_view::npos) {
          i = bytes.size();
        } else {
          i = fs + 1;
          state_ = State::kDiscardSawEndBlock;
        }
        break;
      }
      case State::kDiscardSawEndBlock: {
        state_ = State::kIdle;
        if (bytes[i] == kCarriageReturn) {
          ++i;
        }
        break;
      }
    }
  }
}

bool FrameDecoder::Finish(std::vector<DecodedFrame>* frames) {
  bool complete = true;
  if (state_ == State::kSawEndBlock) {
    ++stats_.missing_cr;
    EmitCurrent(frames);
  } else if (state_ == State::kInFrame) {
    ++stats_.truncated_frames;
    complete = false;
  }
  Reset();
  return complete;
}

void FrameDecoder::Reset() {
  state_ = State::kIdle;
  std::string().swap(current_);
}

void FrameDecoder::Append(std::string_view bytes, std::vector<DecodedFrame>* frames) {
  if (bytes.size() > max_frame_bytes_ - current_.size()) {
    // Over the limit: keep a bounded prefix for the caller's NAK, free the rest.
    const std::size_t room = oversize_prefix_bytes_ > current_.size()
                                 ? std::min(oversize_prefix_bytes_ - current_.size(), bytes.size())
                                 : 0;
    current_.append(bytes.substr(0, room));
    current_.resize(std::min(current_.size(), oversize_prefix_bytes_));
    DecodedFrame frame;
    frame.payload = std::string(current_);  // exact-size copy; the big buffer is freed below
    frame.oversize = true;
    frames->push_back(std::move(frame));
    ++stats_.oversize_frames;
    std::string().swap(current_);
    state_ = State::kDiscarding;
    return;
  }
  const std::size_t needed = current_.size() + bytes.size();
  if (needed > current_.capacity()) {
    // Grow geometrically but never past the limit, so memory stays bounded.
    // (A fresh string's reserve() is exact; growing in place may round up.)
    std::string grown;
    grown.reserve(std::min(std::max(needed, 2 * current_.capacity()), max_frame_bytes_));
    grown.append(current_);
    current_.swap(grown);
  }
  current_.append(bytes);
}

void FrameDecoder::EmitCurrent(std::vector<DecodedFrame>* frames) {
  DecodedFrame frame;
  frame.payload = std::move(current_);
  current_ = std::string();
  frames->push_back(std::move(frame));
  ++stats_.frames;
}

}  // namespace bridge::mllp
