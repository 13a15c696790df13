// The structure of a parsed message as JSON, for `lab-bridge parse` and for
// people reading a message: segments in order, each with its fields; every
// value unescaped.
//
// Shape: {"segments":[{"name":"PID","fields":[F1, F2, ...]}, ...]} where the
// i-th entry is field i+1 and each field is
//   - a string (one repetition, one component, one subcomponent), or null for
//     the explicit HL7 null "";
//   - otherwise an array of repetitions; each repetition an array of
//     components; each component a string, null, or an array of
//     subcomponent strings.
// For MSH, fields 1 and 2 are the separator and the encoding characters.
#pragma once

#include <string>

#include "mapping/hl7/message.h"

namespace bridge::hl7 {

// `pretty` indents the output for people.
std::string MessageToJson(const Message& message, bool pretty = true);

}  // namespace bridge::hl7
