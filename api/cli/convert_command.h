// `lab-bridge convert`: the mapping on the command line.
//
//   convert FILE|-            ORU^R01 -> FHIR R4 transaction Bundle (JSON) on
//                             stdout; conversion warnings on stderr
//   convert --report FILE|-   the same, plus the unmapped-fields report (one
//                             line per segment/field not carried) on stderr
//   convert --to hl7 FILE|-   FHIR ServiceRequest (or a Bundle holding one with
//                             its Patient) -> ORM^O01 on stdout, one segment
//                             per line (LF; `send` and `parse` accept it)
//
// Each returns the process exit code (0 ok, 1 bad input) and writes errors as
// one line naming the problem and, for HL7 input, where it is.
#pragma once

#include <iosfwd>
#include <string>

namespace bridge::api {

struct ConvertCommandOptions {
  bool report = false;
  // ORM MSH-3/MSH-4, PID-3 authority and placer namespace (SENDING_* settings).
  std::string sending_application = "PMS_LAB";
  std::string sending_facility = "MPS_PMS";
};

int RunConvertToFhir(const std::string& path, const ConvertCommandOptions& options,
                     std::ostream& out, std::ostream& err);
int RunConvertToHl7(const std::string& path, const ConvertCommandOptions& options,
                    std::ostream& out, std::ostream& err);

}  // namespace bridge::api
