#include "mapping/hl7/message.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "mapping/hl7/absl_compat.h"
#include "mapping/hl7/error.h"

namespace bridge::hl7 {
namespace {

// Byte classes for the scanner. A byte is 0 (data) unless it is one of the
// message's delimiters or ends a segment.
enum : std::uint8_t {
  kField = 1,
  kRepetition = 2,
  kComponent = 4,
  kSubcomponent = 8,
  kEscape = 16,
  kTerminator = 32,  // CR, LF, and NUL (the sentinel after the last byte)
};

using ClassTable = std::array<std::uint8_t, 256>;

ClassTable MakeClassTable(const Delimiters& d) {
  ClassTable table{};
  table[static_cast<unsigned char>('\r')] = kTerminator;
  table[static_cast<unsigned char>('\n')] = kTerminator;
  table[0] = kTerminator;
  table[static_cast<unsigned char>(d.field)] = kField;
  table[static_cast<unsigned char>(d.repetition)] = kRepetition;
  table[static_cast<unsigned char>(d.component)] = kComponent;
  table[static_cast<unsigned char>(d.subcomponent)] = kSubcomponent;
  table[static_cast<unsigned char>(d.escape)] = kEscape;
  // NUL stays a terminator whatever the delimiters: the scanner relies on it
  // as the sentinel after the last byte.
  table[0] = kTerminator;
  return table;
}

const ClassTable& DefaultClassTable() {
  static const ClassTable table = MakeClassTable(Delimiters{});
  return table;
}

bool IsSegmentIdChar(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

bool IsLegalDelimiter(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7F && !absl::ascii_isalnum(u);
}

absl::Status ParseError(ErrorCode code, std::string segment, int sequence, int field,
                        long long offset, std::string_view message) {
  return Hl7Error(absl::StatusCode::kInvalidArgument, code,
                  {.segment = std::move(segment),
                   .segment_sequence = sequence,
                   .field = field,
                   .byte_offset = offset},
                  message);
}

// Offset of the first byte after a UTF-8 BOM and any blank lines or spaces.
std::size_t SkipLeadingNoise(std::string_view bytes) {
  std::size_t pos = 0;
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  while (pos < bytes.size() &&
         (bytes[pos] == '\r' || bytes[pos] == '\n' || bytes[pos] == ' ' || bytes[pos] == '\t')) {
    ++pos;
  }
  return pos;
}

// Reads MSH-1 and MSH-2 at `header` (which starts with "MSH").
absl::Status ReadDelimiters(std::string_view header, Delimiters* d, std::size_t* encoding_end,
                            std::vector<std::string>* warnings) {
  if (header.size() < 4 || !IsLegalDelimiter(header[3])) {
    return ParseError(ErrorCode::kDataTypeError, "MSH", 1, 1, 3,
                      "MSH-1 (field separator) is missing or not a legal delimiter");
  }
  d->field = header[3];
  std::size_t end = 4;
  while (end < header.size() && header[end] != d->field && header[end] != '\r' &&
         header[end] != '\n') {
    ++end;
  }
  *encoding_end = end;
  std::string_view chars = header.substr(4, end - 4);
  if (chars.empty()) {
    return ParseError(ErrorCode::kRequiredFieldMissing, "MSH", 1, 2, 4,
                      "MSH-2 (encoding characters) is empty");
  }
  if (chars.size() > 5) {
    return ParseError(ErrorCode::kDataTypeError, "MSH", 1, 2, 4,
                      "MSH-2 (encoding characters) has more than 5 characters");
  }
  const Delimiters defaults;
  char* slots[5] = {&d->component, &d->repetition, &d->escape, &d->subcomponent, &d->truncation};
  const char default_for[5] = {defaults.component, defaults.repetition, defaults.escape,
                               defaults.subcomponent, '\0'};
  std::string taken(1, d->field);
  for (int i = 0; i < 5; ++i) {
    const bool declared = i < static_cast<int>(chars.size());
    char c = declared ? chars[i] : default_for[i];
    if (!declared && c == '\0') {
      *slots[i] = '\0';  // no truncation character unless MSH-2 names one
      continue;
    }
    if (!IsLegalDelimiter(c)) {
      return ParseError(ErrorCode::kDataTypeError, "MSH", 1, 2, 4 + i,
                        "MSH-2 (encoding characters) holds a character that cannot be a "
                        "delimiter");
    }
    if (taken.find(c) != std::string::npos) {
      // Seen in real traffic: `^~\\&`, where the subcomponent separator
      // repeats the escape character. Fall back to the standard character
      // for this slot (MAPPING.md 1.2); a duplicate truncation character is
      // simply dropped.
      char fallback = default_for[i];
      if (fallback == '\0' || taken.find(fallback) != std::string::npos) {
        if (i == 4) {
          *slots[i] = '\0';
          warnings->push_back("MSH-2 repeats an encoding character; truncation character ignored");
          continue;
        }
        return ParseError(ErrorCode::kDataTypeError, "MSH", 1, 2, 4 + i,
                          "MSH-2 (encoding characters) repeats a delimiter");
      }
      warnings->push_back(absl::StrCat("MSH-2 repeats an encoding character at position ", i + 1,
                                       "; the standard one is used instead"));
      c = fallback;
    }
    *slots[i] = c;
    taken.push_back(c);
  }
  return absl::OkStatus();
}

// MSH-18's first repetition's first component, read from the raw header
// line before anything else (delimiters are always ASCII).
std::string_view RawMsh18(std::string_view header, const Delimiters& d) {
  // MSH-n is the (n-1)-th field separator's field, counting MSH-1 as the
  // separator right after "MSH". One pass, as this runs for every message.
  int separators = 0;
  std::size_t pos = 3;
  for (; pos < header.size(); ++pos) {
    const char c = header[pos];
    if (c == '\r' || c == '\n') return {};
    if (c == d.field && ++separators == 17) break;
  }
  if (pos >= header.size()) return {};
  std::string_view line = header.substr(0, header.find_first_of("\r\n", pos));
  std::string_view value = line.substr(pos + 1);
  value = value.substr(0, value.find(d.field));
  value = value.substr(0, value.find(d.repetition));
  value = value.substr(0, value.find(d.component));
  return value;
}

}  // namespace

// ---------------------------------------------------------------------------
// Parser

class Parser {
 public:
  Parser(Message* m, const ParseOptions& options) : m_(*m), options_(options) {}

  absl::Status Run(std::string_view bytes) {
    m_.raw_.reserve(bytes.size() + Message::kPadding);
    m_.raw_.assign(bytes.data(), bytes.size());
    m_.raw_.append(Message::kPadding, '\0');
    std::size_t start = SkipLeadingNoise(m_.raw());
    std::string_view header = m_.raw().substr(start);
    if (header.substr(0, 3) != "MSH") {
      if (header.substr(0, 3) == "FHS" || header.substr(0, 3) == "BHS") {
        return ParseError(ErrorCode::kSegmentSequenceError, std::string(header.substr(0, 3)), 1, 0,
                          static_cast<long long>(start),
                          "input is a batch (FHS/BHS); split it into messages first");
      }
      return ParseError(ErrorCode::kSegmentSequenceError, "MSH", 1, 0,
                        static_cast<long long>(start), "message does not start with MSH");
    }
    std::size_t encoding_end = 0;
    absl::Status status = ReadDelimiters(header, &m_.delimiters_, &encoding_end, &m_.warnings_);
    if (!status.ok()) return status;

    m_.charset_ = CharsetFromMsh18(RawMsh18(header, m_.delimiters_));
    std::string warning;
    status = ToUtf8(header, &m_.charset_, &m_.utf8_, &m_.converted_, &warning);
    if (!status.ok()) return status;
    if (m_.converted_) m_.utf8_.append(Message::kPadding, '\0');
    if (!warning.empty()) m_.warnings_.push_back(std::move(warning));
    offset_base_ = m_.converted_ ? 0 : start;
    // Offsets and counts are 32-bit and 28-bit in the tree.
    if (m_.text().size() >= Message::kCountMask) {
      return ParseError(ErrorCode::kValueTooLong, "MSH", 1, 0, 0, "message exceeds 64 MiB");
    }

    // Room for a typical message up front, so pushes never reallocate on the
    // hot path (vectors keep their capacity across ParseInto calls).
    // The text does not move while it is scanned: keep where it is rather
    // than asking the Message (which picks raw or converted) at every field.
    base_ = m_.text().data();
    size_ = m_.text().size();
    const std::size_t estimate = size_ / 4 + 16;
    for (int level = 0; level < 4; ++level) {
      if (m_.levels_[level].size() < estimate) m_.levels_[level].resize(estimate);
      UseStorage(level);
    }
    table_ = m_.delimiters_ == Delimiters{} ? &DefaultClassTable() : &custom_table_;
    if (table_ == &custom_table_) custom_table_ = MakeClassTable(m_.delimiters_);
#if defined(__SSE2__)
    const Delimiters& d = m_.delimiters_;
    const char specials[5] = {d.field, d.repetition, d.component, d.subcomponent, d.escape};
    for (int i = 0; i < 5; ++i) special_[i] = _mm_set1_epi8(specials[i]);
#endif
    status = ScanSegments(encoding_end);
    for (int level = 0; level < 4; ++level) {
      m_.level_size_[level] = static_cast<std::uint32_t>(size_of_[level]);
    }
    return status;
  }

 private:
  using Node = Message::Node;

  absl::Status ScanSegments(std::size_t encoding_end) {
    const std::string_view text = m_.text();
    const char* base = text.data();
    const std::size_t n = text.size();
    std::size_t pos = offset_base_;
    while (pos < n) {
      // Skip segment terminators and blank lines between segments.
      while (pos < n && (base[pos] == '\r' || base[pos] == '\n')) ++pos;
      if (pos >= n) break;
      const int sequence = static_cast<int>(m_.segments_.size()) + 1;
      // Segment id: three characters, then a field separator or the end.
      std::size_t id_end = pos;
      while (id_end < n && id_end - pos < 4 && base[id_end] != m_.delimiters_.field &&
             base[id_end] != '\r' && base[id_end] != '\n') {
        ++id_end;
      }
      std::string_view id = text.substr(pos, id_end - pos);
      if (id.size() != 3 || !IsSegmentIdChar(id[0], true) || !IsSegmentIdChar(id[1], false) ||
          !IsSegmentIdChar(id[2], false)) {
        if (OnlyTrailingNoise(text.substr(pos))) break;
        return ParseError(ErrorCode::kSegmentSequenceError, "", sequence, 0, Offset(pos),
                          absl::StrCat("segment ", sequence,
                                       " does not start with a segment id (3 capital letters "
                                       "or digits followed by the field separator)"));
      }
      if (id == "MSH" && sequence > 1) {
        if (options_.allow_trailing_messages) break;
        return ParseError(ErrorCode::kSegmentSequenceError, "MSH", sequence, 0, Offset(pos),
                          "a second MSH segment: the input holds more than one message");
      }
      Message::SegmentNode segment;
      segment.begin = static_cast<std::uint32_t>(pos);
      segment.first_field = static_cast<std::uint32_t>(size_of_[0]);
      std::size_t cursor = id_end;
      if (sequence == 1) {
        // MSH-1 is the separator itself and MSH-2 the encoding characters:
        // both are leaves that are never split or unescaped.
        Push(0, PlainLeaf(pos + 3, pos + 4));
        // `encoding_end` counts from the start of the header, which is `pos`
        // both in the input and in its UTF-8 conversion (the header is ASCII).
        const std::size_t enc_end = pos + encoding_end;
        Push(0, PlainLeaf(pos + 4, enc_end));
        cursor = enc_end;
      }
      absl::Status status = ScanFields(cursor, sequence, segment.first_field, &cursor);
      if (!status.ok()) return status;
      segment.end = static_cast<std::uint32_t>(cursor);
      segment.field_count = static_cast<std::uint32_t>(size_of_[0]) - segment.first_field;
      m_.segments_.push_back(segment);
      pos = cursor;
    }
    return absl::OkStatus();
  }

  // True when what is left is only MLLP framing bytes, NULs or whitespace.
  static bool OnlyTrailingNoise(std::string_view rest) {
    return std::all_of(rest.begin(), rest.end(), [](char c) {
      return c == '\x1c' || c == '\x0b' || c == '\0' || c == ' ' || c == '\t' || c == '\r' ||
             c == '\n';
    });
  }

  // Scans fields starting at `pos` (which is at a field separator or at the
  // end of the segment) until the segment ends; `*end` gets the offset of
  // the terminator.
  absl::Status ScanFields(std::size_t pos, int sequence, std::uint32_t first_field,
                          std::size_t* end) {
    const char* base = base_;
    const std::size_t n = size_;
    const char field_separator = m_.delimiters_.field;
    // base[n] is the string's NUL, never a field separator, so the byte can be
    // tested before the bound.
    while (base[pos] == field_separator && pos < n) {
      std::size_t begin = ++pos;
      std::uint8_t flags = 0;
      std::size_t mark_count = 0;
      pos = FieldEnd(begin, &flags, &mark_count);
      if (base[pos] == '\0' && pos < n) {
        return ParseError(ErrorCode::kDataTypeError, "", sequence,
                          static_cast<int>(size_of_[0] - first_field) + 1, Offset(pos),
                          "a NUL byte inside a segment");
      }
      if (flags & (kRepetition | kComponent | kSubcomponent)) {
        const std::uint32_t* marks = marks_;
        if (mark_count > kMaxMarks) {
          CollectMarks(begin, pos, &overflow_marks_);
          marks = overflow_marks_.data();
        }
        Push(0, Split(Level::kField, begin, pos, flags, marks, marks + mark_count));
      } else {
        Push(0, Leaf(begin, pos, flags & kEscape));
      }
    }
    *end = pos;
    return absl::OkStatus();
  }

  // A mark is the offset of a repetition, component or subcomponent
  // separator or an escape character, shifted left by kMarkShift, with its
  // class in the low bits. Offsets are below 64 MiB, so a mark fits 32 bits.
  static constexpr int kMarkShift = 5;
  static constexpr std::uint32_t kMarkClassMask = (1u << kMarkShift) - 1;
  static std::uint32_t Mark(std::size_t pos, std::uint8_t cls) {
    return static_cast<std::uint32_t>(pos) << kMarkShift | cls;
  }

  // Where the field starting at `begin` ends (at a field separator, CR, LF or
  // NUL; the string's own NUL after the last byte ends the text), and which
  // separator classes occur in it. The field's marks are stored in marks_
  // (the first kMaxMarks of them) and counted in `*mark_count`, so Split
  // walks the few marks instead of the field's bytes again, once per level.
  //
  // With SSE2 the next delimiter is found 16 bytes at a time and jumped to:
  // runs of data between delimiters are short (3 bytes on average in lab
  // results) and of every length, so a byte loop's exit branch mispredicts
  // at almost every delimiter; that, not the instruction count, was most of
  // the parse time.
  std::size_t FieldEnd(std::size_t begin, std::uint8_t* flags, std::size_t* mark_count) {
    const ClassTable& cls = *table_;
    const char* base = base_;
    std::size_t count = 0;
    std::uint8_t seen = 0;
#if defined(__SSE2__)
    // The text is followed by kPadding NULs, and a NUL stops the scan, so no
    // load starts past the end of the text.
    // A field usually starts inside the 16 bytes the previous one ended in:
    // the delimiter bits found then are used again rather than reloaded.
    std::size_t chunk = chunk_;
    unsigned mask;
    if (begin - chunk < 16) {
      mask = chunk_mask_ & (~0u << (begin - chunk));
    } else {
      chunk = begin;
      mask = SpecialMask(base + chunk);
    }
    for (;;) {
      while (mask != 0) {
        const std::size_t pos = chunk + static_cast<std::size_t>(__builtin_ctz(mask));
        const std::uint8_t k = cls[static_cast<unsigned char>(base[pos])];
        if (k & (kField | kTerminator)) {
          chunk_ = chunk;
          chunk_mask_ = mask;
          *flags = seen;
          *mark_count = count;
          return pos;
        }
        seen |= k;
        if (count < kMaxMarks) marks_[count] = Mark(pos, k);
        ++count;
        mask &= mask - 1;
      }
      chunk += 16;
      mask = SpecialMask(base + chunk);
    }
#else
    std::size_t pos = begin;
    for (;;) {
      std::uint8_t k = cls[static_cast<unsigned char>(base[pos])];
      if (k == 0) {
        ++pos;
        continue;
      }
      if (k & (kField | kTerminator)) break;
      seen |= k;
      if (count < kMaxMarks) marks_[count] = Mark(pos, k);
      ++count;
      ++pos;
    }
    *flags = seen;
    *mark_count = count;
    return pos;
#endif
  }

#if defined(__SSE2__)
  // Bit i is set when p[i] is a delimiter, CR, LF or NUL.
  unsigned SpecialMask(const char* p) const {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i hit =
        _mm_or_si128(_mm_cmpeq_epi8(bytes, special_[0]), _mm_cmpeq_epi8(bytes, special_[1]));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, special_[2]));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, special_[3]));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, special_[4]));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\r')));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\n')));
    hit = _mm_or_si128(hit, _mm_cmpeq_epi8(bytes, _mm_setzero_si128()));
    return static_cast<unsigned>(_mm_movemask_epi8(hit));
  }
#endif

  // The marks of [begin, end), for a field with more than kMaxMarks of them.
  void CollectMarks(std::size_t begin, std::size_t end, std::vector<std::uint32_t>* marks) const {
    const ClassTable& cls = *table_;
    const char* base = base_;
    marks->clear();
    for (std::size_t pos = begin; pos < end; ++pos) {
      std::uint8_t k = cls[static_cast<unsigned char>(base[pos])];
      if (k != 0) marks->push_back(Mark(pos, k));
    }
  }

  // Builds the node for [begin, end) at `level`, whose text holds the
  // separator classes in `flags` and the marks [mark, mark_end); children
  // are pushed into the next level.
  Node Split(Level level, std::size_t begin, std::size_t end, std::uint8_t flags,
             const std::uint32_t* mark, const std::uint32_t* mark_end) {
    std::uint8_t below;
    std::uint8_t separator_class;
    switch (level) {
      case Level::kField:
        below = kRepetition | kComponent | kSubcomponent;
        separator_class = kRepetition;
        break;
      case Level::kRepetition:
        below = kComponent | kSubcomponent;
        separator_class = kComponent;
        break;
      case Level::kComponent:
        below = kSubcomponent;
        separator_class = kSubcomponent;
        break;
      default:
        below = 0;
        separator_class = 0;
        break;
    }
    if ((flags & below) == 0) return Leaf(begin, end, flags & kEscape);
    const Level child_level = static_cast<Level>(static_cast<int>(level) + 1);
    // Children go straight into the next level's vector: building one child
    // only pushes into deeper levels, so siblings stay contiguous.
    const int child_index = static_cast<int>(child_level);
    if ((flags & separator_class) == 0) {
      // No separator of this level (a field with components but one
      // repetition, say): no node and no pass over the marks for it.
      // The child is stored in place of this node, one more level skipped.
      Node child = Split(child_level, begin, end, flags, mark, mark_end);
      child.meta += 1u << Message::kSkipShift;
      return child;
    }
    Node node;
    node.begin = static_cast<std::uint32_t>(begin);
    node.end = static_cast<std::uint32_t>(end);
    node.aux = static_cast<std::uint32_t>(size_of_[child_index]);
    // Most children are leaves: build those here rather than in a call.
    const std::uint8_t child_below = below & ~separator_class;
    auto child = [&](std::size_t child_begin, std::size_t child_end, std::uint8_t child_flags,
                     const std::uint32_t* child_mark, const std::uint32_t* child_mark_end) {
      return (child_flags & child_below) == 0 ? Leaf(child_begin, child_end, child_flags & kEscape)
                                              : Split(child_level, child_begin, child_end,
                                                      child_flags, child_mark, child_mark_end);
    };
    std::uint32_t count = 0;
    std::size_t piece = begin;
    const std::uint32_t* piece_marks = mark;
    std::uint8_t piece_flags = 0;
    for (; mark != mark_end; ++mark) {
      const std::uint8_t k = static_cast<std::uint8_t>(*mark & kMarkClassMask);
      if (k == separator_class) {
        const std::size_t p = *mark >> kMarkShift;
        Push(child_index, child(piece, p, piece_flags, piece_marks, mark));
        ++count;
        piece = p + 1;
        piece_marks = mark + 1;
        piece_flags = 0;
      } else {
        piece_flags |= k;
      }
    }
    Push(child_index, child(piece, end, piece_flags, piece_marks, mark_end));
    ++count;
    node.meta = Message::kParent | count;
    return node;
  }

  Node Leaf(std::size_t begin, std::size_t end, bool has_escape) {
    const char* base = base_;
    Node node;
    node.begin = static_cast<std::uint32_t>(begin);
    node.end = static_cast<std::uint32_t>(end);
    // Both tests without a branch between them (a 2-byte field is common, a
    // null is not); reading base[begin + 1] is safe thanks to the padding.
    std::uint16_t two;
    std::memcpy(&two, base + begin, 2);
    if ((end - begin == 2) & (two == static_cast<std::uint16_t>('"' | '"' << 8))) {
      node.meta = Message::kNull;
    } else if (has_escape) {
      node.aux = static_cast<std::uint32_t>(m_.decoded_.size());
      UnescapeTo(std::string_view(base + begin, end - begin), m_.delimiters_, options_.unescape,
                 &m_.decoded_);
      node.meta = Message::kDecoded | (static_cast<std::uint32_t>(m_.decoded_.size()) - node.aux);
    }
    return node;
  }

  static Node PlainLeaf(std::size_t begin, std::size_t end) {
    Node node;
    node.begin = static_cast<std::uint32_t>(begin);
    node.end = static_cast<std::uint32_t>(end);
    return node;
  }

  long long Offset(std::size_t pos) const {
    return m_.converted_ ? -1 : static_cast<long long>(pos);
  }

  // Appends to a level. The vectors only grow (their elements past
  // level_size_ are stale and never reached), so the hot path is a store.
  void Push(int level, const Node& node) {
    std::size_t& size = size_of_[level];
    if (size == capacity_[level]) [[unlikely]] {
      Grow(level);
    }
    data_[level][size++] = node;
  }

  void Grow(int level) {
    std::vector<Node>& nodes = m_.levels_[level];
    nodes.resize(nodes.size() * 2 + 256);
    UseStorage(level);
  }

  // Caches a level's storage, so a push does not recompute the vector's size.
  void UseStorage(int level) {
    data_[level] = m_.levels_[level].data();
    capacity_[level] = m_.levels_[level].size();
  }

  Message& m_;
  const ParseOptions& options_;
  std::size_t offset_base_ = 0;
  const char* base_ = nullptr;  // m_.text(), followed by Message::kPadding NULs
  std::size_t size_ = 0;
  const ClassTable* table_ = nullptr;
  ClassTable custom_table_{};
#if defined(__SSE2__)
  __m128i special_[5];  // field, repetition, component, subcomponent, escape
  // The 16 bytes FieldEnd looked at last (offset, and the delimiter bits at
  // and after where it stopped). The wrapped start forces the first load.
  std::size_t chunk_ = ~std::size_t{0} - 16;
  unsigned chunk_mask_ = 0;
#endif
  Node* data_[4] = {};
  // Live nodes per level while parsing, copied to m_.level_size_ at the end.
  // 64-bit, so the compiler knows a node's 32-bit stores do not change them.
  std::size_t size_of_[4] = {};
  std::size_t capacity_[4] = {};
  // The current field's marks (see FieldEnd); a field with more of them than
  // fit here (rare: a long formatted text) is collected again, into the
  // vector.
  static constexpr std::size_t kMaxMarks = 512;
  std::uint32_t marks_[kMaxMarks];
  std::vector<std::uint32_t> overflow_marks_;
};

// ---------------------------------------------------------------------------
// Message

void Message::Clear() {
  raw_.clear();
  utf8_.clear();
  converted_ = false;
  decoded_.clear();
  delimiters_ = Delimiters{};
  charset_ = CharsetInfo{};
  warnings_.clear();
  segments_.clear();
  for (std::uint32_t& size : level_size_) size = 0;
}

absl::Status Message::ParseInto(std::string_view bytes, const ParseOptions& options, Message* out) {
  out->Clear();
  Parser parser(out, options);
  absl::Status status = parser.Run(bytes);
  if (!status.ok()) out->Clear();
  return status;
}

absl::StatusOr<Message> Message::Parse(std::string_view bytes, const ParseOptions& options) {
  Message message;
  absl::Status status = ParseInto(bytes, options, &message);
  if (!status.ok()) return status;
  return message;
}

std::string_view Message::LeafValue(const Node& node) const {
  if (node.meta & kDecoded) {
    return std::string_view(decoded_).substr(node.aux, node.meta & kCountMask);
  }
  if (node.meta & kNull) return {};
  return Span(node.begin, node.end);
}

std::optional<SegmentRef> Message::Segment(std::string_view name, int occurrence) const {
  const std::string_view t = text();
  for (std::uint32_t i = 0; i < segments_.size(); ++i) {
    if (t.substr(segments_[i].begin, 3) == name && --occurrence == 0) {
      return SegmentRef(this, i);
    }
  }
  return std::nullopt;
}

Element Message::Get(const Path& path) const {
  std::optional<SegmentRef> segment = Segment(path.segment, path.occurrence);
  if (!segment.has_value() || path.field <= 0) return Element();
  Element element = segment->Field(path.field);
  if (path.repetition > 0) {
    element = element.Rep(path.repetition);
  }
  if (path.component > 0) {
    element = element.Comp(path.component);
    if (path.subcomponent > 0) element = element.Sub(path.subcomponent);
  }
  return element;
}

Element Message::Get(std::string_view path) const {
  absl::StatusOr<Path> parsed = Path::Parse(path);
  if (!parsed.ok()) return Element();
  return Get(*parsed);
}

std::string_view Message::control_id() const {
  return segments_.empty() ? std::string_view() : segment(0).Field(10).encoded();
}
std::string_view Message::message_code() const {
  return segments_.empty() ? std::string_view() : segment(0).Field(9).Comp(1).value();
}
std::string_view Message::trigger_event() const {
  return segments_.empty() ? std::string_view() : segment(0).Field(9).Comp(2).value();
}
std::string_view Message::version() const {
  return segments_.empty() ? std::string_view() : segment(0).Field(12).Comp(1).value();
}

bool operator==(const Message& a, const Message& b) {
  if (!(a.delimiters_ == b.delimiters_) || a.segments_.size() != b.segments_.size()) {
    return false;
  }
  // The tree is a function of the delimiters and each field's encoded text,
  // so equal names and equal field texts mean equal trees and values.
  for (int i = 0; i < a.segment_count(); ++i) {
    SegmentRef sa = a.segment(i);
    SegmentRef sb = b.segment(i);
    if (sa.name() != sb.name() || sa.field_count() != sb.field_count()) return false;
    for (int f = 1; f <= sa.field_count(); ++f) {
      if (sa.Field(f).encoded() != sb.Field(f).encoded()) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// SegmentRef

std::string_view SegmentRef::name() const {
  return message_->text().substr(message_->segments_[index_].begin, 3);
}

int SegmentRef::field_count() const {
  return static_cast<int>(message_->segments_[index_].field_count);
}

Element SegmentRef::Field(int n) const {
  const Message::SegmentNode& segment = message_->segments_[index_];
  if (n < 1 || static_cast<std::uint32_t>(n) > segment.field_count) return Element();
  return Element(message_, Level::kField, segment.first_field + static_cast<std::uint32_t>(n) - 1,
                 Level::kField);
}

std::string_view SegmentRef::encoded() const {
  const Message::SegmentNode& segment = message_->segments_[index_];
  return message_->Span(segment.begin, segment.end);
}

// ---------------------------------------------------------------------------
// Path

absl::StatusOr<Path> Path::Parse(std::string_view text) {
  Path path;
  path.repetition = 0;
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid HL7 path \"", ToAbsl(text), "\": ", ToAbsl(why)));
  };
  if (text.size() < 3 || !IsSegmentIdChar(text[0], true) || !IsSegmentIdChar(text[1], false) ||
      !IsSegmentIdChar(text[2], false)) {
    return bad("expected a segment id such as PID");
  }
  path.segment = std::string(text.substr(0, 3));
  std::size_t pos = 3;
  auto read_number = [&](int* out) -> bool {
    std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return pos > start && ParseInt(text.substr(start, pos - start), out) && *out > 0;
  };
  auto read_bracketed = [&](int* out) -> absl::Status {
    if (pos < text.size() && (text[pos] == '(' || text[pos] == '[')) {
      char close = text[pos] == '(' ? ')' : ']';
      ++pos;
      if (!read_number(out) || pos >= text.size() || text[pos] != close) {
        return bad("expected a positive number in brackets");
      }
      ++pos;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = read_bracketed(&path.occurrence); !s.ok()) return s;
  int* parts[3] = {&path.field, &path.component, &path.subcomponent};
  for (int i = 0; i < 3 && pos < text.size(); ++i) {
    if (text[pos] != '-' && text[pos] != '.') return bad("expected '-' before a number");
    ++pos;
    if (!read_number(parts[i])) return bad("expected a positive number");
    if (i == 0) {
      if (absl::Status s = read_bracketed(&path.repetition); !s.ok()) return s;
    }
  }
  if (pos != text.size()) return bad("unexpected characters at the end");
  if (path.field == 0) return bad("a field number is required");
  return path;
}

std::string Path::ToString() const {
  std::string out = segment;
  if (occurrence > 1) absl::StrAppend(&out, "(", occurrence, ")");
  absl::StrAppend(&out, "-", field);
  if (repetition > 0) absl::StrAppend(&out, "(", repetition, ")");
  if (component > 0) absl::StrAppend(&out, "-", component);
  if (subcomponent > 0) absl::StrAppend(&out, "-", subcomponent);
  return out;
}

// ---------------------------------------------------------------------------

std::optional<std::string> PeekHeaderField(std::string_view bytes, int field) {
  std::size_t pos = SkipLeadingNoise(bytes);
  // The header may follow FHS/BHS lines or junk; look for MSH at a line start.
  while (pos < bytes.size() && bytes.substr(pos, 3) != "MSH") {
    std::size_t next = bytes.find_first_of("\r\n", pos);
    if (next == std::string_view::npos) return std::nullopt;
    pos = next + 1;
    while (pos < bytes.size() && (bytes[pos] == '\r' || bytes[pos] == '\n')) ++pos;
  }
  if (pos + 4 > bytes.size() || !IsLegalDelimiter(bytes[pos + 3]) || field < 1) {
    return std::nullopt;
  }
  const char separator = bytes[pos + 3];
  if (field == 1) return std::string(1, separator);
  std::string_view line = bytes.substr(pos);
  line = line.substr(0, line.find_first_of("\r\n"));
  std::size_t field_start = 3;
  // `field_start` is at the separator before field f + 1 (MSH-1 is the
  // separator itself, so MSH-2 follows the one at offset 3).
  for (int f = 2; f < field; ++f) {
    field_start = line.find(separator, field_start + 1);
    if (field_start == std::string_view::npos) return std::string();
  }
  std::string_view value = line.substr(field_start + 1);
  value = value.substr(0, value.find(separator));
  return std::string(StripWhitespace(value));
}

std::optional<std::string> PeekControlId(std::string_view bytes) {
  std::optional<std::string> id = PeekHeaderField(bytes, 10);
  if (!id.has_value() || id->empty()) return std::nullopt;
  return id;
}

}  // namespace bridge::hl7
