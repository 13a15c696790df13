#include "mapping/hl7/datatypes.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

struct DtmCase {
  const char* input;
  const char* iso;  // nullptr: must be rejected
};

class DateTimeTest : public ::testing::TestWithParam<DtmCase> {};

TEST_P(DateTimeTest, KeepsPrecisionAndOffset) {
  absl::StatusOr<DateTime> t = ParseDateTime(GetParam().input);
  if (GetParam().iso == nullptr) {
    EXPECT_FALSE(t.ok()) << GetParam().input;
    return;
  }
  ASSERT_TRUE(t.ok()) << GetParam().input << ": " << t.status();
  EXPECT_EQ(t->ToIso8601(), GetParam().iso);
}

INSTANTIATE_TEST_SUITE_P(
    Table, DateTimeTest,
    ::testing::Values(DtmCase{"2026", "2026"}, DtmCase{"202602", "2026-02"},
                      DtmCase{"20260221", "2026-02-21"}, DtmCase{"2026022112", "2026-02-21T12"},
                      DtmCase{"202602211230", "2026-02-21T12:30"},
                      DtmCase{"20260221123005", "2026-02-21T12:30:05"},
                      DtmCase{"20260221123005.1234", "2026-02-21T12:30:05.1234"},
                      DtmCase{"20260221123005-0500", "2026-02-21T12:30:05-05:00"},
                      DtmCase{"202602211230+0530", "2026-02-21T12:30+05:30"},
                      DtmCase{"20260221123005.12+0000", "2026-02-21T12:30:05.12+00:00"},
                      DtmCase{" 20240229 ", "2024-02-29"}, DtmCase{"20250229", nullptr},
                      DtmCase{"20261301", nullptr}, DtmCase{"2026022125", nullptr},
                      DtmCase{"202602211260", nullptr}, DtmCase{"2026022", nullptr},
                      DtmCase{"20260221123005.12345", nullptr}, DtmCase{"20260221.5", nullptr},
                      DtmCase{"20260221123005-05", nullptr}, DtmCase{"2026022112300X", nullptr},
                      DtmCase{"", nullptr}));

TEST(DateTimeTest, ExposesFields) {
  absl::StatusOr<DateTime> t = ParseDateTime("20260221123005.5-0130");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->year, 2026);
  EXPECT_EQ(t->second, 5);
  EXPECT_EQ(t->fraction, "5");
  EXPECT_EQ(t->precision, DateTime::Precision::kSecond);
  EXPECT_EQ(t->utc_offset_minutes, -90);
  absl::StatusOr<DateTime> naive = ParseDateTime("20260221");
  ASSERT_TRUE(naive.ok());
  EXPECT_FALSE(naive->utc_offset_minutes.has_value());
}

TEST(NumericTest, KeepsTheLexicalForm) {
  for (const char* good : {"0.10", "-116.3324", "+5", "7", ".5", "5.", " 12 "}) {
    EXPECT_TRUE(ParseNumeric(good).ok()) << good;
  }
  absl::StatusOr<Numeric> n = ParseNumeric(" 0.10 ");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->lexical, "0.10");
  EXPECT_DOUBLE_EQ(n->value, 0.1);
  for (const char* bad : {"", ".", "-", "1e5", "1.2.3", "<5", "5 mg", "1,5"}) {
    EXPECT_FALSE(ParseNumeric(bad).ok()) << bad;
  }
}

TEST(CompositeTest, ReadsCxCweXpnXcn) {
  absl::StatusOr<Message> m = Message::Parse(testing::SyntheticFullOru());
  ASSERT_TRUE(m.ok());
  Cx ss = Cx::From(m->Get("PID-3").Rep(2));
  EXPECT_EQ(ss.id, "998877");
  EXPECT_EQ(ss.assigning_authority.namespace_id, "STATE");
  EXPECT_EQ(ss.assigning_authority.universal_id, "2.16.840.1.113883.4.1");
  EXPECT_EQ(ss.assigning_authority.universal_id_type, "ISO");
  EXPECT_EQ(ss.identifier_type_code, "SS");

  Cwe code = Cwe::From(m->Get("OBX-3").Rep(1));
  EXPECT_EQ(code.identifier, "2823-3");
  EXPECT_EQ(code.text, "Potassium");
  EXPECT_EQ(code.coding_system, "LN");
  Cwe units = Cwe::From(m->Get("OBX-6").Rep(1));
  EXPECT_EQ(units.coding_system, "UCUM");

  Xpn name = Xpn::From(m->Get("PID-5").Rep(1));
  EXPECT_EQ(name.family, "Testperson");
  EXPECT_EQ(name.given, "Alex");
  EXPECT_EQ(name.middle, "Q");
  EXPECT_EQ(name.suffix, "Jr");
  EXPECT_EQ(name.name_type, "L");

  Xcn doctor = Xcn::From(m->Get("OBR-16").Rep(1));
  EXPECT_EQ(doctor.id, "1234567890");
  EXPECT_EQ(doctor.family, "Welby");
  EXPECT_EQ(doctor.prefix, "Dr");
  EXPECT_EQ(doctor.assigning_authority.namespace_id, "NPI");
  EXPECT_EQ(doctor.assigning_authority.universal_id, "2.16.840.1.113883.4.6");
  EXPECT_EQ(doctor.identifier_type_code, "NPI");

  Ei placer = Ei::From(m->Get("OBR-2").Rep(1));
  EXPECT_EQ(placer.entity_identifier, "PL-100");
  EXPECT_EQ(placer.assigning_authority.namespace_id, "MPS_PMS");
}

}  // namespace
}  // namespace bridge::hl7
