#include "api/cli/parse_command.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "api/cli/cli_support.h"
#include "api/control_id.h"
#include "mapping/hl7/ack.h"
#include "mapping/hl7/batch.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/json.h"
#include "mapping/hl7/message.h"

namespace bridge::api {
namespace {

std::string NowAsDtm() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%d%H%M%S+0000", &utc);
  return text;
}

void PrintSegmentsOnLines(std::string_view er7, std::ostream& out) {
  for (char c : er7) out << (c == '\r' ? '\n' : c);
}

}  // namespace

int RunParse(const std::string& path, std::ostream& out, std::ostream& err) {
  std::string bytes;
  if (!ReadInput("parse", path, &bytes, err)) return 1;
  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(bytes);
  if (!message.ok()) {
    err << "lab-bridge parse: " << path << ": " << message.status().message()
        << DescribeHl7Location(message.status()) << "\n";
    return 1;
  }
  out << hl7::MessageToJson(*message) << "\n";
  return 0;
}

int RunParseAck(const std::string& path, const ParseCommandOptions& options, std::ostream& out,
                std::ostream& err) {
  std::string bytes;
  if (!ReadInput("parse", path, &bytes, err)) return 1;
  ControlIdGenerator ids;
  hl7::AckSpec spec{.application = options.sending_application,
                    .facility = options.sending_facility,
                    .control_id = ids.Next(),
                    .timestamp = NowAsDtm()};
  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(bytes);
  if (!message.ok()) {
    PrintSegmentsOnLines(hl7::BuildAck(nullptr, bytes, message.status(), spec), out);
    return 0;
  }
  absl::Status outcome = hl7::ValidateHeader(*message, {});
  PrintSegmentsOnLines(hl7::BuildAck(&*message, message->raw(), outcome, spec), out);
  return 0;
}

int RunParseCheck(const std::vector<std::string>& paths, std::ostream& out, std::ostream& err) {
  std::uint64_t parsed = 0;
  std::uint64_t failed = 0;
  hl7::Message message;  // reused: constant memory however long the stream
  std::vector<char> chunk(1 << 20);
  for (const std::string& path : paths) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(
        path == "-" ? stdin : std::fopen(path.c_str(), "rb"),
        path == "-" ? [](std::FILE*) { return 0; } : &std::fclose);
    if (file == nullptr) {
      err << "lab-bridge parse --check: cannot read " << path << "\n";
      ++failed;
      continue;
    }
    hl7::MessageSplitter splitter;
    auto check = [&](const hl7::SplitMessage& piece) {
      if (piece.is_stray) {
        ++failed;
        out << path << ": message " << piece.index + 1 << " at byte " << piece.offset
            << ": text that is not an HL7 message (no MSH header, or longer than the limit)\n";
        return;
      }
      absl::Status status = hl7::Message::ParseInto(piece.bytes, {}, &message);
      if (status.ok()) {
        ++parsed;
        return;
      }
      ++failed;
      out << path << ": message " << piece.index + 1 << " at byte " << piece.offset << ": "
          << status.message() << DescribeHl7Location(status) << "\n";
    };
    std::size_t n;
    while ((n = std::fread(chunk.data(), 1, chunk.size(), file.get())) > 0) {
      splitter.Feed(std::string_view(chunk.data(), n), check);
    }
    splitter.Finish(check);
  }
  out << "checked " << parsed + failed << " messages: " << parsed << " parsed, " << failed
      << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace bridge::api
