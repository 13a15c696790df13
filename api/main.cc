// lab-bridge: the composition root. Parses the command line, builds the
// objects each command needs, and runs it. Nothing else builds objects.
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "api/cli/parse_command.h"

int main(int argc, char** argv) {
  CLI::App app{"lab-bridge: HL7 v2 lab results in, orders out, FHIR R4 and REST for the PMS"};
  app.require_subcommand(1);

  CLI::App* parse = app.add_subcommand("parse", "Parse HL7 v2 messages (structure as JSON)");
  std::vector<std::string> parse_files;
  bool parse_ack = false;
  bool parse_check = false;
  parse->add_option("FILE", parse_files, "Message file, or - for standard input")->required();
  parse->add_flag("--ack", parse_ack, "Print the ACK/NAK lab-bridge would answer");
  parse->add_flag("--check", parse_check,
                  "Check every message in the files (batches, captures, exports)");

  CLI11_PARSE(app, argc, argv);

  if (parse->parsed()) {
    if (parse_check) return bridge::api::RunParseCheck(parse_files, std::cout, std::cerr);
    if (parse_files.size() != 1) {
      std::cerr << "lab-bridge parse: expected one FILE (use --check for several)\n";
      return 2;
    }
    if (parse_ack) {
      return bridge::api::RunParseAck(parse_files[0], {}, std::cout, std::cerr);
    }
    return bridge::api::RunParse(parse_files[0], std::cout, std::cerr);
  }
  return 0;
}
