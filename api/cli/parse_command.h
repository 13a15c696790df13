// `lab-bridge parse`: the codec on the command line.
//
//   parse FILE|-          the message's structure as JSON on stdout
//   parse --ack FILE|-    the ACK or NAK lab-bridge would answer
//   parse --check FILE... every message in the files (a single message, an
//                         FHS/BHS batch, an MLLP capture or an export with one
//                         message after another), streamed in constant memory
//
// Each returns the process exit code (0 ok, 1 bad input) and writes errors as
// one line naming the problem and where it is.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace bridge::api {

struct ParseCommandOptions {
  std::string sending_application = "LAB_BRIDGE";
  std::string sending_facility = "MPS_PMS";
};

int RunParse(const std::string& path, std::ostream& out, std::ostream& err);
int RunParseAck(const std::string& path, const ParseCommandOptions& options, std::ostream& out,
                std::ostream& err);
int RunParseCheck(const std::vector<std::string>& paths, std::ostream& out, std::ostream& err);

}  // namespace bridge::api
