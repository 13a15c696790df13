#include "api/cli/convert_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

using bridge::testing::SourceDir;
using bridge::testing::TempDir;

std::string Source(const std::string& relative) { return (SourceDir() / relative).string(); }

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = (dir.path() / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(ConvertCommandTest, OruBecomesATransactionBundleOnStdout) {
  std::ostringstream out, err;
  EXPECT_EQ(RunConvertToFhir(Source("tests/fixtures/hl7/guide_sample_oru.hl7"), {}, out, err), 0);
  const std::string bundle = out.str();
  EXPECT_EQ(bundle.rfind("{\"resourceType\":\"Bundle\"", 0), 0u) << bundle.substr(0, 80);
  EXPECT_NE(bundle.find("\"type\":\"transaction\""), std::string::npos);
  EXPECT_NE(bundle.find("\"resourceType\":\"DiagnosticReport\""), std::string::npos);
  EXPECT_NE(bundle.find("\"value\":6.8"), std::string::npos);
  // Provenance.entity: the source message, by the key serve files it under.
  EXPECT_NE(bundle.find(R"("role":"source")"), std::string::npos);
  EXPECT_NE(bundle.find(R"("value":"LAB_LIS|REFERENCE_LAB|MSG001")"), std::string::npos);
  EXPECT_EQ(err.str().find("unmapped:"), std::string::npos) << "report only with --report";
}

TEST(ConvertCommandTest, ReportListsWhatTheMappingDidNotCarry) {
  ConvertCommandOptions options;
  options.report = true;
  std::ostringstream out, err;
  EXPECT_EQ(
      RunConvertToFhir(Source("tests/golden/v2_to_fhir/notes_zsegs_rule_t.hl7"), options, out, err),
      0);
  EXPECT_NE(err.str().find("unmapped: Z"), std::string::npos) << err.str();
  EXPECT_NE(out.str().find("\"resourceType\":\"Bundle\""), std::string::npos);
}

TEST(ConvertCommandTest, AnythingButAnOruIsOneLineNamingTheProblem) {
  TempDir dir;
  const std::string adt = WriteFile(
      dir, "adt.hl7", "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5.1\rPID|1||9^^^H^MR\r");
  std::ostringstream out, err;
  EXPECT_EQ(RunConvertToFhir(adt, {}, out, err), 1);
  EXPECT_TRUE(out.str().empty());
  const std::string line = err.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_NE(line.find("not an ORU^R01 message (ADT^A01)"), std::string::npos) << line;

  std::ostringstream missing_out, missing_err;
  EXPECT_EQ(RunConvertToFhir("/nonexistent/x.hl7", {}, missing_out, missing_err), 1);
  EXPECT_NE(missing_err.str().find("cannot read /nonexistent/x.hl7"), std::string::npos);
}

TEST(ConvertCommandTest, ServiceRequestBecomesAnOrmWithOurIdentity) {
  ConvertCommandOptions options;
  options.sending_application = "MY_PMS";
  options.sending_facility = "CLINIC9";
  std::ostringstream out, err;
  EXPECT_EQ(
      RunConvertToHl7(Source("tests/golden/fhir_to_v2/sr_bundle_stat.json"), options, out, err), 0)
      << err.str();
  const std::string orm = out.str();
  EXPECT_EQ(orm.rfind("MSH|^~\\&|MY_PMS|CLINIC9|", 0), 0u) << orm;
  EXPECT_NE(orm.find("|ORM^O01^ORM_O01|"), std::string::npos) << orm;
  EXPECT_NE(orm.find("\nPID|1||555^^^CLINIC9^MR"), std::string::npos) << orm;
  EXPECT_NE(orm.find("\nOBR|1|"), std::string::npos) << orm;
  EXPECT_EQ(orm.find('\r'), std::string::npos) << "one segment per line";
}

TEST(ConvertCommandTest, AServiceRequestWithoutPatientIsRefusedByName) {
  TempDir dir;
  const std::string json =
      WriteFile(dir, "sr.json",
                R"({"resourceType":"ServiceRequest","id":"sr1","status":"active","intent":"order",)"
                R"("code":{"coding":[{"code":"CBC"}]}})");
  std::ostringstream out, err;
  EXPECT_EQ(RunConvertToHl7(json, {}, out, err), 1);
  EXPECT_TRUE(out.str().empty());
  EXPECT_NE(err.str().find("atient"), std::string::npos) << err.str();

  std::ostringstream bad_out, bad_err;
  EXPECT_EQ(RunConvertToHl7(WriteFile(dir, "bad.json", "{not json"), {}, bad_out, bad_err), 1);
  const std::string bad_line = bad_err.str();
  EXPECT_EQ(std::count(bad_line.begin(), bad_line.end(), '\n'), 1) << bad_line;
}

}  // namespace
}  // namespace bridge::api
