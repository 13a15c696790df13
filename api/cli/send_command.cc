#include "api/cli/send_command.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"

#include "mapping/hl7/ack.h"
#include "mapping/hl7/batch.h"
#include "mapping/hl7/message.h"
#include "mllp/client.h"

namespace bridge::api {
namespace {

bool ReadAll(const std::string& path, std::string* bytes, std::ostream& err) {
  if (path == "-") {
    *bytes = std::string(std::istreambuf_iterator<char>(std::cin), {});
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "lab-bridge send: cannot read " << path << "\n";
    return false;
  }
  *bytes = std::string(std::istreambuf_iterator<char>(in), {});
  return true;
}

std::optional<hl7::AckSummary> Summarize(std::string_view reply) {
  absl::StatusOr<hl7::Message> ack = hl7::Message::Parse(reply);
  if (!ack.ok()) return std::nullopt;
  return hl7::ReadAck(*ack);
}

std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

}  // namespace

int RunSend(const SendCommandOptions& options, std::ostream& out, std::ostream& err) {
  std::vector<hl7::OwnedMessage> messages;
  for (const std::string& path : options.files) {
    std::string bytes;
    if (!ReadAll(path, &bytes, err)) return 2;
    for (hl7::OwnedMessage& m : hl7::SplitMessages(bytes)) messages.push_back(std::move(m));
  }
  absl::StatusOr<std::unique_ptr<mllp::Client>> client = mllp::Client::Create(
      options.client, [](std::string_view reply) -> std::optional<std::string> {
        std::optional<hl7::AckSummary> ack = Summarize(reply);
        if (!ack.has_value()) return std::nullopt;
        return ack->acknowledged_control_id;
      });
  if (!client.ok()) {
    err << "lab-bridge send: " << client.status().message() << "\n";
    return 2;
  }
  int failures = 0;
  for (const hl7::OwnedMessage& m : messages) {
    if (m.is_stray) {
      out << "- - not a message (" << m.bytes.size() << " bytes at offset " << m.offset
          << " before any MSH), not sent\n";
      ++failures;
      continue;
    }
    std::optional<std::string> control_id = hl7::PeekControlId(m.bytes);
    if (!control_id.has_value()) {
      out << "- - no MSH-10 (message at offset " << m.offset << "), not sent\n";
      ++failures;
      continue;
    }
    absl::StatusOr<mllp::Exchange> exchange = (*client)->SendAndAwait(m.bytes, *control_id);
    if (!exchange.ok()) {
      out << *control_id << " - " << OneLine(std::string(exchange.status().message())) << "\n";
      ++failures;
      continue;
    }
    std::optional<hl7::AckSummary> ack = Summarize(exchange->reply);
    if (!ack.has_value()) {
      out << *control_id << " - reply is not an ACK\n";
      ++failures;
      continue;
    }
    out << *control_id << " " << ack->code;
    if (!ack->error_text.empty()) out << " " << OneLine(ack->error_text);
    out << "\n";
    if (ack->code != "AA" && ack->code != "CA") ++failures;
  }
  out.flush();
  return failures == 0 ? 0 : 1;
}

}  // namespace bridge::api
