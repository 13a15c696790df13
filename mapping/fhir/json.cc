#include "mapping/fhir/json.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "rapidjson/memorystream.h"
#include "rapidjson/prettywriter.h"
#include "rapidjson/reader.h"
#include "rapidjson/stringbuffer.h"

namespace bridge::fhir {
namespace {

// Bump allocation from blocks kept across conversions: after the first few
// messages a thread allocates nothing from the heap for its Json trees.
class ReusableArena final : public std::pmr::memory_resource {
 public:
  void Reset() {
    // Keep what a typical message needs; give back what a huge one took.
    constexpr size_t kKeepBytes = size_t{4} << 20;
    size_t kept = 0;
    size_t keep_blocks = 0;
    while (keep_blocks < blocks_.size() && kept + blocks_[keep_blocks].size <= kKeepBytes) {
      kept += blocks_[keep_blocks].size;
      ++keep_blocks;
    }
    blocks_.resize(std::max<size_t>(keep_blocks, blocks_.empty() ? 0 : 1));
    block_ = 0;
    used_ = 0;
  }

  // do_allocate without its virtual call when the current block has room
  // (nearly always).
  void* Allocate(size_t bytes, size_t alignment) {
    if (void* p = Bump(bytes, alignment)) return p;
    return do_allocate(bytes, alignment);
  }

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };

  // The room in the current block, or nullptr when it has too little.
  void* Bump(size_t bytes, size_t alignment) {
    if (block_ >= blocks_.size()) return nullptr;
    Block& b = blocks_[block_];
    const size_t start = (used_ + alignment - 1) & ~(alignment - 1);
    if (start + bytes > b.size) return nullptr;
    used_ = start + bytes;
    return b.data.get() + start;
  }

  void* do_allocate(size_t bytes, size_t alignment) override {
    for (;;) {
      if (void* p = Bump(bytes, alignment)) return p;
      if (block_ + 1 < blocks_.size()) {  // a block kept from an earlier message
        ++block_;
        used_ = 0;
        continue;
      }
      constexpr size_t kBlockBytes = size_t{256} << 10;
      const size_t size = std::max(kBlockBytes, bytes + alignment);
      blocks_.push_back(Block{std::make_unique<char[]>(size), size});
      block_ = blocks_.size() - 1;
      used_ = 0;
    }
  }
  void do_deallocate(void*, size_t, size_t) override {}
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::vector<Block> blocks_;
  size_t block_ = 0;
  size_t used_ = 0;
};

thread_local ReusableArena* t_arena = nullptr;

bool IsPlainKey(std::string_view key) {
  for (const char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\') return false;
  }
  return true;
}

// Every Json's memory is either the heap or this thread's arena.
void* Allocate(std::pmr::memory_resource* memory, bool on_heap, size_t bytes, size_t alignment) {
  if (on_heap) return memory->allocate(bytes, alignment);
  return static_cast<ReusableArena*>(memory)->Allocate(bytes, alignment);
}

}  // namespace

JsonArena::Scope::Scope() {
  if (t_arena == nullptr) {
    thread_local ReusableArena arena;
    t_arena = &arena;
    outermost_ = true;
  }
}

JsonArena::Scope::~Scope() {
  if (outermost_) {
    t_arena->Reset();
    t_arena = nullptr;
  }
}

std::pmr::memory_resource* JsonArena::Current() {
  return t_arena != nullptr ? t_arena : std::pmr::new_delete_resource();
}

void Json::OwnText(std::string_view text) {
  if (text.empty()) {
    text_ = "";
    text_size_ = 0;
    return;
  }
  char* copy = static_cast<char*>(Allocate(memory_, on_heap_, text.size(), 1));
  json_internal::Copy(copy, text.data(), text.size());
  text_ = copy;
  text_size_ = text.size();
  owns_text_ = true;
}

Json Json::Raw(std::initializer_list<std::string_view> parts) {
  Json j(Kind::kRaw);
  size_t total = 0;
  for (std::string_view p : parts) total += p.size();
  if (total == 0) {
    j.text_ = "";
    return j;
  }
  char* text = static_cast<char*>(Allocate(j.memory_, j.on_heap_, total, 1));
  size_t at = 0;
  for (std::string_view p : parts) {
    json_internal::Copy(text + at, p.data(), p.size());
    at += p.size();
  }
  j.text_ = text;
  j.text_size_ = total;
  j.owns_text_ = true;
  return j;
}

Json::Json(const Json& other, std::pmr::memory_resource* memory)
    : kind_(other.kind_), memory_(memory) {
  on_heap_ = memory_ == std::pmr::new_delete_resource();
  if (other.owns_text_) {
    OwnText(other.scalar());
  } else {
    text_ = other.text_;
    text_size_ = other.text_size_;
  }
  for (const Node* n = other.first_; n != nullptr; n = n->next) {
    NewNode(n->key, Json(n->value, memory_));
  }
}

void Json::Steal(Json& other) noexcept {
  kind_ = other.kind_;
  on_heap_ = other.on_heap_;
  owns_text_ = other.owns_text_;
  size_ = other.size_;
  text_ = other.text_;
  text_size_ = other.text_size_;
  first_ = other.first_;
  last_ = other.last_;
  memory_ = other.memory_;
  other.kind_ = Kind::kNull;
  other.owns_text_ = false;
  other.size_ = 0;
  other.text_ = nullptr;
  other.text_size_ = 0;
  other.first_ = nullptr;
  other.last_ = nullptr;
}

void Json::Release() noexcept {
  if (owns_text_) memory_->deallocate(const_cast<char*>(text_), text_size_, 1);
  for (Node* n = first_; n != nullptr;) {
    Node* next = n->next;
    n->~Node();
    memory_->deallocate(n, sizeof(Node), alignof(Node));
    n = next;
  }
  owns_text_ = false;
  text_ = nullptr;
  text_size_ = 0;
  first_ = nullptr;
  last_ = nullptr;
  size_ = 0;
}

Json& Json::operator=(const Json& other) {
  if (this == &other) return *this;
  std::pmr::memory_resource* memory = memory_;
  Json copy(other, memory);
  if (on_heap_) Release();
  Steal(copy);
  return *this;
}

Json& Json::operator=(Json&& other) noexcept {
  if (this == &other) return *this;
  if (on_heap_) Release();
  if (other.memory_ == memory_) {
    Steal(other);
  } else {
    // Keep this tree's memory: a subtree from another scope is copied in.
    std::pmr::memory_resource* memory = memory_;
    Json copy(other, memory);
    Steal(copy);
  }
  return *this;
}

Json::Node* Json::NewNode(std::string_view key, Json&& value) {
  Node* n = static_cast<Node*>(Allocate(memory_, on_heap_, sizeof(Node), alignof(Node)));
  if (value.memory_ == memory_) {
    new (n) Node{key, std::move(value), nullptr};
  } else {
    new (n) Node{key, Json(value, memory_), nullptr};
  }
  if (last_ == nullptr) {
    first_ = n;
  } else {
    last_->next = n;
  }
  last_ = n;
  ++size_;
  return n;
}

Json& Json::Set(std::string_view key, Json value) {
  for (Node* n = first_; n != nullptr; n = n->next) {
    if (n->key == key) {
      n->value = std::move(value);
      return n->value;
    }
  }
  return NewNode(key, std::move(value))->value;
}

const Json* Json::Find(std::string_view key) const {
  for (const Node* n = first_; n != nullptr; n = n->next) {
    if (n->key == key) return &n->value;
  }
  return nullptr;
}

Json* Json::Find(std::string_view key) {
  for (Node* n = first_; n != nullptr; n = n->next) {
    if (n->key == key) return &n->value;
  }
  return nullptr;
}

void Json::Remove(std::string_view key) {
  Node* previous = nullptr;
  for (Node* n = first_; n != nullptr; previous = n, n = n->next) {
    if (n->key != key) continue;
    (previous == nullptr ? first_ : previous->next) = n->next;
    if (last_ == n) last_ = previous;
    --size_;
    n->~Node();
    memory_->deallocate(n, sizeof(Node), alignof(Node));
    return;
  }
}

Json& Json::Push(Json value) { return NewNode({}, std::move(value))->value; }

namespace {

// Where the next byte JSON must escape (a control character, '"' or '\\')
// is, from `i` on; text.size() when there is none.
size_t NextToEscape(std::string_view text, size_t i) {
  // 8 bytes at a time while none is flagged (SWAR: a byte is flagged when it
  // is below 0x20 or equal to either; a flag above a real one may be false,
  // which the byte loop below never reaches).
  while (i + 8 <= text.size()) {
    std::uint64_t x;
    std::memcpy(&x, text.data() + i, 8);
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    const std::uint64_t quote = x ^ (kOnes * '"');
    const std::uint64_t backslash = x ^ (kOnes * '\\');
    const std::uint64_t flagged =
        ((x - kOnes * 0x20) | (quote - kOnes) | (backslash - kOnes)) & ~x & kHigh;
    if (flagged != 0) break;
    i += 8;
  }
  for (; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == '"' || c == '\\') break;
  }
  return i;
}

// Writes the escape sequence of `c` (a byte NextToEscape stops at) at `out`;
// returns its length.
size_t WriteEscape(unsigned char c, char* out) {
  out[0] = '\\';
  switch (c) {
    case '"':
      out[1] = '"';
      return 2;
    case '\\':
      out[1] = '\\';
      return 2;
    case '\n':
      out[1] = 'n';
      return 2;
    case '\r':
      out[1] = 'r';
      return 2;
    case '\t':
      out[1] = 't';
      return 2;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      out[1] = 'u';
      out[2] = '0';
      out[3] = '0';
      out[4] = kHex[c >> 4];
      out[5] = kHex[c & 0xF];
      return 6;
    }
  }
}

}  // namespace

void AppendJsonString(std::string_view text, std::string* out) {
  JsonSink sink(out);
  sink.String(text);
}

char* WriteJsonString(std::string_view text, char* out) {
  *out++ = '"';
  for (size_t i = 0;;) {
    const size_t next = NextToEscape(text, i);
    json_internal::Copy(out, text.data() + i, next - i);
    out += next - i;
    if (next == text.size()) break;
    out += WriteEscape(static_cast<unsigned char>(text[next]), out);
    i = next + 1;
  }
  *out++ = '"';
  return out;
}

JsonSink::JsonSink(std::string* out) : out_(out) {
  begin_ = out->data();
  at_ = begin_ + out->size();
  end_ = at_;
}

JsonSink::~JsonSink() { out_->resize(size()); }

void JsonSink::Grow(std::size_t n) {
  const std::size_t used = size();
  // resize() zero-fills what it adds, so the string is claimed half again
  // what is written at a time, not its whole reserved capacity (std::string
  // doubles the capacity itself when it has to).
  out_->resize(used + std::max(n, std::max<std::size_t>(256, used / 2)));
  begin_ = out_->data();
  at_ = begin_ + used;
  end_ = begin_ + out_->size();
}

void JsonSink::String(std::string_view text) {
  // Room for the text as it is; an escape makes room for itself and the rest.
  Reserve(text.size() + 2);
  *at_++ = '"';
  for (size_t i = 0;;) {
    const size_t next = NextToEscape(text, i);
    json_internal::Copy(at_, text.data() + i, next - i);
    at_ += next - i;
    if (next == text.size()) break;
    Reserve(6 + (text.size() - next - 1) + 1);
    at_ += WriteEscape(static_cast<unsigned char>(text[next]), at_);
    i = next + 1;
  }
  *at_++ = '"';
}

void JsonSink::Value(const Json& value) { value.WriteTo(*this); }

void Json::AppendTo(std::string* out) const {
  JsonSink sink(out);
  WriteTo(sink);
}

void Json::WriteTo(JsonSink& sink) const {
  switch (kind_) {
    case Kind::kNull:
      sink.Append("null");
      break;
    case Kind::kBool:
    case Kind::kNumber:
    case Kind::kRaw:
      sink.Append(scalar());
      break;
    case Kind::kString:
      sink.String(scalar());
      break;
    case Kind::kObject: {
      sink.Put('{');
      bool first = true;
      for (const Node* n = first_; n != nullptr; n = n->next) {
        const std::string_view k = n->key;
        if (!first) sink.Put(',');
        first = false;
        if (IsPlainKey(k)) {
          // Element names are plain ASCII: no escaping.
          sink.Put('"');
          sink.Append(k);
          sink.Append("\":");
        } else {
          sink.String(k);
          sink.Put(':');
        }
        n->value.WriteTo(sink);
      }
      sink.Put('}');
      break;
    }
    case Kind::kArray: {
      sink.Put('[');
      bool first = true;
      for (const Node* n = first_; n != nullptr; n = n->next) {
        if (!first) sink.Put(',');
        first = false;
        n->value.WriteTo(sink);
      }
      sink.Put(']');
      break;
    }
  }
}

std::string Json::Serialize() const {
  std::string out;
  out.reserve(256);
  AppendTo(&out);
  return out;
}

bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (s[i] >= '1' && s[i] <= '9') {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  } else {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

namespace {

// PrettyWriter that writes numbers met as raw tokens (RapidJSON 1.1's
// RawNumber would quote them).
class RawNumberPrettyWriter : public rapidjson::PrettyWriter<rapidjson::StringBuffer> {
 public:
  using PrettyWriter::PrettyWriter;
  bool RawNumber(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    return RawValue(str, length, rapidjson::kNumberType);
  }
};

}  // namespace

std::string PrettyJson(std::string_view json) {
  // Numbers are streamed as raw tokens so their digits are kept.
  rapidjson::StringBuffer buffer;
  RawNumberPrettyWriter writer(buffer);
  writer.SetIndent(' ', 2);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(json.data(), json.size());
  rapidjson::ParseResult ok = reader.Parse<rapidjson::kParseNumbersAsStringsFlag>(ms, writer);
  if (!ok) return std::string(json);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace bridge::fhir
