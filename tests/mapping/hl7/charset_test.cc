#include "mapping/hl7/charset.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/ascii.h"

#include "mapping/hl7/ack.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/message.h"

namespace bridge::hl7 {
namespace {

// MSH-18 names as senders write them (HL7 table 0211 and the variants seen
// in real traffic), and what lab-bridge makes of each.
struct NameCase {
  const char* name;
  const char* msh18;
  Charset charset;
  int iso8859_part;
};

void PrintTo(const NameCase& c, std::ostream* os) { *os << c.name; }

class CharsetNameTest : public ::testing::TestWithParam<NameCase> {};

TEST_P(CharsetNameTest, MapsMsh18ToACharset) {
  const CharsetInfo info = CharsetFromMsh18(GetParam().msh18);
  EXPECT_EQ(info.charset, GetParam().charset);
  EXPECT_EQ(info.iso8859_part, GetParam().iso8859_part);
  EXPECT_EQ(info.declared, std::string(absl::StripAsciiWhitespace(GetParam().msh18)));
  EXPECT_TRUE(info.converted_from.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, CharsetNameTest,
    ::testing::Values(NameCase{"unicode_utf8", "UNICODE UTF-8", Charset::kUtf8, 0},
                      NameCase{"unicode_utf8_lower_padded", "  unicode utf-8 ", Charset::kUtf8, 0},
                      NameCase{"unicode_utf8_underscore", "UNICODE_UTF-8", Charset::kUtf8, 0},
                      NameCase{"unicode_utf8_no_dash", "UNICODE UTF8", Charset::kUtf8, 0},
                      NameCase{"unicode", "UNICODE", Charset::kUtf8, 0},
                      NameCase{"utf8_dash", "UTF-8", Charset::kUtf8, 0},
                      NameCase{"utf8", "UTF8", Charset::kUtf8, 0},
                      NameCase{"utf8_lower", "utf-8", Charset::kUtf8, 0},
                      NameCase{"ascii", "ASCII", Charset::kAscii, 0},
                      NameCase{"us_ascii", "US-ASCII", Charset::kAscii, 0},
                      NameCase{"ascii_lower", "ascii", Charset::kAscii, 0},
                      NameCase{"hl7_8859_1", "8859/1", Charset::kIso8859, 1},
                      NameCase{"hl7_8859_2", "8859/2", Charset::kIso8859, 2},
                      NameCase{"hl7_8859_9", "8859/9", Charset::kIso8859, 9},
                      NameCase{"hl7_8859_15", "8859/15", Charset::kIso8859, 15},
                      NameCase{"iso_8859_1", "ISO-8859-1", Charset::kIso8859, 1},
                      NameCase{"iso_8859_15_lower", "iso-8859-15", Charset::kIso8859, 15},
                      NameCase{"iso8859_1", "ISO8859-1", Charset::kIso8859, 1},
                      NameCase{"gb18030_table", "GB 18030-2000", Charset::kGb18030, 0},
                      NameCase{"gb18030", "GB18030", Charset::kGb18030, 0},
                      NameCase{"ks_x_1001", "KS X 1001", Charset::kEucKr, 0},
                      NameCase{"euc_kr", "EUC-KR", Charset::kEucKr, 0},
                      NameCase{"big5_table", "BIG-5", Charset::kBig5, 0},
                      NameCase{"big5", "BIG5", Charset::kBig5, 0},
                      // ISO 2022 families and UTF-16/32 are refused, not guessed.
                      NameCase{"iso_ir87", "ISO IR87", Charset::kUnsupported, 0},
                      NameCase{"iso_ir159", "ISO IR159", Charset::kUnsupported, 0},
                      NameCase{"utf16", "UNICODE UTF-16", Charset::kUnsupported, 0},
                      NameCase{"utf32", "UNICODE UTF-32", Charset::kUnsupported, 0},
                      NameCase{"jis_x_0202", "JIS X 0202", Charset::kUnsupported, 0},
                      NameCase{"cns", "CNS 11643-1992", Charset::kUnsupported, 0},
                      // Empty, unknown, and 8859 parts that do not exist are unspecified:
                      // the bytes decide (UTF-8 if valid, else Windows-1252).
                      NameCase{"empty", "", Charset::kUnspecified, 0},
                      NameCase{"blank", "   ", Charset::kUnspecified, 0},
                      NameCase{"windows_1252", "WINDOWS-1252", Charset::kUnspecified, 0},
                      NameCase{"latin1_alias", "LATIN1", Charset::kUnspecified, 0},
                      NameCase{"hl7_8859_10", "8859/10", Charset::kUnspecified, 0},
                      NameCase{"hl7_8859_no_part", "8859/", Charset::kUnspecified, 0},
                      NameCase{"hl7_8859_junk", "8859/1a", Charset::kUnspecified, 0}),
    [](const ::testing::TestParamInfo<NameCase>& info) { return info.param.name; });

// Bytes under a declared charset: what comes out (UTF-8), or the error.
struct BytesCase {
  const char* name;
  const char* msh18;
  std::string bytes;
  bool ok;
  std::string utf8;            // when ok: the text lab-bridge reads
  const char* converted_from;  // when ok: "" when the bytes were used as they are
  bool warns;
};

void PrintTo(const BytesCase& c, std::ostream* os) { *os << c.name; }

class CharsetBytesTest : public ::testing::TestWithParam<BytesCase> {};

TEST_P(CharsetBytesTest, DecodesOrRefusesTheBytes) {
  const BytesCase& c = GetParam();
  CharsetInfo info = CharsetFromMsh18(c.msh18);
  std::string utf8;
  bool converted = false;
  std::string warning;
  absl::Status status = ToUtf8(c.bytes, &info, &utf8, &converted, &warning);
  if (!c.ok) {
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    std::optional<Hl7ErrorDetail> detail = GetHl7Error(status);
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->code, ErrorCode::kDataTypeError);
    EXPECT_EQ(detail->location.ToString(), "MSH-18");
    return;
  }
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(converted ? utf8 : c.bytes, c.utf8);
  EXPECT_EQ(info.converted_from, c.converted_from);
  EXPECT_EQ(converted, *c.converted_from != '\0');
  EXPECT_EQ(!warning.empty(), c.warns) << warning;
}

INSTANTIATE_TEST_SUITE_P(
    Table, CharsetBytesTest,
    ::testing::Values(
        BytesCase{"ascii_plain", "ASCII", "abc", true, "abc", "", false},
        // UTF-8 under a declared ASCII is read as UTF-8, with a warning.
        BytesCase{"ascii_holding_utf8", "ASCII", "M\xC3\xBCller", true, "M\xC3\xBCller", "", true},
        // A Latin-1 byte under ASCII is neither ASCII nor UTF-8: an error.
        BytesCase{"ascii_latin1_byte", "ASCII", "M\xFCller", false, "", "", false},
        BytesCase{"us_ascii_high_byte", "US-ASCII", "x\x80y", false, "", "", false},
        BytesCase{"latin1_converted", "8859/1", "M\xFCller", true, "M\xC3\xBCller", "ISO-8859-1",
                  false},
        BytesCase{"latin9_euro", "8859/15", "5 \xA4", true, "5 \xE2\x82\xAC", "ISO-8859-15", false},
        // Mislabelled UTF-8 under 8859 is read as UTF-8, with a warning.
        BytesCase{"latin1_holding_utf8", "8859/1", "\xC3\xBC", true, "\xC3\xBC", "", true},
        // Bytes that 8859-3 and 8859-7 leave undefined: an error.
        BytesCase{"latin3_undefined_byte", "8859/3", "x\xA5y", false, "", "", false},
        BytesCase{"greek_undefined_byte", "ISO-8859-7", "x\xAEy", false, "", "", false},
        BytesCase{"utf8_valid", "UNICODE UTF-8", "\xC3\x81lvaro \xF0\x9F\xA7\xAA", true,
                  "\xC3\x81lvaro \xF0\x9F\xA7\xAA", "", false},
        BytesCase{"utf8_bad_continuation", "UNICODE UTF-8", "\xC3\x28", false, "", "", false},
        BytesCase{"utf8_overlong_slash", "UTF-8", "\xC0\xAF", false, "", "", false},
        BytesCase{"utf8_surrogate", "UTF-8", "\xED\xA0\x80", false, "", "", false},
        BytesCase{"utf8_truncated_at_end", "UTF-8", "ok \xF0\x9F\xA7", false, "", "", false},
        BytesCase{"utf8_above_u10ffff", "UTF-8", "\xF4\x90\x80\x80", false, "", "", false},
        BytesCase{"utf8_latin1_byte", "UNICODE UTF-8", "M\xFCller", false, "", "", false},
        // Undeclared: UTF-8 when valid, else Windows-1252 (with a warning).
        BytesCase{"undeclared_utf8", "", "\xC2\xB5g", true, "\xC2\xB5g", "", false},
        BytesCase{"undeclared_cp1252", "", "\x93q\x94", true, "\xE2\x80\x9Cq\xE2\x80\x9D",
                  "WINDOWS-1252", true}),
    [](const ::testing::TestParamInfo<BytesCase>& info) { return info.param.name; });

// The ASCII fast path checks 32 and 8 bytes at a time: a bad byte at any
// offset in a long ASCII run must still be found.
TEST(Utf8ValidationTest, FindsABadByteAtEveryOffset) {
  for (std::size_t length : {1u, 7u, 8u, 31u, 32u, 33u, 64u, 100u}) {
    const std::string ascii(length, 'a');
    EXPECT_TRUE(IsValidUtf8(ascii));
    for (std::size_t at = 0; at < length; ++at) {
      SCOPED_TRACE(::testing::Message() << "length " << length << ", bad byte at " << at);
      std::string bytes = ascii;
      bytes[at] = '\xFF';
      EXPECT_FALSE(IsValidUtf8(bytes));
      bytes[at] = '\xC3';  // a lead byte with no continuation (or 'a' after it)
      EXPECT_FALSE(IsValidUtf8(bytes));
      std::string two = ascii;
      two.replace(at, 1, "\xC3\xA9");
      EXPECT_TRUE(IsValidUtf8(two));
    }
  }
}

// A message whose bytes are invalid in its declared charset does not parse;
// the error names MSH-18 and the NAK built from the bytes carries it in ERR,
// with the message's own control id.
struct NakCase {
  const char* name;
  const char* msh18;
  const char* bad_value;
  const char* msa1;
  const char* err3;  // ERR-3-1: table 0357 code
};

void PrintTo(const NakCase& c, std::ostream* os) { *os << c.name; }

class CharsetNakTest : public ::testing::TestWithParam<NakCase> {};

TEST_P(CharsetNakTest, BadBytesBecomeANakWithErrAtMsh18) {
  const NakCase& c = GetParam();
  const std::string bytes = std::string(
                                "MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|CS-7|P|2.5.1|||"
                                "AL|NE||") +
                            c.msh18 + "\rPID|1||7||" + c.bad_value + "\r";
  absl::StatusOr<Message> m = Message::Parse(bytes);
  ASSERT_FALSE(m.ok());
  std::optional<Hl7ErrorDetail> detail = GetHl7Error(m.status());
  ASSERT_TRUE(detail.has_value()) << m.status();
  EXPECT_EQ(detail->location.segment, "MSH");
  EXPECT_EQ(detail->location.field, 18);

  const std::string nak_bytes =
      BuildAck(nullptr, bytes, m.status(), {.control_id = "LB9", .timestamp = "20260101000000"});
  EXPECT_TRUE(IsValidUtf8(nak_bytes));
  absl::StatusOr<Message> nak = Message::Parse(nak_bytes);
  ASSERT_TRUE(nak.ok()) << nak.status();
  EXPECT_EQ(nak->Get("MSA-1").value(), c.msa1);
  EXPECT_EQ(nak->Get("MSA-2").value(), "CS-7");
  EXPECT_EQ(nak->Get("ERR-2").encoded(), "MSH^1^18");
  EXPECT_EQ(nak->Get("ERR-3-1").value(), c.err3);
  EXPECT_EQ(nak->Get("ERR-4").value(), "E");
  // The error text names the problem, never the bytes.
  EXPECT_FALSE(nak->Get("ERR-8").value().empty());
  EXPECT_EQ(nak_bytes.find(c.bad_value), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CharsetNakTest,
    ::testing::Values(NakCase{"invalid_utf8", "UNICODE UTF-8", "M\xFCller", "AE", "102"},
                      NakCase{"overlong_utf8", "UTF-8", "\xC0\xAF", "AE", "102"},
                      NakCase{"latin1_under_ascii", "ASCII", "M\xFCller", "AE", "102"},
                      NakCase{"undefined_in_8859_3", "8859/3", "x\xA5y", "AE", "102"},
                      // A set lab-bridge does not decode is refused, not an
                      // error in the content.
                      NakCase{"iso_2022", "ISO IR87", "x", "AR", "103"}),
    [](const ::testing::TestParamInfo<NakCase>& info) { return info.param.name; });

}  // namespace
}  // namespace bridge::hl7
