#include "mapping/hl7/message.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mapping/hl7/error.h"
#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

using testing::GuideSampleOru;
using testing::SyntheticFullOru;

Message ParseOk(const std::string& bytes) {
  absl::StatusOr<Message> m = Message::Parse(bytes);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : Message();
}

Hl7ErrorDetail ParseError(const std::string& bytes) {
  absl::StatusOr<Message> m = Message::Parse(bytes);
  EXPECT_FALSE(m.ok());
  if (m.ok()) return {};
  std::optional<Hl7ErrorDetail> detail = GetHl7Error(m.status());
  EXPECT_TRUE(detail.has_value()) << m.status();
  return detail.value_or(Hl7ErrorDetail{});
}

TEST(MessageTest, ReadsTheGuideSample) {
  Message m = ParseOk(GuideSampleOru());
  EXPECT_EQ(m.segment_count(), 8);
  EXPECT_EQ(m.control_id(), "MSG001");
  EXPECT_EQ(m.message_code(), "ORU");
  EXPECT_EQ(m.trigger_event(), "R01");
  EXPECT_EQ(m.version(), "2.5.1");
  EXPECT_EQ(m.Get("PID-3-1").value(), "12345");
  EXPECT_EQ(m.Get("PID-3-4").value(), "MPS_PMS");
  EXPECT_EQ(m.Get("PID-5-2").value(), "Jane");
  EXPECT_EQ(m.Get("OBX(5)-3-2").value(), "Potassium");
  EXPECT_EQ(m.Get("OBX(5)-5").value(), "6.8");
  EXPECT_EQ(m.Get("OBX(5)-8").value(), "HH");
  EXPECT_EQ(m.Get("MSH-9-2").value(), "R01");
  EXPECT_EQ(m.raw(), GuideSampleOru());
}

TEST(MessageTest, MshOneAndTwoAreTheDelimitersUnsplit) {
  Message m = ParseOk(GuideSampleOru());
  EXPECT_EQ(m.Get("MSH-1").value(), "|");
  EXPECT_EQ(m.Get("MSH-2").value(), "^~\\&");
  EXPECT_EQ(m.Get("MSH-2").size(), 1);
  EXPECT_EQ(m.Get("MSH-3").value(), "LAB_LIS");
}

TEST(MessageTest, PathsAddressRepetitionsComponentsAndSubcomponents) {
  Message m = ParseOk(SyntheticFullOru());
  EXPECT_EQ(m.Get("PID-3").size(), 2);
  EXPECT_EQ(m.Get("PID-3(2)-1").value(), "998877");
  EXPECT_EQ(m.Get("PID-3(2)-4-2").value(), "2.16.840.1.113883.4.1");
  EXPECT_EQ(m.Get("PID-3[2].5").value(), "SS");
  EXPECT_EQ(m.Get("PID-5-1-1").value(), "Testperson");
  EXPECT_EQ(m.Get("PID-5").value(), "Testperson");  // first leaf, like HAPI's Terser
  EXPECT_EQ(m.Get("PID-5").encoded(), "Testperson^Alex^Q^Jr^^^L");
  EXPECT_EQ(m.Get("OBX(4)-5").size(), 2);
  EXPECT_EQ(m.Get("OBX(4)-5(2)-2").value(), "Turbid");
  EXPECT_FALSE(m.Get("OBX(9)-5").present());
  EXPECT_EQ(m.Get("ZZZ-1").value(), "");
  EXPECT_FALSE(m.Get("PID-3(3)").present());
}

TEST(MessageTest, PathParserRejectsMalformedPaths) {
  for (const char* bad :
       {"", "PI", "pid-3", "PID", "PID-", "PID-x", "PID-3(0)", "PID-3-1-1-1", "PID(2", "PID-3)"}) {
    EXPECT_FALSE(Path::Parse(bad).ok()) << bad;
  }
  absl::StatusOr<Path> p = Path::Parse("OBX(3)-5(2)-1-2");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->occurrence, 3);
  EXPECT_EQ(p->field, 5);
  EXPECT_EQ(p->repetition, 2);
  EXPECT_EQ(p->component, 1);
  EXPECT_EQ(p->subcomponent, 2);
  EXPECT_EQ(p->ToString(), "OBX(3)-5(2)-1-2");
}

TEST(MessageTest, EmptyAndExplicitNullAreDistinct) {
  Message m = ParseOk("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rOBX|1|ST|X||\"\"|||\r");
  Element null_value = m.Get("OBX-5");
  Element empty_value = m.Get("OBX-4");
  EXPECT_TRUE(null_value.is_null());
  EXPECT_EQ(null_value.value(), "");
  EXPECT_EQ(null_value.encoded(), "\"\"");
  EXPECT_FALSE(empty_value.is_null());
  EXPECT_TRUE(empty_value.empty());
  EXPECT_TRUE(empty_value.present());
}

TEST(MessageTest, AcceptsCrLfAndCrLfTerminatorsAndABom) {
  const std::string cr = "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||7\r";
  for (const std::string& variant :
       {cr, std::string("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\nPID|1||7\n"),
        std::string("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\r\nPID|1||7\r\n"),
        std::string("\xEF\xBB\xBFMSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\r\n\r\nPID|1||7"),
        std::string("\r\nMSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||7\r\r\n")}) {
    Message m = ParseOk(variant);
    EXPECT_EQ(m.segment_count(), 2);
    EXPECT_EQ(m.Get("PID-3").value(), "7");
    EXPECT_EQ(m.raw(), variant);  // the audit trail keeps the bytes as received
  }
}

TEST(MessageTest, UsesTheDelimitersTheMessageDeclares) {
  Message dollar = ParseOk(
      "MSH$%~\\&$GHH LAB$ELAB$$$20260101$$ORU%R01$CTRL-9$P$2.3\r"
      "PID$$$555-44-4444$$EVERYWOMAN%EVE%E%%%L\r");
  EXPECT_EQ(dollar.delimiters().field, '$');
  EXPECT_EQ(dollar.delimiters().component, '%');
  EXPECT_EQ(dollar.control_id(), "CTRL-9");
  EXPECT_EQ(dollar.Get("PID-5-2").value(), "EVE");
  EXPECT_EQ(dollar.trigger_event(), "R01");

  Message underscore = ParseOk(
      "MSH_^~\\&_Main_XYZ_iFW_ABC_20160915003015__ACK_9B38584D_P_2.6.1_\r"
      "MSA_AA_9B38584D_Everything was okay_\r");
  EXPECT_EQ(underscore.Get("MSA-2").value(), "9B38584D");
  EXPECT_EQ(underscore.Get("MSA-3").value(), "Everything was okay");
}

TEST(MessageTest, TruncationCharacterIsNeverInterpretedInData) {
  Message m = ParseOk(SyntheticFullOru());
  EXPECT_EQ(m.delimiters().truncation, '#');
  EXPECT_EQ(m.Get("PID-11-1").value(), "12 Main St & Apt #3");
  EXPECT_EQ(m.Get("MSH-2").value(), "^~\\&#");
}

TEST(MessageTest, DuplicateEncodingCharacterFallsBackToTheStandardOne) {
  // `^~\\&` as seen in real traffic: the subcomponent separator repeats the
  // escape character.
  Message m = ParseOk("MSH|^~\\\\&|A|B|C|D|20260101||ORU^R01|77|P|2.5\rPID|1||1^^^H&1.2&ISO\r");
  EXPECT_EQ(m.delimiters().escape, '\\');
  EXPECT_EQ(m.delimiters().subcomponent, '&');
  EXPECT_EQ(m.delimiters().truncation, '\0');
  EXPECT_FALSE(m.warnings().empty());
  EXPECT_EQ(m.control_id(), "77");
  EXPECT_EQ(m.Get("PID-3-4-2").value(), "1.2");
}

TEST(MessageTest, EscapesAreDecodedPerValueAfterSplitting) {
  Message m = ParseOk(SyntheticFullOru());
  EXPECT_EQ(m.Get("NTE(1)-3").value(), "Patient note with a | pipe and a line\nbreak");
  EXPECT_EQ(m.Get("NTE(1)-3").encoded(), "Patient note with a \\F\\ pipe and a line\\.br\\break");
}

TEST(MessageTest, HighlightingIsDroppedOrKeptByOption) {
  const std::string bytes =
      "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rNTE|1||\\H\\Important\\N\\ note\r";
  EXPECT_EQ(ParseOk(bytes).Get("NTE-3").value(), "Important note");
  ParseOptions keep;
  keep.unescape.keep_highlighting = true;
  absl::StatusOr<Message> kept = Message::Parse(bytes, keep);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->Get("NTE-3").value(), "\\H\\Important\\N\\ note");
}

TEST(MessageTest, RejectsInputThatIsNotAMessage) {
  Hl7ErrorDetail no_msh = ParseError("PID|1||7\r");
  EXPECT_EQ(no_msh.code, ErrorCode::kSegmentSequenceError);
  EXPECT_EQ(ParseError("").code, ErrorCode::kSegmentSequenceError);
  EXPECT_EQ(ParseError("MSHA^~\\&|\r").code, ErrorCode::kDataTypeError);
  EXPECT_EQ(ParseError("MSH||A\r").code, ErrorCode::kRequiredFieldMissing);
  EXPECT_EQ(ParseError("MSH|^~\\&ab|A\r").code, ErrorCode::kDataTypeError);
  EXPECT_EQ(ParseError("FHS|^~\\&|X\rMSH|^~\\&|A\r").code, ErrorCode::kSegmentSequenceError);
}

TEST(MessageTest, NamesTheSegmentThatIsNotASegment) {
  Hl7ErrorDetail e = ParseError(
      "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||7\rthis line lost its CR\r");
  EXPECT_EQ(e.code, ErrorCode::kSegmentSequenceError);
  EXPECT_EQ(e.location.segment_sequence, 3);
  EXPECT_GT(e.location.byte_offset, 0);
}

TEST(MessageTest, ASecondHeaderIsAnErrorUnlessAllowed) {
  const std::string two = GuideSampleOru() + GuideSampleOru();
  EXPECT_EQ(ParseError(two).code, ErrorCode::kSegmentSequenceError);
  ParseOptions options;
  options.allow_trailing_messages = true;
  absl::StatusOr<Message> first = Message::Parse(two, options);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->segment_count(), 8);
}

TEST(MessageTest, NulByteInsideASegmentIsAnError) {
  std::string bytes = "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||7";
  bytes.push_back('\0');
  bytes += "8\r";
  EXPECT_EQ(ParseError(bytes).code, ErrorCode::kDataTypeError);
}

TEST(MessageTest, Latin1IsConvertedToUtf8) {
  std::string bytes =
      "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1||||||8859/1\rPID|1||7||M\xFCller^Ana\r";
  Message m = ParseOk(bytes);
  EXPECT_EQ(m.Get("PID-5-1").value(), "M\xC3\xBCller");
  EXPECT_EQ(m.raw(), bytes);
  EXPECT_EQ(m.charset().charset, Charset::kIso8859);
}

TEST(MessageTest, UndeclaredNonUtf8BytesAreReadAsWindows1252WithAWarning) {
  Message m = ParseOk("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rNTE|1||5 \xB5g\r");
  EXPECT_EQ(m.Get("NTE-3").value(), "5 \xC2\xB5g");
  EXPECT_FALSE(m.warnings().empty());
}

TEST(MessageTest, InvalidUtf8UnderDeclaredUtf8IsADataTypeErrorAtMsh18) {
  Hl7ErrorDetail e = ParseError(
      "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1||||||UNICODE UTF-8\rPID|1||\xC3\x28\r");
  EXPECT_EQ(e.code, ErrorCode::kDataTypeError);
  EXPECT_EQ(e.location.segment, "MSH");
  EXPECT_EQ(e.location.field, 18);
}

TEST(MessageTest, Iso2022CharsetsAreRefusedAsUnsupported) {
  absl::StatusOr<Message> m =
      Message::Parse("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1||||||ISO IR87\rPID|1\r");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(MessageTest, Utf8IsPassedThrough) {
  Message m = ParseOk(SyntheticFullOru() + "NTE|2||\xC3\x81lvaro \xC2\xB7 5 \xC2\xB5g\r");
  EXPECT_EQ(m.Get("NTE(4)-3").value(), "\xC3\x81lvaro \xC2\xB7 5 \xC2\xB5g");
}

TEST(MessageTest, PeekControlIdReadsBrokenMessages) {
  EXPECT_EQ(PeekControlId("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|CTRL-1|P|2.5.1\rPID|\xFF"),
            "CTRL-1");
  EXPECT_EQ(PeekControlId("garbage\rMSH|^~\\&|A|B|C|D|x||ORU^R01|C2|P\r"), "C2");
  EXPECT_EQ(PeekControlId("MSH|^~\\&|A|B|C|D|x||ORU^R01||P\r"), std::nullopt);
  EXPECT_EQ(PeekControlId("no header at all"), std::nullopt);
  EXPECT_EQ(PeekHeaderField("MSH|^~\\&|A|B\r", 2), "^~\\&");
  EXPECT_EQ(PeekHeaderField("MSH|^~\\&|A|B\r", 3), "A");
}

TEST(MessageTest, ParseIntoReusesAndClearsOnError) {
  Message m;
  ASSERT_TRUE(Message::ParseInto(GuideSampleOru(), {}, &m).ok());
  EXPECT_EQ(m.segment_count(), 8);
  EXPECT_FALSE(Message::ParseInto("nonsense", {}, &m).ok());
  EXPECT_EQ(m.segment_count(), 0);
  ASSERT_TRUE(Message::ParseInto(SyntheticFullOru(), {}, &m).ok());
  EXPECT_EQ(m.control_id(), "SYN-0002");
}

}  // namespace
}  // namespace bridge::hl7

namespace bridge::hl7 {
namespace {

// Found by the fuzzer: a NUL among the encoding characters used to become a
// delimiter and disable the end-of-text sentinel.
TEST(MessageRegressionTest, NulInEncodingCharactersIsRejected) {
  std::string bytes = "MSH|";
  bytes.push_back('\0');
  bytes += "^~\\&|A|B\rPID|1\r";
  absl::StatusOr<Message> m = Message::Parse(bytes);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(GetHl7Error(m.status())->code, ErrorCode::kDataTypeError);
}

// Found by the fuzzer: undeclared bytes that Windows-1252 leaves undefined
// (0x81, 0x8D, 0x8F, 0x90, 0x9D) are still read, as ISO-8859-1.
TEST(MessageRegressionTest, UndefinedWindows1252BytesFallBackToLatin1) {
  absl::StatusOr<Message> m =
      Message::Parse("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\rNTE|1||x\x8F\x81y\r");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->Get("NTE-3").value(), "x\xC2\x8F\xC2\x81y");
}

}  // namespace
}  // namespace bridge::hl7

namespace bridge::hl7 {
namespace {

// A level with no separator of its own is not stored (the node stands for
// it), so every shape of nesting must still read the same way.
TEST(MessageShapeTest, LevelsWithoutTheirOwnSeparatorReadLikeAnyOther) {
  absl::StatusOr<Message> m = Message::Parse(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\r"
      "ZZZ|a&b|c^d&e|f~g&h|i^j~k|\"\"&x\r");
  ASSERT_TRUE(m.ok()) << m.status();
  Element subs_only = m->Get("ZZZ-1");
  EXPECT_EQ(subs_only.size(), 1);
  EXPECT_EQ(subs_only.Rep(1).size(), 1);
  EXPECT_EQ(subs_only.Rep(1).Comp(1).size(), 2);
  EXPECT_EQ(subs_only.Comp(1).Sub(2).value(), "b");
  EXPECT_FALSE(subs_only.is_leaf());
  EXPECT_FALSE(subs_only.Rep(1).is_leaf());
  EXPECT_EQ(subs_only.Rep(1).encoded(), "a&b");
  EXPECT_EQ(m->Get("ZZZ-2-2-2").value(), "e");
  EXPECT_EQ(m->Get("ZZZ-2").Rep(1).size(), 2);
  EXPECT_EQ(m->Get("ZZZ-3(2)-1-2").value(), "h");
  EXPECT_EQ(m->Get("ZZZ-3(1)").size(), 1);
  EXPECT_TRUE(m->Get("ZZZ-3(1)").is_leaf());
  EXPECT_EQ(m->Get("ZZZ-4(1)-2").value(), "j");
  EXPECT_EQ(m->Get("ZZZ-4(2)-1").value(), "k");
  EXPECT_FALSE(m->Get("ZZZ-4(2)-2").present());
  EXPECT_TRUE(m->Get("ZZZ-5-1-1").is_null());
  EXPECT_EQ(m->Get("ZZZ-5-1-2").value(), "x");
  EXPECT_EQ(m->Get("ZZZ-5").value(), "");
}

// The scanner looks at 16 bytes at a time and the text is padded in memory:
// fields of every length, at every offset from a 16-byte boundary, with
// every kind of separator, must split exactly as a naive splitter does, under
// the standard delimiters and others, and raw() must be the input unchanged.
std::vector<std::string> SplitOn(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == separator) {
      parts.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

TEST(MessageShapeTest, FieldsOfEveryLengthAndOffsetSplitLikeANaiveSplitter) {
  for (const std::string encoding : {"^~\\&", "$%#!"}) {
    SCOPED_TRACE(encoding);
    const char comp = encoding[0], rep = encoding[1], sub = encoding[3];
    const char field = encoding == "^~\\&" ? '|' : '*';
    std::string bytes = std::string("MSH") + field + encoding + field + "A" + field + "B" + field +
                        "C" + field + "D" + field + "1" + field + field + "ORU" + comp + "R01" +
                        field + "1" + field + "P" + field + "2.5.1";
    std::vector<std::string> fields;
    for (int length = 0; length <= 40; ++length) {
      std::string value;
      for (int i = 0; i < length; ++i) {
        const char* pattern = "abcdefg";
        value += (i % 7 == 3) ? rep : (i % 5 == 2) ? comp : (i % 11 == 6) ? sub : pattern[i % 7];
      }
      fields.push_back(value);
    }
    bytes += "\rZZZ";
    for (const std::string& value : fields) bytes += field + value;
    bytes += "\rZZY" + std::string(1, field) + "x";  // no terminator after the last segment
    absl::StatusOr<Message> m = Message::Parse(bytes);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->raw(), bytes);
    EXPECT_EQ(m->text(), bytes);
    SegmentRef zzz = *m->Segment("ZZZ");
    ASSERT_EQ(zzz.field_count(), static_cast<int>(fields.size()));
    for (std::size_t f = 0; f < fields.size(); ++f) {
      SCOPED_TRACE(fields[f]);
      Element element = zzz.Field(static_cast<int>(f) + 1);
      EXPECT_EQ(element.encoded(), fields[f]);
      std::vector<std::string> reps = SplitOn(fields[f], rep);
      ASSERT_EQ(element.size(), fields[f].empty() ? 1 : static_cast<int>(reps.size()));
      for (std::size_t r = 0; r < reps.size(); ++r) {
        std::vector<std::string> comps = SplitOn(reps[r], comp);
        Element repetition = element.Rep(static_cast<int>(r) + 1);
        ASSERT_EQ(repetition.size(), static_cast<int>(comps.size()));
        for (std::size_t c = 0; c < comps.size(); ++c) {
          std::vector<std::string> subs = SplitOn(comps[c], sub);
          Element component = repetition.Comp(static_cast<int>(c) + 1);
          ASSERT_EQ(component.size(), static_cast<int>(subs.size()));
          for (std::size_t x = 0; x < subs.size(); ++x) {
            EXPECT_EQ(component.Sub(static_cast<int>(x) + 1).value(), subs[x]);
          }
        }
      }
    }
    EXPECT_EQ(m->Get("ZZY-1").value(), "x");
  }
}

// The parser remembers where a field's separators are so it does not read
// the field's bytes once per level; a field with more of them than it keeps
// at hand (long formatted text, long lists) must split the same way.
TEST(MessageShapeTest, FieldsWithThousandsOfSeparatorsSplitLikeShortOnes) {
  std::string field;
  for (int i = 1; i <= 700; ++i) {
    if (i > 1) field += '~';
    field += "r" + std::to_string(i) + "^c\\T\\2^s1&s" + std::to_string(i);
  }
  absl::StatusOr<Message> m = Message::Parse(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\r"
      "ZZZ|short^x|" +
      field + "|tail\r");
  ASSERT_TRUE(m.ok()) << m.status();
  Element long_field = m->Get("ZZZ-2");
  ASSERT_EQ(long_field.size(), 700);
  EXPECT_EQ(long_field.encoded(), field);
  for (int i : {1, 170, 171, 513, 700}) {
    SCOPED_TRACE(i);
    Element rep = long_field.Rep(i);
    EXPECT_EQ(rep.size(), 3);
    EXPECT_EQ(rep.Comp(1).value(), "r" + std::to_string(i));
    EXPECT_EQ(rep.Comp(2).value(), "c&2");
    EXPECT_EQ(rep.Comp(3).size(), 2);
    EXPECT_EQ(rep.Comp(3).Sub(2).value(), "s" + std::to_string(i));
  }
  EXPECT_EQ(m->Get("ZZZ-1-2").value(), "x");
  EXPECT_EQ(m->Get("ZZZ-3").value(), "tail");
}

}  // namespace
}  // namespace bridge::hl7
