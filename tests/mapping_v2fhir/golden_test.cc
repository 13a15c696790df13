// Golden files: tests/golden/v2_to_fhir/<case>.hl7 -> <case>.fhir.json (the
// Bundle, compared as JSON values) and <case>.report.txt (the unmapped-fields
// report). BRIDGE_UPDATE_GOLDEN=1 rewrites the expected files. Every Bundle
// is then validated by @medplum/core in one node process.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "rapidjson/document.h"

#include "mapping/fhir/json.h"
#include "mapping/v2_to_fhir/converter.h"
#include "tests/mapping_v2fhir/test_util.h"
#include "tests/support/test_paths.h"

namespace bridge::v2_to_fhir {
namespace {

namespace fs = std::filesystem;
using bridge::testing::FilesWithSuffix;
using bridge::testing::ReadFileOrDie;
using bridge::testing::SourceDir;

fs::path GoldenDir() { return SourceDir() / "tests/golden/v2_to_fhir"; }

std::vector<fs::path> GoldenCases() { return FilesWithSuffix(GoldenDir(), ".hl7"); }

fs::path WithSuffix(const fs::path& input, const std::string& suffix) {
  return input.parent_path() / (input.stem().string() + suffix);
}

class V2ToFhirGoldenTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(V2ToFhirGoldenTest, MatchesExpectedBundleAndReport) {
  const fs::path input = GetParam();
  absl::StatusOr<Conversion> c = ConvertOruText(ReadFileOrDie(input), testing::GoldenOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string pretty = fhir::PrettyJson(c->bundle_json);
  const fs::path expected_path = WithSuffix(input, ".fhir.json");
  const fs::path report_path = WithSuffix(input, ".report.txt");
  if (std::getenv("BRIDGE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(expected_path) << pretty << "\n";
    std::ofstream(report_path) << c->report.ToText();
    GTEST_SKIP() << "rewrote " << expected_path;
  }
  rapidjson::Document actual;
  actual.Parse(c->bundle_json.c_str());
  ASSERT_FALSE(actual.HasParseError());
  rapidjson::Document expected;
  const std::string expected_text = ReadFileOrDie(expected_path);
  expected.Parse(expected_text.c_str());
  ASSERT_FALSE(expected.HasParseError()) << expected_path;
  EXPECT_TRUE(actual == expected) << "expected " << expected_path << ", actual:\n" << pretty;
  EXPECT_EQ(c->report.ToText(), ReadFileOrDie(report_path));
}

INSTANTIATE_TEST_SUITE_P(Golden, V2ToFhirGoldenTest, ::testing::ValuesIn(GoldenCases()),
                         [](const ::testing::TestParamInfo<fs::path>& info) {
                           return info.param.stem().string();
                         });

TEST(V2ToFhirGoldenValidityTest, EveryGoldenBundleValidatesWithMedplum) {
  if (!testing::ValidatorAvailable()) {
    BRIDGE_PEER_MISSING("node / @medplum/core not installed");
  }
  bridge::testing::TempDir dir;
  std::vector<fs::path> files;
  for (const fs::path& input : GoldenCases()) {
    absl::StatusOr<Conversion> c = ConvertOruText(ReadFileOrDie(input), testing::GoldenOptions());
    ASSERT_TRUE(c.ok()) << input << ": " << c.status();
    const fs::path out = dir.path() / (input.stem().string() + ".json");
    std::ofstream(out) << c->bundle_json;
    files.push_back(out);
  }
  ASSERT_FALSE(files.empty());
  std::string output;
  EXPECT_EQ(testing::RunValidator(files, &output), 0) << output;
}

}  // namespace
}  // namespace bridge::v2_to_fhir
