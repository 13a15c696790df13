#include "mapping/hl7/batch.h"

#include <string>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace bridge::hl7 {
namespace {

bool StartsSegment(std::string_view line, std::string_view id) {
  // "MSH|" - the fourth character is the field separator, never a letter.
  return line.size() >= 4 && line.substr(0, 3) == id &&
         !((line[3] >= 'A' && line[3] <= 'Z') || (line[3] >= '0' && line[3] <= '9'));
}

bool IsEnvelope(std::string_view line) {
  return StartsSegment(line, "FHS") || StartsSegment(line, "BHS") || StartsSegment(line, "BTS") ||
         StartsSegment(line, "FTS");
}

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\0') return false;
  }
  return true;
}

}  // namespace

void MessageSplitter::Feed(std::string_view chunk, const Callback& on_message) {
  std::size_t start = 0;
  const auto line_ends_at = [&](std::size_t i) {
    if (line_.empty()) {
      OnLine(chunk.substr(start, i - start), consumed_ + start, on_message);
    } else {
      line_.append(chunk.substr(start, i - start));
      OnLine(line_, line_offset_, on_message);
      line_.clear();
    }
    start = i + 1;
  };
  // CR, LF and the MLLP framing bytes all end a line.
  std::size_t i = 0;
#ifdef __SSE2__
  // Segments run some 80 bytes between line ends: look at 16 bytes at a
  // time and visit only the line ends (`parse --check` reads gigabytes).
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i vt = _mm_set1_epi8('\x0b');
  const __m128i fs = _mm_set1_epi8('\x1c');
  for (; i + 16 <= chunk.size(); i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk.data() + i));
    const __m128i ends =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, cr), _mm_cmpeq_epi8(bytes, lf)),
                     _mm_or_si128(_mm_cmpeq_epi8(bytes, vt), _mm_cmpeq_epi8(bytes, fs)));
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(ends)); mask != 0;
         mask &= mask - 1) {
      line_ends_at(i + static_cast<std::size_t>(__builtin_ctz(mask)));
    }
  }
#endif
  for (; i < chunk.size(); ++i) {
    const char c = chunk[i];
    if (c == '\r' || c == '\n' || c == '\x0b' || c == '\x1c') {
      line_ends_at(i);
    }
  }
  if (start < chunk.size()) {
    if (line_.empty()) line_offset_ = consumed_ + start;
    // A single line longer than the message limit cannot be held; keep its
    // head so the message is still reported (as stray) with its offset.
    std::size_t room = max_message_bytes_ > line_.size() ? max_message_bytes_ - line_.size() : 0;
    std::string_view rest = chunk.substr(start);
    if (rest.size() > room) {
      message_overflowed_ = true;
      rest = rest.substr(0, room);
    }
    line_.append(rest);
  }
  consumed_ += chunk.size();
}

void MessageSplitter::OnLine(std::string_view line, std::uint64_t line_offset,
                             const Callback& on_message) {
  if (line.substr(0, 3) == "\xEF\xBB\xBF") {  // a byte-order mark before a message
    line.remove_prefix(3);
    line_offset += 3;
  }
  if (line.empty() || IsBlank(line)) return;
  if (IsEnvelope(line)) {
    Flush(on_message);
    return;
  }
  if (StartsSegment(line, "MSH")) {
    Flush(on_message);
    message_offset_ = line_offset;
    message_is_stray_ = false;
  } else if (message_.empty()) {
    message_offset_ = line_offset;
    message_is_stray_ = true;
  }
  if (message_.size() + line.size() + 1 > max_message_bytes_) {
    message_overflowed_ = true;
    return;
  }
  message_.append(line);
  message_.push_back('\r');
}

void MessageSplitter::Flush(const Callback& on_message) {
  if (message_.empty()) {
    message_overflowed_ = false;
    return;
  }
  SplitMessage out;
  out.bytes = message_;
  out.offset = message_offset_;
  out.index = next_index_++;
  out.is_stray = message_is_stray_ || message_overflowed_;
  on_message(out);
  message_.clear();
  message_is_stray_ = false;
  message_overflowed_ = false;
}

void MessageSplitter::Finish(const Callback& on_message) {
  if (!line_.empty()) {
    std::string line = std::move(line_);
    line_.clear();
    OnLine(line, line_offset_, on_message);
  }
  Flush(on_message);
}

std::vector<OwnedMessage> SplitMessages(std::string_view bytes) {
  std::vector<OwnedMessage> messages;
  MessageSplitter splitter(bytes.size() + 16);
  auto collect = [&](const SplitMessage& m) {
    messages.push_back({std::string(m.bytes), m.offset, m.is_stray});
  };
  splitter.Feed(bytes, collect);
  splitter.Finish(collect);
  return messages;
}

}  // namespace bridge::hl7
