// Json: a small ordered JSON tree for building FHIR resources, and its
// serializer. Members keep insertion order, so a resource built the same way
// always serializes to the same bytes (golden files, deterministic Bundles).
// Numbers are stored as their lexical text and written as raw JSON number
// tokens, never through a double, so `0.10` stays `0.10` (FHIR decimals keep
// their precision, MAPPING.md 1.5).
//
// Keys are not copied: a key must outlive the Json (use string literals, as
// all FHIR element names are). String values are copied, except those made
// with Json::Literal (static text such as code-system URIs).
//
//   Json obs = Json::Object();
//   obs.Set("resourceType", "Observation");
//   obs.Set("valueQuantity", Json::Object()).Set("value", Json::Number("0.10"));
//   std::string text = obs.Serialize();
//
// Memory: a converter builds thousands of small nodes per message; with the
// heap, malloc and free were a third of the mapping's time. While a
// JsonArena::Scope is alive on a thread, Json nodes built on that thread take
// their memory from a per-thread arena that is reset (not freed) when the
// outermost scope ends. Every Json built inside a scope must therefore be
// destroyed before the scope ends; outside any scope Json uses the heap.
// Members and items are a singly linked list of nodes, each allocated once
// and never moved (a vector of members grew by copying whole subtrees), and
// in an arena a tree's destructor does nothing at all.
//
// Reading JSON (ServiceRequest input, tests) uses RapidJSON directly.
// Pure, thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory_resource>
#include <string>
#include <string_view>
#include <utility>

namespace bridge::fhir {

class JsonArena {
 public:
  // Makes this thread's Json nodes use its arena until destroyed. Nested
  // scopes share the outermost one's arena.
  class Scope {
   public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    bool outermost_ = false;
  };

  // The memory for a Json built now on this thread.
  static std::pmr::memory_resource* Current();
};

class Json;

namespace json_internal {
// `n` bytes (sizeof(Word) <= n <= 2 * sizeof(Word)) as two word moves that
// may overlap: the first word and the last.
template <typename Word>
inline void CopyTwoWords(char* to, const char* from, std::size_t n) {
  Word head;
  Word tail;
  std::memcpy(&head, from, sizeof(Word));
  std::memcpy(&tail, from + n - sizeof(Word), sizeof(Word));
  std::memcpy(to, &head, sizeof(Word));
  std::memcpy(to + n - sizeof(Word), &tail, sizeof(Word));
}

// memcpy, with the short copies JSON is made of (keys, codes, punctuation)
// done by a few overlapping word moves instead of a library call.
inline void Copy(char* to, const char* from, std::size_t n) {
  if (n > 16) {
    std::memcpy(to, from, n);
  } else if (n >= 8) {
    CopyTwoWords<std::uint64_t>(to, from, n);
  } else if (n >= 4) {
    CopyTwoWords<std::uint32_t>(to, from, n);
  } else if (n > 0) {
    to[0] = from[0];
    to[n / 2] = from[n / 2];
    to[n - 1] = from[n - 1];
  }
}
}  // namespace json_internal

// Writes JSON text at the end of a std::string, with one bounds check per
// piece instead of std::string's per-call checks (push_back is not inlined).
// The string holds spare bytes while the sink lives; its destructor trims
// them, so use `out` only after the sink is gone.
class JsonSink {
 public:
  explicit JsonSink(std::string* out);
  ~JsonSink();
  JsonSink(const JsonSink&) = delete;
  JsonSink& operator=(const JsonSink&) = delete;

  void Put(char c) {
    Reserve(1);
    *at_++ = c;
  }
  void Append(std::string_view text) {
    Reserve(text.size());
    json_internal::Copy(at_, text.data(), text.size());
    at_ += text.size();
  }
  // `text` as a JSON string literal (with quotes).
  void String(std::string_view text);
  void Value(const Json& value);
  // Bytes written so far (with what `out` held before).
  std::size_t size() const { return static_cast<std::size_t>(at_ - begin_); }
  std::string_view View(std::size_t from) const {
    return std::string_view(begin_ + from, size() - from);
  }

 private:
  void Reserve(std::size_t n) {
    if (static_cast<std::size_t>(end_ - at_) < n) Grow(n);
  }
  void Grow(std::size_t n);

  std::string* out_;
  char* begin_;
  char* at_;
  char* end_;
};

class Json {
 public:
  enum class Kind : unsigned char { kNull, kBool, kNumber, kString, kObject, kArray, kRaw };

  Json() : Json(Kind::kNull) {}
  // A string value (so `obj.Set("k", "text")` works).
  Json(const char* text) : Json(std::string_view(text)) {}              // NOLINT
  Json(const std::string& text) : Json(std::string_view(text)) {}       // NOLINT
  Json(std::string_view text) : Json(Kind::kString) { OwnText(text); }  // NOLINT
  // Copies take the memory of the scope they are made in (see above).
  Json(const Json& other) : Json(other, JsonArena::Current()) {}
  Json& operator=(const Json& other);
  Json(Json&& other) noexcept { Steal(other); }
  Json& operator=(Json&& other) noexcept;
  ~Json() {
    if (on_heap_) Release();
  }

  static Json Object() { return Json(Kind::kObject); }
  static Json Array() { return Json(Kind::kArray); }
  static Json Bool(bool b) {
    Json j(Kind::kBool);
    j.text_ = b ? "true" : "false";
    j.text_size_ = b ? 4 : 5;
    return j;
  }
  // `lexical` must be a valid JSON number (callers validate with
  // hl7::ParseNumeric or IsJsonNumber).
  static Json Number(std::string_view lexical) {
    Json j(Kind::kNumber);
    j.OwnText(lexical);
    return j;
  }
  static Json Integer(long long n) { return Number(std::to_string(n)); }
  // Already-serialized static JSON, not copied (must outlive the Json).
  static Json RawLiteral(std::string_view serialized) {
    Json j(Kind::kRaw);
    j.text_ = serialized.data();
    j.text_size_ = serialized.size();
    return j;
  }
  // A string value that is not copied: `text` must outlive the Json
  // (a string literal or a constant).
  static Json Literal(std::string_view text) {
    Json j(Kind::kString);
    j.text_ = text.data();
    j.text_size_ = text.size();
    return j;
  }
  // Already-serialized JSON, written verbatim: the parts, concatenated.
  static Json Raw(std::string_view serialized) { return Raw({serialized}); }
  static Json Raw(std::initializer_list<std::string_view> parts);

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  // String/number text.
  std::string_view scalar() const { return std::string_view(text_, text_size_); }

  // Objects: sets `key` (replacing an existing member) and returns the value,
  // which stays where it is while the tree lives (members are never moved).
  // `key` is not copied (see above).
  Json& Set(std::string_view key, Json value);
  // Objects: the member or nullptr.
  const Json* Find(std::string_view key) const;
  Json* Find(std::string_view key);
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  void Remove(std::string_view key);

  // Arrays: appends and returns the new element (which is never moved).
  Json& Push(Json value);

 private:
  struct Node;

 public:
  // Objects: (key, value) pairs in order; arrays: ("", item) in order.
  class Members {
   public:
    class Iterator {
     public:
      explicit Iterator(const Node* n) : n_(n) {}
      std::pair<std::string_view, const Json&> operator*() const;
      Iterator& operator++();
      bool operator!=(const Iterator& o) const { return n_ != o.n_; }

     private:
      const Node* n_;
    };
    explicit Members(const Node* first) : first_(first) {}
    Iterator begin() const { return Iterator(first_); }
    Iterator end() const { return Iterator(nullptr); }

   private:
    const Node* first_;
  };
  Members members() const { return Members(first_); }

  // Number of members or items.
  size_t size() const { return size_; }
  // No members or items, and no text (a Raw object's text is its members).
  bool empty() const { return size_ == 0 && text_size_ == 0; }

  // Compact JSON, UTF-8 (input strings are passed through; control characters
  // are escaped).
  std::string Serialize() const;
  void AppendTo(std::string* out) const;
  void WriteTo(JsonSink& sink) const;

 private:
  // Nodes and owned text come from the memory of the scope the Json was made
  // in; on the heap they are freed with it, in an arena never one by one.
  explicit Json(Kind kind) : kind_(kind), memory_(JsonArena::Current()) {
    on_heap_ = memory_ == std::pmr::new_delete_resource();
  }
  Json(const Json& other, std::pmr::memory_resource* memory);
  void OwnText(std::string_view text);
  void Steal(Json& other) noexcept;
  void Release() noexcept;
  Node* NewNode(std::string_view key, Json&& value);

  Kind kind_ = Kind::kNull;
  bool on_heap_ = false;
  bool owns_text_ = false;
  std::uint32_t size_ = 0;
  const char* text_ = nullptr;
  std::size_t text_size_ = 0;
  Node* first_ = nullptr;
  Node* last_ = nullptr;
  std::pmr::memory_resource* memory_ = nullptr;
};

struct Json::Node {
  std::string_view key;  // empty for array items
  Json value;
  Node* next = nullptr;
};

inline std::pair<std::string_view, const Json&> Json::Members::Iterator::operator*() const {
  return {n_->key, n_->value};
}
inline Json::Members::Iterator& Json::Members::Iterator::operator++() {
  n_ = n_->next;
  return *this;
}

// Appends `text` as a JSON string literal (with quotes).
void AppendJsonString(std::string_view text, std::string* out);

// The most bytes a JSON string literal of `size` bytes of text can take.
constexpr std::size_t JsonStringBound(std::size_t size) { return 6 * size + 2; }
// Writes `text` as a JSON string literal at `out`, which has room for
// JsonStringBound(text.size()) bytes; returns the end. For writers that size
// their buffer once for many values.
char* WriteJsonString(std::string_view text, char* out);

// True if `text` is a JSON number token (what Json::Number accepts).
bool IsJsonNumber(std::string_view text);

// Re-indents compact JSON for humans and golden files (2 spaces). Returns the
// input unchanged when it does not parse.
std::string PrettyJson(std::string_view json);

}  // namespace bridge::fhir
