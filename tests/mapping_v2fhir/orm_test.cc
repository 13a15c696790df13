// Orders -> ORM^O01 / OML^O21: golden files from FHIR ServiceRequests,
// parse-back round trips with the codec, escaping, validation, and the link
// from a built order's placer number to the ORU that echoes it.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"
#include "tests/mapping_v2fhir/test_util.h"
#include "tests/support/test_paths.h"

namespace bridge::fhir_to_v2 {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

OrmOptions FixedOptions() {
  OrmOptions o;
  o.receiving_application = "LIS";
  o.receiving_facility = "LAB";
  o.control_id = "CTRL0001";
  o.timestamp = absl::FromUnixSeconds(1715005812);  // 2024-05-06T14:30:12Z
  o.utc_offset_minutes = -300;
  return o;
}

OrderRequest SampleOrder() {
  OrderRequest order;
  order.patient_id = "12345";
  order.demographics = PatientDemographics{"Doe", "Jane", "", "1990-03-15", "F", "555-0100"};
  order.encounter_id = "ENC-1";
  order.test_codes = {{"CBC", "Complete Blood Count", "L", "57021-8", "CBC panel", "LN"}};
  order.ordering_provider = {"1234567890", "Smith", "John", "NPI"};
  order.priority = "S";
  order.placer_order_number = "ORD001";
  order.note = "Fasting since 22:00\nline two";
  return order;
}

hl7::Message ParseOrDie(const std::string& er7) {
  absl::StatusOr<hl7::Message> m = hl7::Message::Parse(er7);
  EXPECT_TRUE(m.ok()) << m.status() << "\n" << er7;
  return m.ok() ? *std::move(m) : hl7::Message();
}

std::vector<fs::path> GoldenCases() {
  return bridge::testing::FilesWithSuffix(bridge::testing::SourceDir() / "tests/golden/fhir_to_v2",
                                          ".json");
}

class FhirToV2GoldenTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(FhirToV2GoldenTest, MatchesExpectedEr7) {
  const fs::path input = GetParam();
  absl::StatusOr<OrderRequest> order = FromServiceRequest(bridge::testing::ReadFileOrDie(input));
  ASSERT_TRUE(order.ok()) << order.status();
  OrmOptions options = FixedOptions();
  if (input.stem().string().find("oml") != std::string::npos) {
    options.flavor = OrmOptions::Flavor::kOmlO21;
  }
  absl::StatusOr<std::string> er7 = BuildOrm(*order, options);
  ASSERT_TRUE(er7.ok()) << er7.status();
  const fs::path expected = input.parent_path() / (input.stem().string() + ".hl7");
  if (std::getenv("BRIDGE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(expected, std::ios::binary) << *er7;
    GTEST_SKIP() << "rewrote " << expected;
  }
  EXPECT_EQ(*er7, bridge::testing::ReadFileOrDie(expected));
  // And it parses back to the same order.
  absl::StatusOr<OrderRequest> back = ParseOrder(ParseOrDie(*er7));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->patient_id, order->patient_id);
  EXPECT_EQ(back->test_codes, order->test_codes);
  EXPECT_EQ(back->placer_order_number, order->placer_order_number);
  EXPECT_EQ(back->order_control, order->order_control);
  EXPECT_EQ(back->priority, order->priority);
  EXPECT_EQ(back->note, order->note);
}

INSTANTIATE_TEST_SUITE_P(Golden, FhirToV2GoldenTest, ::testing::ValuesIn(GoldenCases()),
                         [](const ::testing::TestParamInfo<fs::path>& info) {
                           return info.param.stem().string();
                         });

TEST(BuildOrmTest, RoundTripsThroughTheCodec) {
  for (OrmOptions::Flavor flavor : {OrmOptions::Flavor::kOrmO01, OrmOptions::Flavor::kOmlO21}) {
    OrmOptions options = FixedOptions();
    options.flavor = flavor;
    const OrderRequest order = SampleOrder();
    absl::StatusOr<std::string> er7 = BuildOrm(order, options);
    ASSERT_TRUE(er7.ok()) << er7.status();
    const hl7::Message m = ParseOrDie(*er7);
    EXPECT_EQ(m.control_id(), "CTRL0001");
    EXPECT_EQ(m.version(), "2.5.1");
    absl::StatusOr<OrderRequest> back = ParseOrder(m);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, order) << *er7;
  }
}

TEST(BuildOrmTest, OrmAndOmlShapes) {
  OrmOptions options = FixedOptions();
  absl::StatusOr<std::string> orm = BuildOrm(SampleOrder(), options);
  ASSERT_TRUE(orm.ok());
  const hl7::Message m = ParseOrDie(*orm);
  EXPECT_EQ(m.Get("MSH-9").encoded(), "ORM^O01^ORM_O01");
  EXPECT_EQ(m.Get("MSH-7").value(), "20240506093012-0500");
  EXPECT_EQ(m.Get("PID-3").encoded(), "12345^^^MPS_PMS^MR");
  EXPECT_EQ(m.Get("PV1-19").value(), "ENC-1");
  EXPECT_EQ(m.Get("ORC-1").value(), "NW");
  EXPECT_EQ(m.Get("ORC-2").encoded(), "ORD001^MPS_PMS");
  EXPECT_EQ(m.Get("OBR-2").encoded(), "ORD001^MPS_PMS");
  EXPECT_EQ(m.Get("OBR-4").encoded(), "CBC^Complete Blood Count^L^57021-8^CBC panel^LN");
  EXPECT_EQ(m.Get("OBR-5").value(), "S");
  EXPECT_EQ(m.Get("ORC-7-6").value(), "S");
  EXPECT_EQ(m.Get("OBR-27-6").value(), "S");
  EXPECT_EQ(m.Get("ORC-12-9-1").value(), "NPI");
  EXPECT_EQ(m.Get("OBR-25").value(), "");  // never filled from the order (MAPPING 9.9)
  EXPECT_FALSE(m.Segment("TQ1").has_value());

  options.flavor = OrmOptions::Flavor::kOmlO21;
  absl::StatusOr<std::string> oml = BuildOrm(SampleOrder(), options);
  ASSERT_TRUE(oml.ok());
  const hl7::Message o = ParseOrDie(*oml);
  EXPECT_EQ(o.Get("MSH-9").encoded(), "OML^O21^OML_O21");
  EXPECT_EQ(o.Get("TQ1-9-1").value(), "S");

  options.flavor = OrmOptions::Flavor::kOrmO01;
  options.version = "2.3";
  absl::StatusOr<std::string> old = BuildOrm(SampleOrder(), options);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(ParseOrDie(*old).Get("MSH-9").encoded(), "ORM^O01");
}

TEST(BuildOrmTest, OneOrcObrPerTestWithStablePlacerNumbers) {
  OrderRequest order = SampleOrder();
  order.test_codes.push_back({"BMP", "Basic metabolic panel", "L", "", "", ""});
  absl::StatusOr<std::string> er7 = BuildOrm(order, FixedOptions());
  ASSERT_TRUE(er7.ok());
  const hl7::Message m = ParseOrDie(*er7);
  EXPECT_EQ(m.Get("OBR(1)-2-1").value(), "ORD001-1");
  EXPECT_EQ(m.Get("OBR(2)-2-1").value(), "ORD001-2");
  EXPECT_EQ(m.Get("ORC(2)-2-1").value(), "ORD001-2");
  EXPECT_EQ(m.Get("ORC(2)-4-1").value(), "ORD001");  // placer group
  EXPECT_EQ(m.Get("OBR(2)-1").value(), "2");
  EXPECT_EQ(PlacerNumberFor(order, 1), "ORD001-2");
  // Same input, same bytes.
  EXPECT_EQ(*er7, *BuildOrm(order, FixedOptions()));
  absl::StatusOr<OrderRequest> back = ParseOrder(m);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, order);
}

TEST(BuildOrmTest, EscapesEveryValue) {
  OrderRequest order = SampleOrder();
  order.demographics->family_name = "O'Brien|Smith^Jr";
  order.placer_order_number = "A&B~C";
  order.note = "x|y^z&w~v\\u\nnext";
  absl::StatusOr<std::string> er7 = BuildOrm(order, FixedOptions());
  ASSERT_TRUE(er7.ok());
  EXPECT_THAT(*er7, HasSubstr("O'Brien\\F\\Smith\\S\\Jr"));
  EXPECT_THAT(*er7, HasSubstr("x\\F\\y\\S\\z\\T\\w\\R\\v\\E\\u\\.br\\next"));
  absl::StatusOr<OrderRequest> back = ParseOrder(ParseOrDie(*er7));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, order);
}

TEST(BuildOrmTest, CancelCarriesTheFillerNumber) {
  OrderRequest order = SampleOrder();
  order.order_control = "CA";
  order.filler_order_number = "LIS-42";
  absl::StatusOr<std::string> er7 = BuildOrm(order, FixedOptions());
  ASSERT_TRUE(er7.ok());
  const hl7::Message m = ParseOrDie(*er7);
  EXPECT_EQ(m.Get("ORC-1").value(), "CA");
  EXPECT_EQ(m.Get("ORC-3").value(), "LIS-42");
  EXPECT_EQ(m.Get("OBR-3").value(), "LIS-42");
}

TEST(BuildOrmTest, RefusesOrdersThatCannotBeSent) {
  auto fails = [](OrderRequest order, OrmOptions options) {
    return BuildOrm(order, options).status().code() == absl::StatusCode::kInvalidArgument;
  };
  OrderRequest order = SampleOrder();
  OrmOptions options = FixedOptions();
  EXPECT_TRUE(BuildOrm(order, options).ok());
  options.control_id = std::string(21, 'X');
  EXPECT_TRUE(fails(order, options));
  options.control_id = "";
  EXPECT_TRUE(fails(order, options));
  options = FixedOptions();
  OrderRequest bad = order;
  bad.patient_id.clear();
  EXPECT_TRUE(fails(bad, options));
  bad = order;
  bad.test_codes.clear();
  EXPECT_TRUE(fails(bad, options));
  bad = order;
  bad.priority = "U";  // not in table 0485 (MAPPING 9.9 pitfall)
  EXPECT_TRUE(fails(bad, options));
  bad = order;
  bad.order_control = "XO";
  EXPECT_TRUE(fails(bad, options));
  bad = order;
  bad.test_codes[0].system = "http://loinc.org";  // never a URI in OBR-4.3
  EXPECT_TRUE(fails(bad, options));
  bad = order;
  bad.placer_order_number.clear();
  EXPECT_TRUE(fails(bad, options));
  options.flavor = OrmOptions::Flavor::kOmlO21;
  options.version = "2.3";
  EXPECT_TRUE(fails(order, options));
}

TEST(BuildOrmTest, PlacerNumberEchoedInOruLinksTheResultToTheOrder) {
  const OrderRequest order = SampleOrder();
  absl::StatusOr<std::string> er7 = BuildOrm(order, FixedOptions());
  ASSERT_TRUE(er7.ok());
  const hl7::Message orm = ParseOrDie(*er7);
  // The LIS answers with an ORU that echoes ORC-2/OBR-2 as it was sent.
  const std::string oru =
      "MSH|^~\\&|LIS|LAB|LAB_BRIDGE|MPS_PMS|20240506120000-0500||ORU^R01^ORU_R01|R-1|P|2.5.1\r"
      "PID|1||12345^^^MPS_PMS^MR||Doe^Jane\r"
      "ORC|RE|" +
      std::string(orm.Get("ORC-2").encoded()) +
      "|F-9^LAB\r"
      "OBR|1|" +
      std::string(orm.Get("OBR-2").encoded()) + "|F-9^LAB|" +
      std::string(orm.Get("OBR-4").encoded()) +
      "|||20240506100000-0500||||||||||||||||||F\r"
      "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F\r";
  absl::StatusOr<v2_to_fhir::Conversion> c =
      v2_to_fhir::ConvertOruText(oru, v2_to_fhir::testing::GoldenOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->domain.orders.size(), 1u);
  EXPECT_EQ(c->domain.orders[0].placer_order_number, PlacerNumberFor(order, 0));
  EXPECT_EQ(c->domain.results[0].placer_order_number, order.placer_order_number);
  // The ServiceRequest's conditional create matches the order we placed.
  EXPECT_THAT(c->bundle_json, HasSubstr("\"ifNoneExist\":\"identifier=https%3A%2F%2Flab-bridge."
                                        "local%2Ffhir%2Fsid%2FMPS_PMS|ORD001\""));
  // An ORU that echoes the bare number (no namespace) links the same way.
  std::string bare = oru;
  bare.replace(bare.find("ORD001^MPS_PMS"), 14, "ORD001");
  bare.replace(bare.find("ORD001^MPS_PMS"), 14, "ORD001");
  absl::StatusOr<v2_to_fhir::Conversion> c2 =
      v2_to_fhir::ConvertOruText(bare, v2_to_fhir::testing::GoldenOptions());
  ASSERT_TRUE(c2.ok());
  EXPECT_THAT(c2->bundle_json, HasSubstr("\"ifNoneExist\":\"identifier=https%3A%2F%2Flab-bridge."
                                         "local%2Ffhir%2Fsid%2FMPS_PMS|ORD001\""));
}

TEST(FromServiceRequestTest, RejectsWhatCannotBecomeAnOrder) {
  EXPECT_FALSE(FromServiceRequest("not json").ok());
  EXPECT_FALSE(FromServiceRequest("[]").ok());
  EXPECT_FALSE(FromServiceRequest(R"({"resourceType":"Patient"})").ok());
  // Wrong JSON types never crash.
  EXPECT_FALSE(
      FromServiceRequest(
          R"({"resourceType":"ServiceRequest","status":5,"code":"x","subject":[],"identifier":{}})")
          .ok());
  EXPECT_FALSE(
      FromServiceRequest(
          R"({"resourceType":"ServiceRequest","id":"a","status":"active","code":{"text":"x"}})")
          .ok());
  EXPECT_FALSE(
      FromServiceRequest(
          R"({"resourceType":"ServiceRequest","id":"a","status":"completed","code":{"coding":[{"code":"x"}]},"subject":{"identifier":{"value":"1"}}})")
          .ok());
  absl::StatusOr<OrderRequest> ok = FromServiceRequest(
      R"({"resourceType":"ServiceRequest","id":"a","status":"active","code":{"coding":[{"code":"x"}]},"subject":{"identifier":{"value":"1"}}})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->patient_id, "1");
  EXPECT_EQ(ok->placer_order_number, "a");
  EXPECT_EQ(ok->test_codes[0].system, "L");
}

}  // namespace
}  // namespace bridge::fhir_to_v2
