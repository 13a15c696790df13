#include "api/cli/convert_command.h"

#include <iostream>
#include <string>

#include "absl/time/clock.h"

#include "api/cli/cli_support.h"
#include "api/control_id.h"
#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"

namespace bridge::api {

int RunConvertToFhir(const std::string& path, const ConvertCommandOptions& options,
                     std::ostream& out, std::ostream& err) {
  std::string bytes;
  if (!ReadInput("convert", path, &bytes, err)) return 1;
  v2_to_fhir::ConvertOptions convert;
  convert.now = absl::Now();
  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(bytes);
  // The same Provenance.entity as the Bundle `serve` stores (MAPPING 6.1).
  if (message.ok()) convert.source_message_id = v2_to_fhir::SourceMessageId(*message);
  absl::StatusOr<v2_to_fhir::Conversion> conversion =
      message.ok() ? v2_to_fhir::ConvertOru(*message, convert)
                   : absl::StatusOr<v2_to_fhir::Conversion>(message.status());
  if (!conversion.ok()) {
    err << "lab-bridge convert: " << path << ": " << MessageOf(conversion.status())
        << DescribeHl7Location(conversion.status()) << "\n";
    return 1;
  }
  out << conversion->bundle_json << "\n";
  for (const std::string& warning : conversion->warnings) {
    err << "lab-bridge convert: warning: " << warning << "\n";
  }
  if (options.report) {
    if (conversion->report.items.empty()) {
      err << "lab-bridge convert: unmapped: nothing (every segment and field was carried)\n";
    }
    for (const v2_to_fhir::UnmappedItem& item : conversion->report.items) {
      err << "lab-bridge convert: unmapped: " << item.location << ": " << item.reason << "\n";
    }
  }
  return 0;
}

int RunConvertToHl7(const std::string& path, const ConvertCommandOptions& options,
                    std::ostream& out, std::ostream& err) {
  std::string json;
  if (!ReadInput("convert", path, &json, err)) return 1;
  fhir_to_v2::OrmOptions orm;
  orm.sending_application = options.sending_application;
  orm.sending_facility = options.sending_facility;
  orm.patient_authority = options.sending_facility;
  orm.placer_namespace = options.sending_facility;
  ControlIdGenerator control_ids;
  orm.control_id = control_ids.Next();
  orm.timestamp = absl::Now();
  absl::StatusOr<std::string> message = fhir_to_v2::ServiceRequestToOrm(json, {}, orm);
  if (!message.ok()) {
    err << "lab-bridge convert --to hl7: " << path << ": " << MessageOf(message.status()) << "\n";
    return 1;
  }
  for (char c : *message) out << (c == '\r' ? '\n' : c);
  return 0;
}

}  // namespace bridge::api
