// libFuzzer target for the mapping: any bytes in. Whatever parses as an HL7
// message and is an ORU^R01 must convert without crashing, and everything it
// returns must be valid UTF-8 JSON: the Bundle, every stored resource and the
// unmapped report. The same bytes are also offered to FromServiceRequest
// (FHIR JSON -> order); an order it accepts must build an ORM that parses
// back to the same tests and placer number.
// Link: bridge_v2_to_fhir bridge_fhir_to_v2 (which bring bridge_hl7,
// bridge_fhir, absl, OpenSSL::Crypto, RapidJSON headers).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rapidjson/document.h"

#include "mapping/fhir_to_v2/orm_builder.h"
#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"

namespace {

void CheckAt(bool condition, int line) {
  if (!condition) {
    std::fprintf(stderr, "v2_to_fhir_fuzz: check at line %d failed\n", line);
    std::abort();
  }
}
#define Check(condition) CheckAt((condition), __LINE__)

bool IsValidJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
  return !d.HasParseError();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bridge;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<hl7::Message> message = hl7::Message::Parse(bytes);
  if (message.ok()) {
    v2_to_fhir::ConvertOptions options;
    options.source_message_id = "fuzz";
    absl::StatusOr<v2_to_fhir::Conversion> c = v2_to_fhir::ConvertOru(*message, options);
    if (c.ok()) {
      Check(IsValidJson(c->bundle_json));
      for (const v2_to_fhir::ResourceRecord& r : c->domain.resources) Check(IsValidJson(r.json));
      Check(IsValidJson(c->report.ToJson()));
      // Deterministic: the same message gives the same Bundle.
      absl::StatusOr<v2_to_fhir::Conversion> again = v2_to_fhir::ConvertOru(*message, options);
      Check(again.ok() && again->bundle_json == c->bundle_json);
    }
  }

  absl::StatusOr<fhir_to_v2::OrderRequest> order = fhir_to_v2::FromServiceRequest(bytes);
  if (order.ok()) {
    fhir_to_v2::OrmOptions options;
    options.control_id = "FUZZ1";
    absl::StatusOr<std::string> er7 = fhir_to_v2::BuildOrm(*order, options);
    if (er7.ok()) {
      absl::StatusOr<hl7::Message> back = hl7::Message::Parse(*er7);
      Check(back.ok());
      absl::StatusOr<fhir_to_v2::OrderRequest> parsed = fhir_to_v2::ParseOrder(*back);
      Check(parsed.ok());
      Check(parsed->test_codes.size() == order->test_codes.size());
      Check(parsed->placer_order_number == order->placer_order_number);
    }
  }
  return 0;
}
