#include "api/cli/cli_support.h"

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "mapping/hl7/error.h"

namespace bridge::api {

bool ReadInput(const std::string& command, const std::string& path, std::string* bytes,
               std::ostream& err) {
  std::ostringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      err << "lab-bridge " << command << ": cannot read " << path << "\n";
      return false;
    }
    buffer << in.rdbuf();
  }
  *bytes = std::move(buffer).str();
  return true;
}

std::string DescribeHl7Location(const absl::Status& status) {
  std::optional<hl7::Hl7ErrorDetail> detail = hl7::GetHl7Error(status);
  if (!detail.has_value()) return "";
  const hl7::ErrorLocation& at = detail->location;
  std::string where;
  auto add = [&](const std::string& part) { where += (where.empty() ? "" : ", ") + part; };
  if (at.segment_sequence > 0) {
    add("segment " + std::to_string(at.segment_sequence) +
        (at.segment.empty() ? "" : " (" + at.segment + ")"));
  }
  if (at.field > 0) add("field " + at.ToString());
  if (at.byte_offset >= 0) add("byte " + std::to_string(at.byte_offset));
  add("HL7 error " + std::to_string(static_cast<int>(detail->code)));
  return " [" + where + "]";
}

std::string MessageOf(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

}  // namespace bridge::api
