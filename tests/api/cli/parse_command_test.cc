#include "api/cli/parse_command.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

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

// A small message with every shape the JSON has to show: a repetition
// (PID-3), components (PID-5, MSH-9), a subcomponent (OBX-3.2), an explicit
// null (PID-7 `""`, JSON null) next to an empty field (PID-6, ""), and an
// escape (OBX-5 `\T\`, printed unescaped).
const char kShapes[] =
    "MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|J1|P|2.5.1\r"
    "PID|1||123~456||Doe^Jane||\"\"|F\r"
    "OBX|1|CWE|A^B&C^LN||x \\T\\ y\r";

// Fields are a string (or null) when not split, else repetitions, each a list
// of components, each a string or a list of subcomponents.
const char kShapesJson[] =
    R"({"segments":[)"
    R"({"name":"MSH","fields":["|","^~\\&","LIS","LAB","PMS","FAC","20260101","",)"
    R"([["ORU","R01"]],"J1","P","2.5.1"]},)"
    R"({"name":"PID","fields":["1","",[["123"],["456"]],"",[["Doe","Jane"]],"",null,"F"]},)"
    R"({"name":"OBX","fields":["1","CWE",[["A",["B","C"],"LN"]],"","x & y"]}]})";

// The output parsed and written back compactly, so the comparison is of the
// whole structure, not of the indentation.
std::string Canonical(const std::string& json) {
  rapidjson::Document document;
  document.Parse(json.data(), json.size());
  if (document.HasParseError()) {
    return std::string("invalid JSON: ") + rapidjson::GetParseError_En(document.GetParseError());
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  document.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

TEST(ParseCommandTest, JsonShowsRepetitionsComponentsSubcomponentsNullsAndUnescapedText) {
  TempDir dir;
  std::ostringstream out, err;
  EXPECT_EQ(RunParse(WriteFile(dir, "shapes.hl7", kShapes), out, err), 0) << err.str();
  EXPECT_TRUE(err.str().empty()) << err.str();
  EXPECT_EQ(Canonical(out.str()), kShapesJson) << out.str();
}

// `lab-bridge parse -` reads the message from stdin: run the real binary, as
// a user would in a pipe, and expect the same JSON and exit code 0; bad input
// on stdin is one line on stderr and exit code 1.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadAll(int fd) {
  std::string text;
  std::array<char, 4096> buffer;
  ssize_t n;
  while ((n = read(fd, buffer.data(), buffer.size())) > 0) text.append(buffer.data(), n);
  return text;
}

RunResult RunBinaryWithStdin(const std::vector<std::string>& args, const std::string& input) {
  const std::string binary = (bridge::testing::BinaryDir() / "lab-bridge").string();
  int in[2], out[2], err[2];
  RunResult result;
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) return result;
  pid_t pid = fork();
  if (pid < 0) return result;
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  signal(SIGPIPE, SIG_IGN);
  // The inputs are small: they fit the pipe, so writing before reading
  // cannot deadlock.
  if (write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    ADD_FAILURE() << "short write to the child's stdin";
  }
  close(in[1]);
  result.out = ReadAll(out[0]);
  result.err = ReadAll(err[0]);
  close(out[0]);
  close(err[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

TEST(ParseCommandTest, DashReadsTheMessageFromStdin) {
  RunResult ok = RunBinaryWithStdin({"parse", "-"}, kShapes);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(Canonical(ok.out), kShapesJson) << ok.out;
  EXPECT_TRUE(ok.err.empty()) << ok.err;

  RunResult bad =
      RunBinaryWithStdin({"parse", "-"}, "MSH|^~\\&|A|B|C|D|1||ORU^R01|X1|P|2.5.1\rbroken\r");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(bad.out.empty()) << bad.out;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("segment 2"), std::string::npos) << bad.err;
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
