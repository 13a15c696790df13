#include "mapping/hl7/escape.h"

#include <gtest/gtest.h>

#include <string>

namespace bridge::hl7 {
namespace {

struct UnescapeCase {
  const char* name;
  std::string encoded;
  std::string decoded;
};

void PrintTo(const UnescapeCase& c, std::ostream* os) { *os << c.name; }

class UnescapeTest : public ::testing::TestWithParam<UnescapeCase> {};

TEST_P(UnescapeTest, DecodesToPlainText) {
  Delimiters d;
  d.truncation = '#';
  std::string out;
  UnescapeTo(GetParam().encoded, d, {}, &out);
  EXPECT_EQ(out, GetParam().decoded);
}

INSTANTIATE_TEST_SUITE_P(
    Table, UnescapeTest,
    ::testing::Values(
        UnescapeCase{"field", "a\\F\\b", "a|b"}, UnescapeCase{"component", "a\\S\\b", "a^b"},
        UnescapeCase{"subcomponent", "a\\T\\b", "a&b"},
        UnescapeCase{"repetition", "a\\R\\b", "a~b"}, UnescapeCase{"escape", "a\\E\\b", "a\\b"},
        UnescapeCase{"truncation", "a\\P\\b", "a#b"}, UnescapeCase{"hex", "\\X41424344\\", "ABCD"},
        UnescapeCase{"hex_crlf", "line\\X0D0A\\next", "line\nnext"},
        UnescapeCase{"hex_utf8", "\\XC3A9\\", "\xC3\xA9"},
        UnescapeCase{"hex_odd_is_kept", "\\X414\\", "\\X414\\"},
        UnescapeCase{"line_break", "one\\.br\\two", "one\ntwo"},
        UnescapeCase{"skip_lines", "a\\.sp 2\\b", "a\n\nb"},
        UnescapeCase{"skip_line_default", "a\\.sp\\b", "a\nb"},
        UnescapeCase{"indent", "\\.in 3\\x", "   x"},
        UnescapeCase{"temp_indent", "\\.ti +2\\x", "  x"},
        UnescapeCase{"skip_spaces", "a\\.sk 2\\b", "a  b"},
        UnescapeCase{"fill_modes_dropped", "\\.fi\\a\\.nf\\b\\.ce\\c", "abc"},
        UnescapeCase{"highlight_dropped", "\\H\\bold\\N\\", "bold"},
        UnescapeCase{"charset_switch_passed", "x\\C2842\\y", "x\\C2842\\y"},
        UnescapeCase{"multibyte_switch_passed", "\\M2442\\", "\\M2442\\"},
        UnescapeCase{"local_passed", "\\Zabc\\", "\\Zabc\\"},
        UnescapeCase{"unknown_passed", "\\Q\\", "\\Q\\"},
        UnescapeCase{"unclosed_is_data", "50\\% off", "50\\% off"},
        UnescapeCase{"html_entity_kept", "\\T\\#8805;", "&#8805;"},
        UnescapeCase{"ascii_art", "  |a|\\.br\\  \\F\\b\\F\\", "  |a|\n  |b|"},
        UnescapeCase{"empty", "", ""}),
    [](const ::testing::TestParamInfo<UnescapeCase>& info) { return info.param.name; });

TEST(UnescapeTest, KeepsHighlightingWhenAsked) {
  std::string out;
  UnescapeTo("\\H\\bold\\N\\", Delimiters{}, {.keep_highlighting = true}, &out);
  EXPECT_EQ(out, "\\H\\bold\\N\\");
}

TEST(UnescapeTest, UsesTheMessagesOwnEscapeCharacter) {
  Delimiters d;
  d.component = '%';
  d.escape = '!';
  std::string out;
  UnescapeTo("a!S!b!F!c", d, {}, &out);
  EXPECT_EQ(out, "a%b|c");
}

TEST(EscapeTest, EscapesEveryDelimiterAndControlCharacter) {
  Delimiters d;
  EXPECT_EQ(Escape("a|b^c&d~e\\f", d), "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f");
  EXPECT_EQ(Escape("one\ntwo", d), "one\\.br\\two");
  EXPECT_EQ(Escape(std::string("x\ry\x01z\tw"), d), "x\\X0D\\y\\X01\\z\tw");
  EXPECT_EQ(Escape("#", d), "#");
  d.truncation = '#';
  EXPECT_EQ(Escape("#", d), "\\P\\");
}

TEST(EscapeTest, EscapeThenUnescapeIsIdentityForPrintableText) {
  Delimiters d;
  d.truncation = '#';
  const std::string samples[] = {
      "", "plain", "|^~\\&#", "\\F\\ literal", "a\nb", "\xC3\x81lvaro 5 \xC2\xB5g", "\\X41\\"};
  for (const std::string& text : samples) {
    std::string back;
    UnescapeTo(Escape(text, d), d, {}, &back);
    EXPECT_EQ(back, text);
  }
}

TEST(TranscodeTest, RewritesEscapesAndEscapesNewDelimiters) {
  Delimiters from;
  Delimiters to;
  to.component = '%';
  to.escape = '!';
  std::string out;
  TranscodeTo("50% \\F\\ a!b \\.br\\ \\S\\", from, to, &out);
  // The literal '|' stays '|' (to.field is also '|', so it is escaped as
  // !F!); the literal '^' is data under `to`.
  EXPECT_EQ(out, "50!S! !F! a!E!b !.br! ^");
}

}  // namespace
}  // namespace bridge::hl7
