// Message: one parsed HL7 v2 message in ER7 ("pipe") encoding.
//
// Parsing makes one pass over the bytes and records, for every segment,
// field, repetition, component and subcomponent, where it is in the text; an
// element with no separators inside is stored once, as a leaf, and answers
// for all the levels below it. Values are unescaped while parsing (only the
// few that hold escape sequences need a copy), so reading a value never
// allocates. The exact input bytes are kept for the audit trail.
//
//   absl::StatusOr<Message> m = Message::Parse(bytes);
//   if (!m.ok()) return m.status();            // an HL7 error (see error.h)
//   std::string_view mrn = m->Get("PID-3-1").value();
//   Field names = m->Segment("PID")->Field(5);   // PID-5, all repetitions
//   std::string_view family = names.Rep(1).Comp(1).value();
//
// Paths use the usual notation, 1-based: `PID-3`, `PID-3(2)-1`, `OBX(3)-5`,
// `PID-5-1-1`, `MSH-9-2`. A path that is absent gives an empty Element.
//
// Empty and null are different: `||` is empty (`is_null()` false) and `|""|`
// is the explicit HL7 null (`is_null()` true, value "").
//
// A Message is immutable after parsing; Element and SegmentRef are cheap views
// that must not outlive it. Distinct Messages may be used from different
// threads; one Message may be read concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "mapping/hl7/charset.h"
#include "mapping/hl7/delimiters.h"
#include "mapping/hl7/escape.h"

namespace bridge::hl7 {

class Message;

struct ParseOptions {
  UnescapeOptions unescape;
  // When false, a second MSH in the input is an error (use SplitMessages or
  // MessageSplitter for batches and exports).
  bool allow_trailing_messages = false;
};

// A parsed path such as `OBX(3)-5-1`. Occurrence and repetition default to 1;
// component and subcomponent are 0 when the path stops above them.
struct Path {
  std::string segment;
  int occurrence = 1;
  int field = 0;
  int repetition = 1;
  int component = 0;
  int subcomponent = 0;

  // Returns InvalidArgument naming the problem for a malformed path.
  static absl::StatusOr<Path> Parse(std::string_view text);
  std::string ToString() const;
};

// Levels of the ER7 tree.
enum class Level : std::uint8_t { kField = 0, kRepetition = 1, kComponent = 2, kSubcomponent = 3 };

// A view of one field, repetition, component or subcomponent (or of nothing:
// `present()` false). Reading through absent elements is allowed and yields
// absent elements, so `m.Get("ZZZ-9-9").value()` is simply "".
class Element {
 public:
  Element() = default;

  bool present() const { return message_ != nullptr; }
  Level level() const { return level_; }

  // The decoded value of this element's first leaf (the first repetition's
  // first component's first subcomponent): "Doe" for `Doe^Jane`. "" when
  // absent or null.
  std::string_view value() const;
  // The text exactly as encoded in the message (with delimiters and escapes).
  std::string_view encoded() const;
  // True for the explicit HL7 null `""` (the whole element).
  bool is_null() const;
  // True when absent, or present with no text at all.
  bool empty() const { return encoded().empty(); }
  // True when nothing below this element is split (no separator inside it).
  bool is_leaf() const;

  // Number of children one level down: repetitions of a field, components
  // of a repetition, subcomponents of a component (1 for a present leaf, 0
  // when absent). A subcomponent has none.
  int size() const;

  // Children, 1-based. On a field, Comp(n) means the first repetition's
  // component n and Sub(n) the first component's subcomponent n.
  Element Rep(int n) const;
  Element Comp(int n) const;
  Element Sub(int n) const;

  // All repetitions of a field (itself for lower levels).
  std::vector<Element> Reps() const;

 private:
  friend class Message;
  friend class SegmentRef;
  Element(const Message* message, Level node_level, std::uint32_t node, Level level)
      : message_(message), node_level_(node_level), level_(level), node_(node) {}
  Element Child(int n) const;
  Element Descend(Level target) const;

  const Message* message_ = nullptr;
  Level node_level_ = Level::kField;  // level of the stored node
  Level level_ = Level::kField;       // level this view stands for (>= node_level_)
  std::uint32_t node_ = 0;
};

// A view of one segment.
class SegmentRef {
 public:
  std::string_view name() const;
  // 1-based position in the message.
  int sequence() const { return static_cast<int>(index_) + 1; }
  // Number of fields present (MSH counts MSH-1 and MSH-2).
  int field_count() const;
  // Field n (1-based). For MSH, Field(1) is the field separator and Field(2)
  // the encoding characters, both unsplit.
  Element Field(int n) const;
  // The segment's encoded text, without its terminator.
  std::string_view encoded() const;

 private:
  friend class Message;
  SegmentRef(const Message* message, std::uint32_t index) : message_(message), index_(index) {}
  const Message* message_;
  std::uint32_t index_;
};

class Message {
 public:
  Message() = default;
  Message(const Message&) = default;
  Message& operator=(const Message&) = default;
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;

  // Parses one message. Accepts CR, LF or CRLF segment terminators, a leading
  // UTF-8 byte-order mark and blank lines. Fails with InvalidArgument (HL7
  // codes 100/102 and a location) for input that is not ER7, or whose bytes
  // are invalid in the declared character set, and with Unimplemented for a
  // character set lab-bridge does not decode.
  static absl::StatusOr<Message> Parse(std::string_view bytes, const ParseOptions& options = {});

  // Same, reusing `*out`'s storage (the benchmark and the streaming checker
  // parse millions of messages). On error `*out` is left empty.
  static absl::Status ParseInto(std::string_view bytes, const ParseOptions& options, Message* out);

  const Delimiters& delimiters() const { return delimiters_; }
  const CharsetInfo& charset() const { return charset_; }
  // The input exactly as received.
  std::string_view raw() const { return Unpadded(raw_); }
  // The text the tree points into: the input, or its UTF-8 conversion.
  std::string_view text() const { return Unpadded(converted_ ? utf8_ : raw_); }
  // Set when parsing had to guess (charset) or fix (duplicate encoding
  // characters); never contains message content.
  const std::vector<std::string>& warnings() const { return warnings_; }

  int segment_count() const { return static_cast<int>(segments_.size()); }
  SegmentRef segment(int index) const {
    return SegmentRef(this, static_cast<std::uint32_t>(index));
  }
  // The n-th (1-based) segment named `name`, or nullopt.
  std::optional<SegmentRef> Segment(std::string_view name, int occurrence = 1) const;

  // Element at `path`; absent when the path does not exist in this message.
  Element Get(const Path& path) const;
  // Convenience for literal paths; an invalid path yields an absent Element.
  Element Get(std::string_view path) const;

  // MSH fields used everywhere.
  std::string_view control_id() const;     // MSH-10
  std::string_view message_code() const;   // MSH-9-1, e.g. "ORU"
  std::string_view trigger_event() const;  // MSH-9-2, e.g. "R01"
  std::string_view version() const;        // MSH-12-1

  // Structural equality: same delimiters, same segments, same tree, same
  // encoded leaves (so the same decoded values).
  friend bool operator==(const Message& a, const Message& b);

 private:
  friend class Element;
  friend class SegmentRef;
  friend class Parser;

  // 16 bytes, so a node is one aligned store. `meta` holds flags in its top
  // bits and a count in the rest: the number of children for a parent, the
  // decoded length for a leaf whose value needed unescaping.
  struct Node {
    std::uint32_t begin = 0;  // encoded span in text()
    std::uint32_t end = 0;
    std::uint32_t aux = 0;  // parent: first child's index in the next level;
                            // decoded leaf: offset of the value in decoded_
    std::uint32_t meta = 0;
  };
  static constexpr std::uint32_t kParent = 1u << 31;
  static constexpr std::uint32_t kDecoded = 1u << 30;
  static constexpr std::uint32_t kNull = 1u << 29;
  // A parent whose text has no separator of the next level down (a field
  // with components but one repetition) does not store that level: its
  // children sit `skip` levels further down, and the levels in between are
  // implied, like the levels below a leaf.
  static constexpr int kSkipShift = 26;
  static constexpr std::uint32_t kSkipMask = 3u << kSkipShift;
  static constexpr std::uint32_t kCountMask = (1u << kSkipShift) - 1;
  static std::uint32_t ChildCount(const Node& node) {
    return (node.meta & kParent) ? node.meta & kCountMask : 0;
  }
  // Level of a parent's stored children.
  static int ChildLevel(const Node& node, Level node_level) {
    return static_cast<int>(node_level) + 1 +
           static_cast<int>((node.meta & kSkipMask) >> kSkipShift);
  }
  struct SegmentNode {
    std::uint32_t begin = 0;
    std::uint32_t end = 0;
    std::uint32_t first_field = 0;
    std::uint32_t field_count = 0;
  };

  const std::vector<Node>& nodes(Level level) const { return levels_[static_cast<int>(level)]; }
  std::string_view Span(std::uint32_t begin, std::uint32_t end) const {
    return text().substr(begin, end - begin);
  }
  std::string_view LeafValue(const Node& node) const;
  void Clear();

  // raw_ and utf8_ (when used) hold the text followed by kPadding NUL bytes,
  // so the parser can load 16 bytes at any offset up to the end of the text
  // without a bounds check, and finds a NUL right after the last byte.
  static constexpr std::size_t kPadding = 16;
  static std::string_view Unpadded(const std::string& padded) {
    return std::string_view(padded.data(),
                            padded.size() >= kPadding ? padded.size() - kPadding : 0);
  }

  std::string raw_;
  std::string utf8_;
  bool converted_ = false;
  std::string decoded_;  // values that needed unescaping
  Delimiters delimiters_;
  CharsetInfo charset_;
  std::vector<std::string> warnings_;
  std::vector<SegmentNode> segments_;
  // Nodes per level; only the first level_size_[i] of levels_[i] are live.
  std::vector<Node> levels_[4];
  std::uint32_t level_size_[4] = {0, 0, 0, 0};
};

// ---------------------------------------------------------------------------
// Element accessors are inline: reading a value is on every hot path.

inline std::string_view Element::value() const {
  if (message_ == nullptr) return {};
  const Message::Node* node = &message_->nodes(node_level_)[node_];
  int level = static_cast<int>(node_level_);
  while ((node->meta & Message::kParent) && level < static_cast<int>(Level::kSubcomponent)) {
    level = Message::ChildLevel(*node, static_cast<Level>(level));
    node = &message_->nodes(static_cast<Level>(level))[node->aux];
  }
  return message_->LeafValue(*node);
}

inline std::string_view Element::encoded() const {
  if (message_ == nullptr) return {};
  const Message::Node& node = message_->nodes(node_level_)[node_];
  return message_->Span(node.begin, node.end);
}

inline bool Element::is_null() const {
  if (message_ == nullptr) return false;
  const Message::Node& node = message_->nodes(node_level_)[node_];
  return (node.meta & Message::kNull) != 0;
}

inline bool Element::is_leaf() const {
  if (message_ == nullptr) return false;
  return (message_->nodes(node_level_)[node_].meta & Message::kParent) == 0;
}

inline int Element::size() const {
  if (message_ == nullptr || level_ == Level::kSubcomponent) return 0;
  const Message::Node& node = message_->nodes(node_level_)[node_];
  const std::uint32_t count = Message::ChildCount(node);
  if (count == 0 || static_cast<int>(level_) + 1 < Message::ChildLevel(node, node_level_)) {
    return 1;  // a leaf, or a level the node implies: one child
  }
  return static_cast<int>(count);
}

inline Element Element::Child(int n) const {
  if (message_ == nullptr || level_ == Level::kSubcomponent || n < 1) return Element();
  const Level child_level = static_cast<Level>(static_cast<int>(level_) + 1);
  const Message::Node& node = message_->nodes(node_level_)[node_];
  const std::uint32_t count = Message::ChildCount(node);
  if (count == 0 || static_cast<int>(child_level) < Message::ChildLevel(node, node_level_)) {
    // A leaf, or a parent above its stored children, stands for its only
    // child at the levels in between.
    return n == 1 ? Element(message_, node_level_, node_, child_level) : Element();
  }
  if (static_cast<std::uint32_t>(n) > count) return Element();
  return Element(message_, child_level, node.aux + static_cast<std::uint32_t>(n) - 1, child_level);
}

inline Element Element::Descend(Level target) const {
  Element e = *this;
  while (e.present() && e.level_ < target) e = e.Child(1);
  if (e.present() && e.level_ > target) return Element();
  return e;
}

inline Element Element::Rep(int n) const {
  if (level_ == Level::kField) return Child(n);
  return n == 1 ? *this : Element();
}

inline Element Element::Comp(int n) const { return Descend(Level::kRepetition).Child(n); }

inline Element Element::Sub(int n) const { return Descend(Level::kComponent).Child(n); }

inline std::vector<Element> Element::Reps() const {
  std::vector<Element> reps;
  if (!present()) return reps;
  if (level_ != Level::kField) return {*this};
  for (int i = 1; i <= size(); ++i) reps.push_back(Rep(i));
  return reps;
}

// The message control id (MSH-10) read from raw bytes without a full parse,
// so even a message that fails to parse can be NAKed with its own id. nullopt
// when no MSH header can be found or MSH-10 is empty.
std::optional<std::string> PeekControlId(std::string_view bytes);

// Field `field` of the first MSH line in `bytes`, as encoded (MSH-3 is the
// first field after MSH-2), or nullopt when there is no readable MSH line.
std::optional<std::string> PeekHeaderField(std::string_view bytes, int field);

}  // namespace bridge::hl7
