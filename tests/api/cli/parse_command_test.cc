#include "api/cli/parse_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/test_paths.h"

namespace bridge::api {
namespace {

using bridge::testing::SourceDir;
using bridge::testing::TempDir;

std::string Fixture(const std::string& name) {
  return (SourceDir() / "tests/fixtures/hl7" / name).string();
}

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = (dir.path() / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(ParseCommandTest, PrintsTheStructureAsJson) {
  std::ostringstream out, err;
  EXPECT_EQ(RunParse(Fixture("guide_sample_oru.hl7"), out, err), 0);
  EXPECT_NE(out.str().find("\"name\": \"OBX\""), std::string::npos);
  EXPECT_NE(out.str().find("\"Potassium\""), std::string::npos);
  EXPECT_TRUE(err.str().empty());
}

TEST(ParseCommandTest, BadInputIsOneLineNamingTheProblemAndPosition) {
  TempDir dir;
  std::string path =
      WriteFile(dir, "bad.hl7", "MSH|^~\\&|A|B|C|D|1||ORU^R01|X1|P|2.5.1\rPID|1\rbroken line\r");
  std::ostringstream out, err;
  EXPECT_EQ(RunParse(path, out, err), 1);
  EXPECT_TRUE(out.str().empty());
  const std::string line = err.str();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
  EXPECT_NE(line.find("segment 3"), std::string::npos) << line;
  EXPECT_NE(line.find("byte 45"), std::string::npos) << line;
}

TEST(ParseCommandTest, MissingFileIsAnError) {
  std::ostringstream out, err;
  EXPECT_EQ(RunParse("/nonexistent/x.hl7", out, err), 1);
  EXPECT_NE(err.str().find("cannot read"), std::string::npos);
}

TEST(ParseCommandTest, AckEchoesTheControlIdAndNakNamesTheError) {
  std::ostringstream out, err;
  EXPECT_EQ(RunParseAck(Fixture("guide_sample_oru.hl7"), {}, out, err), 0);
  EXPECT_NE(out.str().find("MSA|AA|MSG001"), std::string::npos) << out.str();

  TempDir dir;
  std::ostringstream nak, nak_err;
  std::string unsupported =
      WriteFile(dir, "adt.hl7", "MSH|^~\\&|A|B|C|D|1||ADT^A01|ADT9|P|2.5.1\rPID|1\r");
  EXPECT_EQ(RunParseAck(unsupported, {}, nak, nak_err), 0);
  EXPECT_NE(nak.str().find("MSA|AR|ADT9"), std::string::npos) << nak.str();
  EXPECT_NE(nak.str().find("ERR||MSH^1^9^^1|200^Unsupported message type^HL70357|E"),
            std::string::npos)
      << nak.str();
}

TEST(ParseCommandTest, CheckCountsEveryMessageAndNamesEachFailure) {
  TempDir dir;
  const std::string good = bridge::testing::ReadFileOrDie(Fixture("guide_sample_oru.hl7"));
  std::string export_text = good + "\n" + good + "\nMSH|^~\\&|A\rnot a segment\r\n" + good;
  std::string path = WriteFile(dir, "export.hl7", export_text);
  std::string batch =
      WriteFile(dir, "batch.hl7", "FHS|^~\\&\rBHS|^~\\&\r" + good + good + "BTS|2\rFTS|1\r");
  std::string mllp = WriteFile(dir, "capture.mllp", "\x0b" + good + "\x1c\r\x0b" + good + "\x1c\r");
  std::ostringstream out, err;
  EXPECT_EQ(RunParseCheck({path, batch, mllp}, out, err), 1);
  EXPECT_NE(out.str().find("export.hl7: message 3 at byte"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("checked 8 messages: 7 parsed, 1 failed"), std::string::npos)
      << out.str();

  std::ostringstream ok_out, ok_err;
  EXPECT_EQ(RunParseCheck({batch, mllp}, ok_out, ok_err), 0);
  EXPECT_NE(ok_out.str().find("4 parsed, 0 failed"), std::string::npos);
}

}  // namespace
}  // namespace bridge::api
