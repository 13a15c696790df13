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

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };

  void* do_allocate(size_t bytes, size_t alignment) override {
    for (;;) {
      if (block_ < blocks_.size()) {
        Block& b = blocks_[block_];
        const size_t start = (used_ + alignment - 1) & ~(alignment - 1);
        if (start + bytes <= b.size) {
          used_ = start + bytes;
          return b.data.get() + start;
        }
        if (block_ + 1 < blocks_.size()) {
          ++block_;
          used_ = 0;
          continue;
        }
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

Json::Json(const Json& other)
    : kind_(other.kind_),
      is_literal_(other.is_literal_),
      literal_(other.literal_),
      scalar_(other.scalar_, JsonArena::Current()),
      members_(other.members_, scalar_.get_allocator()),
      items_(other.items_, scalar_.get_allocator()) {}

Json& Json::Set(std::string_view key, Json value) {
  for (auto& [k, v] : members_) {
    if (k == key) {
      v = std::move(value);
      return v;
    }
  }
  if (members_.empty()) members_.reserve(8);
  members_.emplace_back(key, std::move(value));
  return members_.back().second;
}

const Json* Json::Find(std::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Json* Json::Find(std::string_view key) {
  for (auto& [k, v] : members_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Json::Remove(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->first == key) {
      members_.erase(it);
      return;
    }
  }
}

Json& Json::Push(Json value) {
  if (items_.empty()) items_.reserve(4);
  items_.push_back(std::move(value));
  return items_.back();
}

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
  out->push_back('"');
  for (size_t i = 0;;) {
    const size_t next = NextToEscape(text, i);
    out->append(text.data() + i, next - i);
    if (next == text.size()) break;
    char escape[6];
    out->append(escape, WriteEscape(static_cast<unsigned char>(text[next]), escape));
    i = next + 1;
  }
  out->push_back('"');
}

char* WriteJsonString(std::string_view text, char* out) {
  *out++ = '"';
  for (size_t i = 0;;) {
    const size_t next = NextToEscape(text, i);
    std::memcpy(out, text.data() + i, next - i);
    out += next - i;
    if (next == text.size()) break;
    out += WriteEscape(static_cast<unsigned char>(text[next]), out);
    i = next + 1;
  }
  *out++ = '"';
  return out;
}

void Json::AppendTo(std::string* out) const {
  switch (kind_) {
    case Kind::kNull:
      out->append("null");
      break;
    case Kind::kBool:
    case Kind::kNumber:
    case Kind::kRaw:
      out->append(scalar());
      break;
    case Kind::kString:
      AppendJsonString(scalar(), out);
      break;
    case Kind::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, v] : members_) {
        // Element names are plain ASCII: `,"name":` goes in one append.
        char prefix[72];
        if (k.size() <= 64 && IsPlainKey(k)) {
          size_t n = 0;
          if (!first) prefix[n++] = ',';
          prefix[n++] = '"';
          std::memcpy(prefix + n, k.data(), k.size());
          n += k.size();
          prefix[n++] = '"';
          prefix[n++] = ':';
          out->append(prefix, n);
        } else {
          if (!first) out->push_back(',');
          AppendJsonString(k, out);
          out->push_back(':');
        }
        first = false;
        v.AppendTo(out);
      }
      out->push_back('}');
      break;
    }
    case Kind::kArray: {
      out->push_back('[');
      bool first = true;
      for (const Json& v : items_) {
        if (!first) out->push_back(',');
        first = false;
        v.AppendTo(out);
      }
      out->push_back(']');
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
