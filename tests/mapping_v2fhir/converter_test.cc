// Behaviour of ConvertOru beyond the golden files: the lab domain records,
// stable ids across corrections, determinism, errors and the report.
#include "mapping/v2_to_fhir/converter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

#include "tests/mapping_v2fhir/test_util.h"
#include "tests/support/test_paths.h"

namespace bridge::v2_to_fhir {
namespace {

using ::testing::HasSubstr;

std::string Golden(const std::string& name) {
  return bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() / "tests/golden/v2_to_fhir" /
                                        (name + ".hl7"));
}

Conversion Convert(const std::string& er7,
                   const ConvertOptions& options = testing::GoldenOptions()) {
  absl::StatusOr<Conversion> c = ConvertOruText(er7, options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : Conversion{};
}

TEST(ConvertOruTest, GuideSampleGivesTheLabResultsRows) {
  const Conversion c = Convert(Golden("guide_sample_oru"));
  ASSERT_EQ(c.domain.patients.size(), 1u);
  const PatientRecord& p = c.domain.patients[0];
  EXPECT_EQ(p.pms_id, "12345");
  EXPECT_EQ(p.family_name, "Doe");
  EXPECT_EQ(p.given_name, "Jane");
  EXPECT_EQ(p.birth_date, "1990-03-15");
  EXPECT_EQ(p.sex, "F");
  EXPECT_EQ(p.gender, "female");
  ASSERT_EQ(c.domain.orders.size(), 1u);
  EXPECT_EQ(c.domain.orders[0].placer_order_number, "ORD001");
  EXPECT_EQ(c.domain.orders[0].filler_order_number, "FIL001");
  ASSERT_EQ(c.domain.results.size(), 5u);
  const ResultRecord& wbc = c.domain.results[0];
  EXPECT_EQ(wbc.test_code, "WBC");
  EXPECT_EQ(wbc.test_name, "White Blood Cell Count");
  EXPECT_EQ(wbc.value, "7.5");
  EXPECT_EQ(wbc.units, "10*3/uL");
  EXPECT_EQ(wbc.reference_range, "4.5-11.0");
  EXPECT_EQ(wbc.abnormal_flag, "N");
  EXPECT_EQ(wbc.result_status, "F");  // read from OBX-10 (docs/mapping-decisions.md D1)
  EXPECT_EQ(wbc.sending_facility, "REFERENCE_LAB");
  EXPECT_EQ(wbc.placer_order_number, "ORD001");
  EXPECT_EQ(wbc.filler_order_number, "FIL001");
  EXPECT_EQ(wbc.value_type, "NM");
  EXPECT_EQ(wbc.segment, "OBX(1)");
  EXPECT_FALSE(wbc.critical);
  const ResultRecord& k = c.domain.results[4];
  EXPECT_EQ(k.test_code, "K");
  EXPECT_EQ(k.abnormal_flag, "HH");
  EXPECT_TRUE(k.critical);
  EXPECT_FALSE(k.observation_id.empty());
  EXPECT_FALSE(k.observation_date.empty());
}

TEST(ConvertOruTest, PmsIdComesFromTheConfiguredAuthority) {
  const std::string msg =
      "MSH|^~\\&|L|LAB|B|F|20260101120000||ORU^R01|X1|P|2.5.1\r"
      "PID|1||H-1^^^HOSP^MR~777^^^MPS_PMS^PI||Doe^Jo\r"
      "OBR|1|P1|F1|T^Test^L\r"
      "OBX|1|NM|T^Test^L||1||||||F\r";
  Conversion c = Convert(msg);
  ASSERT_EQ(c.domain.patients.size(), 1u);
  EXPECT_EQ(c.domain.patients[0].pms_id, "777");
  EXPECT_EQ(c.domain.patients[0].identifiers.size(), 2u);
  ConvertOptions other = testing::GoldenOptions();
  other.pms_assigning_authority = "NOPE";
  c = Convert(msg, other);
  EXPECT_EQ(c.domain.patients[0].pms_id, "H-1");  // first MR
}

TEST(ConvertOruTest, CriticalFlagsAreConfigurable) {
  const std::string msg =
      "MSH|^~\\&|L|LAB|B|F|20260101120000||ORU^R01|X2|P|2.5.1\r"
      "PID|1||1^^^MPS_PMS^MR\r"
      "OBR|1|P1|F1|T^Test^L\r"
      "OBX|1|NM|T^Test^L||1|||>||F\r"
      "OBX|2|NM|U^Test^L||1|||AA||F\r";
  Conversion c = Convert(msg);
  EXPECT_FALSE(c.domain.results[0].critical);
  EXPECT_TRUE(c.domain.results[1].critical);
  ConvertOptions options = testing::GoldenOptions();
  options.critical_flags = {">"};
  c = Convert(msg, options);
  EXPECT_TRUE(c.domain.results[0].critical);
}

TEST(ConvertOruTest, CorrectedResultKeepsTheObservationId) {
  const Conversion original = Convert(Golden("guide_sample_oru"));
  const Conversion corrected = Convert(Golden("corrected_result"));
  // Same order (placer ORD001 / filler FIL001) but the corrected message
  // names the lab's namespace explicitly, so compare against a plain copy.
  std::string plain = Golden("guide_sample_oru");
  std::string fixed = plain;
  fixed.replace(fixed.find("OBX|5|NM|K^Potassium||6.8|mEq/L|3.5-5.0|HH||F"),
                std::string("OBX|5|NM|K^Potassium||6.8|mEq/L|3.5-5.0|HH||F").size(),
                "OBX|5|NM|K^Potassium||5.2|mEq/L|3.5-5.0|H|||C");
  const Conversion c1 = Convert(plain);
  const Conversion c2 = Convert(fixed);
  ASSERT_EQ(c1.domain.results.size(), 5u);
  ASSERT_EQ(c2.domain.results.size(), 5u);
  EXPECT_EQ(c1.domain.results[4].observation_id, c2.domain.results[4].observation_id);
  EXPECT_EQ(c2.domain.results[4].result_status, "C");
  EXPECT_THAT(c2.bundle_json, HasSubstr("\"status\":\"corrected\""));
  // And the Observation's conditional PUT URL is the same.
  const auto url = [](const Conversion& c, const std::string& id) {
    for (const ResourceRecord& r : c.domain.resources) {
      if (r.id == id) return r.identifier;
    }
    return std::string();
  };
  EXPECT_EQ(url(c1, c1.domain.results[4].observation_id),
            url(c2, c2.domain.results[4].observation_id));
  EXPECT_FALSE(original.bundle_json.empty());
  EXPECT_FALSE(corrected.bundle_json.empty());
}

TEST(ConvertOruTest, SameMessageGivesByteIdenticalBundle) {
  const std::string msg = Golden("synthetic_full_oru");
  EXPECT_EQ(Convert(msg).bundle_json, Convert(msg).bundle_json);
}

TEST(ConvertOruTest, ResourcesAreIndexedForStorage) {
  const Conversion c = Convert(Golden("synthetic_full_oru"));
  int observations = 0;
  for (const ResourceRecord& r : c.domain.resources) {
    rapidjson::Document d;
    d.Parse(r.json.c_str());
    ASSERT_FALSE(d.HasParseError()) << r.type;
    ASSERT_TRUE(d.IsObject() && d.HasMember("resourceType") && d["resourceType"].IsString());
    EXPECT_EQ(std::string(d["resourceType"].GetString()), r.type);
    EXPECT_EQ(r.id.size(), 36u);
    if (r.type == "Observation") {
      ++observations;
      EXPECT_THAT(r.code, HasSubstr("http://loinc.org|"));
      EXPECT_EQ(r.category, "laboratory");
      EXPECT_FALSE(r.patient_ref.empty());
      EXPECT_FALSE(r.status.empty());
      EXPECT_FALSE(r.identifier.empty());
    }
  }
  EXPECT_EQ(observations, 5);
}

TEST(ConvertOruTest, RefusesOtherMessageTypesAndOruWithoutObr) {
  absl::StatusOr<Conversion> c =
      ConvertOruText("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5.1\rPID|1||1\r", {});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("not an ORU^R01"));
  c = ConvertOruText("MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1\rPID|1||1\r", {});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvertOruTest, ReportListsZSegmentsAndUnmappedFields) {
  const Conversion c = Convert(Golden("synthetic_full_oru"));
  std::string text = c.report.ToText();
  EXPECT_THAT(text, HasSubstr("ZPI(1): segment not mapped"));
  rapidjson::Document d;
  d.Parse(c.report.ToJson().c_str());
  ASSERT_FALSE(d.HasParseError());
  ASSERT_TRUE(d.IsArray());
  EXPECT_EQ(d.Size(), c.report.items.size());
}

TEST(ConvertOruTest, NaiveTimesUseTheSenderZone) {
  ConvertOptions options = testing::GoldenOptions();
  options.sender.utc_offset_minutes = -300;
  const Conversion c = Convert(Golden("guide_sample_oru"), options);
  EXPECT_THAT(c.bundle_json, HasSubstr("\"effectiveDateTime\":\"2026-02-21T11:00:00-05:00\""));
  EXPECT_THAT(c.bundle_json, HasSubstr("\"timestamp\":\"2026-02-21T12:00:00-05:00\""));
}

TEST(ConvertOruTest, SenderSettingsMapCodesUnitsAndAuthorities) {
  ConvertOptions options = testing::GoldenOptions();
  options.sender.code_systems["L"] = "http://lab.example/codes";
  options.sender.default_code_system = "http://lab.example/codes";
  options.sender.unit_map["mEq/L"] = "mmol/L";
  options.sender.assigning_authorities["MPS_PMS"] = "urn:oid:1.2.3.4.5.1";
  const Conversion c = Convert(Golden("guide_sample_oru"), options);
  EXPECT_THAT(c.bundle_json, HasSubstr("{\"system\":\"http://lab.example/codes\",\"code\":\"K\""));
  EXPECT_THAT(
      c.bundle_json,
      HasSubstr("\"unit\":\"mEq/L\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mmol/L\""));
  EXPECT_THAT(c.bundle_json, HasSubstr("\"system\":\"urn:oid:1.2.3.4.5.1\",\"value\":\"12345\""));
}

}  // namespace
}  // namespace bridge::v2_to_fhir

namespace bridge::v2_to_fhir {
namespace {

TEST(ConvertOruTest, SenderTimeZoneFollowsDaylightSavingTime) {
  absl::TimeZone new_york;
  if (!absl::LoadTimeZone("America/New_York", &new_york)) GTEST_SKIP() << "no tzdata";
  ConvertOptions options = testing::GoldenOptions();
  options.sender.time_zone = new_york;
  const std::string msg =
      "MSH|^~\\&|L|LAB|B|F|20260115120000||ORU^R01|TZ1|P|2.5.1\r"
      "PID|1||1^^^MPS_PMS^MR\r"
      "OBR|1|P1|F1|T^Test^L|||20260115100000\r"
      "OBX|1|NM|T^Test^L||1||||||F|||20260715100000\r"
      "OBX|2|NM|U^Test^L||1||||||F|||20260715100000+0100\r";
  const Conversion c = Convert(msg, options);
  EXPECT_THAT(c.bundle_json, HasSubstr("\"timestamp\":\"2026-01-15T12:00:00-05:00\""));
  EXPECT_THAT(c.bundle_json, HasSubstr("\"effectiveDateTime\":\"2026-07-15T10:00:00-04:00\""));
  EXPECT_THAT(c.bundle_json, HasSubstr("\"effectiveDateTime\":\"2026-01-15T10:00:00-05:00\""));
  // An explicit offset always wins.
  EXPECT_THAT(c.bundle_json, HasSubstr("\"effectiveDateTime\":\"2026-07-15T10:00:00+01:00\""));
}

// The order-status golden sends priority `s` in one order: it maps to stat
// (MAPPING 8 matches case-insensitively) but not silently.
TEST(ConvertOruTest, LowerCasePriorityIsMappedWithAWarning) {
  const Conversion c = Convert(Golden("order_status_priority"));
  EXPECT_THAT(c.warnings, ::testing::Contains(HasSubstr("OBR(9)-5: priority matched")));
  EXPECT_THAT(c.bundle_json, HasSubstr(R"("priority":"stat")"));
}

// The id Ingest passes for Provenance.entity: the audit row's key, the same
// for the same message, different for another message of the same sender.
TEST(ConvertOruTest, SourceMessageIdIsTheAuditRowKey) {
  absl::StatusOr<hl7::Message> m = hl7::Message::Parse(Golden("guide_sample_oru"));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(SourceMessageId(*m), "LAB_LIS|REFERENCE_LAB|MSG001");
  absl::StatusOr<hl7::Message> other = hl7::Message::Parse(Golden("value_types"));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(SourceMessageId(*other), "SYNTH_LIS|SYNTH_LAB|VT-0001");

  ConvertOptions options = testing::GoldenOptions();
  options.source_message_id = SourceMessageId(*m);
  const Conversion c = Convert(Golden("guide_sample_oru"), options);
  EXPECT_THAT(c.bundle_json,
              HasSubstr(R"("entity":[{"role":"source","what":{"identifier":{"system":")"
                        R"(https://lab-bridge.local/fhir/sid/hl7-message","value":")"
                        R"(LAB_LIS|REFERENCE_LAB|MSG001"})"));
}

}  // namespace
}  // namespace bridge::v2_to_fhir
