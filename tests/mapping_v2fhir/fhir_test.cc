// mapping/fhir: the ordered JSON tree and the deterministic ids, checked
// against independent implementations (Python's uuid and hashlib).
#include <cstdio>
#include <string>

#include "gtest/gtest.h"

#include "mapping/fhir/ids.h"
#include "mapping/fhir/json.h"
#include "mapping/fhir/text.h"

namespace bridge::fhir {
namespace {

TEST(IdsTest, UuidV5MatchesRfc4122) {
  // python3: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
  EXPECT_EQ(UuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  EXPECT_EQ(UuidV5(kBridgeNamespace, "Patient|x"), "ae60a456-48f5-5a51-b7e3-61cdcaa20e9e");
}

TEST(IdsTest, Sha256Hex) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(IdsTest, SearchValuesAreEscapedThenPercentEncoded) {
  EXPECT_EQ(EscapeSearchValue("21:AA:B0029251S.1"), "21%3AAA%3AB0029251S.1");
  EXPECT_EQ(EscapeSearchValue("a|b,c$d\\e"), "a%5C%7Cb%5C%2Cc%5C%24d%5C%5Ce");
  EXPECT_EQ(SearchToken("urn:oid:1.2", "X 1"), "urn%3Aoid%3A1.2|X%201");
  EXPECT_EQ(SearchToken("", "v"), "v");
}

TEST(JsonTest, KeepsOrderAndNumberDigits) {
  Json o = Json::Object();
  o.Set("b", Json::Number("0.10"));
  o.Set("a", "x\"y\\z\n\x01");
  o.Set("c", Json::Array()).Push(Json::Bool(true));
  o.Set("b", Json::Number("1769.859285"));  // replaces in place
  EXPECT_EQ(o.Serialize(), R"({"b":1769.859285,"a":"x\"y\\z\n\u0001","c":[true]})");
  EXPECT_EQ(PrettyJson(R"({"v":0.10,"w":[1,2]})"),
            "{\n  \"v\": 0.10,\n  \"w\": [\n    1,\n    2\n  ]\n}");
  EXPECT_EQ(Json::Literal("lit").Serialize(), "\"lit\"");
  EXPECT_EQ(Json::RawLiteral("[1]").Serialize(), "[1]");
  EXPECT_TRUE(o.Has("a"));
  o.Remove("a");
  EXPECT_FALSE(o.Has("a"));
}

TEST(JsonTest, StringEscapingMatchesAByteByByteReference) {
  auto reference = [](std::string_view text) {
    std::string out = "\"";
    for (char ch : text) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c == '"') {
        out += "\\\"";
      } else if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += ch;
      }
    }
    return out + "\"";
  };
  // Every special byte at every position of strings around the 8-byte stride.
  const std::string specials = std::string("\"\\\n\r\t\x01\x1f", 7) + "\x7f\x80\xc3\xa9 ";
  for (size_t len = 0; len < 24; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      for (char special : specials) {
        std::string text(len, 'a');
        text[pos] = special;
        std::string out = "prefix";
        AppendJsonString(text, &out);
        ASSERT_EQ(out, "prefix" + reference(text)) << "len " << len << " pos " << pos;
        // The same bytes from the writer into a buffer sized once, which
        // stays within its bound (the byte after it is never touched).
        std::string buffer(JsonStringBound(text.size()) + 1, '#');
        char* end = WriteJsonString(text, buffer.data());
        ASSERT_EQ(std::string(buffer.data(), end), reference(text)) << "len " << len;
        ASSERT_EQ(buffer.back(), '#');
        // And through JsonSink, which makes room as it meets each escape.
        ASSERT_EQ(Json(text).Serialize(), reference(text)) << "len " << len << " pos " << pos;
      }
    }
  }
  // A sink whose string grows in the middle of a run of escapes.
  const std::string long_controls(3000, '\x02');
  EXPECT_EQ(Json(long_controls).Serialize(), reference(long_controls));
  // The worst case fills the bound exactly: every byte a \u00XX escape.
  const std::string controls(9, '\x01');
  std::string buffer(JsonStringBound(controls.size()), '#');
  EXPECT_EQ(WriteJsonString(controls, buffer.data()), buffer.data() + buffer.size());
  EXPECT_EQ(buffer, reference(controls));
}

TEST(JsonTest, IsJsonNumber) {
  for (const char* ok : {"0", "-1", "0.10", "12.5e3", "1E-2"}) EXPECT_TRUE(IsJsonNumber(ok)) << ok;
  for (const char* bad : {"", "+1", ".5", "5.", "007", "1e", "--1", "0x10"}) {
    EXPECT_FALSE(IsJsonNumber(bad)) << bad;
  }
}

// A tree large enough to span several arena blocks, with copies, moves,
// replaced members and nested arrays.
Json BigTree() {
  Json root = Json::Object();
  Json& list = root.Set("entry", Json::Array());
  for (int i = 0; i < 3000; ++i) {
    Json o = Json::Object();
    o.Set("id", Json(text::Cat("resource-", i, "-with-a-name-longer-than-sso")));
    o.Set("value", Json::Integer(i));
    o.Set("id", Json(text::Cat("replaced-", i)));
    Json copy = o;  // copies take the scope's memory too
    copy.Set("copy", Json::Bool(true));
    list.Push(std::move(copy)).Set("nested", Json::Array()).Push(o);
  }
  return root;
}

TEST(JsonTest, AnArenaScopeChangesNothingButWhereMemoryComesFrom) {
  const std::string on_heap = BigTree().Serialize();
  ASSERT_GT(on_heap.size(), 200000u);  // the tree itself takes megabytes
  for (int round = 0; round < 3; ++round) {  // the arena is reused after each scope
    JsonArena::Scope scope;
    EXPECT_NE(JsonArena::Current(), std::pmr::new_delete_resource());
    {
      JsonArena::Scope nested;  // shares the outer arena
      EXPECT_EQ(BigTree().Serialize(), on_heap);
    }
    EXPECT_NE(JsonArena::Current(), std::pmr::new_delete_resource());
    // A tree built on the heap, moved and copied into arena trees.
    Json outside_copy = Json::Object();
    outside_copy.Set("tree", BigTree());
    EXPECT_EQ(outside_copy.Find("tree")->Serialize(), on_heap);
  }
  EXPECT_EQ(JsonArena::Current(), std::pmr::new_delete_resource());
}

TEST(TextTest, CatFormatsEveryPieceOnce) {
  EXPECT_EQ(text::Cat("a", std::string("b"), std::string_view("c"), 42, "-", -7, "/",
                      static_cast<unsigned long long>(18446744073709551615ULL)),
            "abc42--7/18446744073709551615");
  std::string s = "x";
  text::Append(&s, 1, "y");
  EXPECT_EQ(s, "x1y");
}

TEST(IdsTest, SearchEscapingKeepsRunsOfPlainCharacters) {
  EXPECT_EQ(EscapeSearchValue(""), "");
  EXPECT_EQ(EscapeSearchValue("abcXYZ019-._~"), "abcXYZ019-._~");
  EXPECT_EQ(EscapeSearchValue("$a"), "%5C%24a");
  EXPECT_EQ(EscapeSearchValue("a b\\"), "a%20b%5C%5C");
}

}  // namespace
}  // namespace bridge::fhir
