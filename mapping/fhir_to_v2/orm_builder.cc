#include "mapping/fhir_to_v2/orm_builder.h"

#include <utility>

#include "absl/time/time.h"

#include "mapping/fhir/text.h"
#include "mapping/hl7/encoder.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/oru.h"

namespace bridge::fhir_to_v2 {
namespace {

using fhir::text::Cat;
using fhir::text::Trim;

absl::Status Invalid(std::string_view segment, int field, std::string_view message) {
  return hl7::Hl7Error(absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kRequiredFieldMissing,
                       {.segment = std::string(segment), .field = field}, message);
}

std::string Dtm(absl::Time t, int offset_minutes) {
  return absl::FormatTime("%Y%m%d%H%M%S%z", t, absl::FixedTimeZone(offset_minutes * 60));
}

std::string V2Sex(std::string_view s) {
  s = Trim(s);
  if (s == "female" || s == "F") return "F";
  if (s == "male" || s == "M") return "M";
  if (s == "other" || s == "O") return "O";
  if (s == "unknown" || s == "U") return "U";
  return "";
}

std::string V2Date(std::string_view d) {
  std::string out;
  for (char c : Trim(d)) {
    if (c >= '0' && c <= '9') out.push_back(c);
  }
  return out.size() == 8 || out.size() == 6 || out.size() == 4 ? out : "";
}

std::string IsoDate(std::string_view v2) {
  v2 = Trim(v2);
  if (v2.size() >= 8 && fhir::text::IsAllDigits(v2.substr(0, 8))) {
    return Cat(v2.substr(0, 4), "-", v2.substr(4, 2), "-", v2.substr(6, 2));
  }
  return std::string(v2);
}

bool IsOldVersion(std::string_view version) {
  return version.rfind("2.1", 0) == 0 || version.rfind("2.2", 0) == 0 ||
         version.rfind("2.3", 0) == 0;
}

void SetProvider(hl7::MessageBuilder::SegmentBuilder& seg, int field, const Provider& p) {
  if (p.id.empty() && p.family_name.empty() && p.given_name.empty()) return;
  seg.Set(field, 1, p.id).Set(field, 2, p.family_name).Set(field, 3, p.given_name);
  if (!p.id.empty() && p.id_type == "NPI") {
    seg.Set(field, 9, 1, "NPI").Set(field, 9, 2, "2.16.840.1.113883.4.6").Set(field, 9, 3, "ISO");
  }
  if (!p.family_name.empty()) seg.Set(field, 10, "L");
  if (!p.id_type.empty()) seg.Set(field, 13, p.id_type);
}

void SetCode(hl7::MessageBuilder::SegmentBuilder& seg, int field, const TestCode& t) {
  seg.Set(field, 1, t.code).Set(field, 2, t.display).Set(field, 3, t.system);
  if (!t.alternate_code.empty()) {
    seg.Set(field, 4, t.alternate_code)
        .Set(field, 5, t.alternate_display)
        .Set(field, 6, t.alternate_system);
  }
}

}  // namespace

std::string PlacerNumberFor(const OrderRequest& order, size_t index) {
  if (order.test_codes.size() <= 1) return order.placer_order_number;
  return Cat(order.placer_order_number, "-", index + 1);
}

absl::StatusOr<std::string> BuildOrm(const OrderRequest& order, const OrmOptions& options) {
  const bool oml = options.flavor == OrmOptions::Flavor::kOmlO21;
  if (Trim(order.patient_id).empty()) return Invalid("PID", 3, "order has no patient id");
  if (order.test_codes.empty()) return Invalid("OBR", 4, "order has no test code");
  for (const TestCode& t : order.test_codes) {
    if (Trim(t.code).empty()) return Invalid("OBR", 4, "test code is empty");
    if (t.system.find("://") != std::string::npos || t.system.rfind("urn:", 0) == 0) {
      return Invalid("OBR", 4, "OBR-4.3 must be a v2 coding-system name, not a URI");
    }
  }
  if (Trim(order.placer_order_number).empty()) {
    return Invalid("ORC", 2, "order has no placer order number");
  }
  // Identifiers are echoed back and matched byte for byte: no surrounding
  // spaces (the ORU side trims) and no control characters.
  for (const std::string* id : {&order.patient_id, &order.placer_order_number,
                                &order.filler_order_number, &order.encounter_id}) {
    if (*id != Trim(*id)) return Invalid("ORC", 2, "identifier with surrounding spaces");
    for (char c : *id) {
      if (static_cast<unsigned char>(c) < 0x20) {
        return Invalid("ORC", 2, "identifier with a control character");
      }
    }
  }
  if (order.priority != "R" && order.priority != "S" && order.priority != "A") {
    return Invalid("OBR", 5, "priority must be R, S or A");
  }
  if (order.order_control != "NW" && order.order_control != "CA") {
    return Invalid("ORC", 1, "order control must be NW or CA");
  }
  if (options.control_id.empty() || options.control_id.size() > 20) {
    return Invalid("MSH", 10, "control id must be 1 to 20 characters");
  }
  if (oml && IsOldVersion(options.version)) {
    return Invalid("MSH", 12, "OML^O21 needs HL7 v2.5 or later");
  }

  hl7::MessageBuilder b;
  const std::string now = Dtm(options.timestamp, options.utc_offset_minutes);
  {
    auto& msh = b.Segment("MSH");
    msh.Set(3, options.sending_application)
        .Set(4, options.sending_facility)
        .Set(5, options.receiving_application)
        .Set(6, options.receiving_facility)
        .Set(7, now)
        .Set(9, 1, oml ? "OML" : "ORM")
        .Set(9, 2, oml ? "O21" : "O01");
    if (!IsOldVersion(options.version)) msh.Set(9, 3, oml ? "OML_O21" : "ORM_O01");
    msh.Set(10, options.control_id).Set(11, options.processing_id).Set(12, options.version);
  }
  {
    auto& pid = b.Segment("PID");
    pid.Set(1, "1")
        .Set(3, 1, order.patient_id)
        .Set(3, 4, options.patient_authority)
        .Set(3, 5, "MR");
    if (order.demographics.has_value()) {
      const PatientDemographics& d = *order.demographics;
      pid.Set(5, 1, d.family_name).Set(5, 2, d.given_name).Set(5, 3, d.middle_name);
      if (!d.family_name.empty() || !d.given_name.empty()) pid.Set(5, 7, "L");
      pid.Set(7, V2Date(d.birth_date)).Set(8, V2Sex(d.sex));
      if (!d.phone.empty()) pid.Set(13, 1, d.phone);
    }
  }
  if (!Trim(order.encounter_id).empty()) {
    b.Segment("PV1").Set(1, "1").Set(2, "O").Set(19, order.encounter_id);
  }
  for (size_t i = 0; i < order.test_codes.size(); ++i) {
    const TestCode& test = order.test_codes[i];
    const std::string placer = PlacerNumberFor(order, i);
    auto& orc = b.Segment("ORC");
    orc.Set(1, order.order_control).Set(2, 1, placer).Set(2, 2, options.placer_namespace);
    if (!order.filler_order_number.empty()) orc.Set(3, 1, order.filler_order_number);
    orc.Set(4, 1, order.placer_order_number).Set(4, 2, options.placer_namespace);
    if (!oml) orc.Set(7, 4, now).Set(7, 6, order.priority);
    orc.Set(9, now);
    SetProvider(orc, 12, order.ordering_provider);
    if (oml) {
      b.Segment("TQ1").Set(1, "1").Set(7, now).Set(9, 1, order.priority).Set(9, 3, "HL70485");
    }
    auto& obr = b.Segment("OBR");
    obr.Set(1, std::to_string(i + 1)).Set(2, 1, placer).Set(2, 2, options.placer_namespace);
    if (!order.filler_order_number.empty()) obr.Set(3, 1, order.filler_order_number);
    SetCode(obr, 4, test);
    if (!oml) obr.Set(5, order.priority);
    obr.Set(6, now);
    SetProvider(obr, 16, order.ordering_provider);
    if (!oml) obr.Set(27, 4, now).Set(27, 6, order.priority);
    if (!order.note.empty()) b.Segment("NTE").Set(1, "1").Set(2, "P").Set(3, order.note);
  }
  return b.Build();
}

absl::StatusOr<OrderRequest> ParseOrder(const hl7::Message& m) {
  const std::string_view code = m.message_code();
  if (code != "ORM" && code != "OML") {
    return hl7::Hl7Error(
        absl::StatusCode::kInvalidArgument, hl7::ErrorCode::kUnsupportedMessageType,
        {.segment = "MSH", .segment_sequence = 1, .field = 9}, "not an ORM^O01 or OML^O21 message");
  }
  OrderRequest order;
  bool first_orc = true;
  bool first_obr = true;
  bool in_first_obr = false;
  for (int i = 0; i < m.segment_count(); ++i) {
    const hl7::SegmentRef seg = m.segment(i);
    const std::string_view name = seg.name();
    if (name == "PID") {
      order.patient_id = std::string(Trim(seg.Field(3).value()));
      const hl7::Element name5 = seg.Field(5);
      const std::string_view dob = Trim(seg.Field(7).value());
      if (!name5.empty() || !dob.empty() || !seg.Field(8).empty()) {
        PatientDemographics d;
        d.family_name = std::string(Trim(name5.Comp(1).value()));
        d.given_name = std::string(Trim(name5.Comp(2).value()));
        d.middle_name = std::string(Trim(name5.Comp(3).value()));
        d.birth_date = IsoDate(dob);
        d.sex = std::string(Trim(seg.Field(8).value()));
        d.phone = std::string(Trim(seg.Field(13).Comp(1).value()));
        order.demographics = d;
      }
    } else if (name == "PV1") {
      order.encounter_id = std::string(Trim(seg.Field(19).value()));
    } else if (name == "ORC" && first_orc) {
      first_orc = false;
      order.order_control = std::string(Trim(seg.Field(1).value()));
      order.placer_order_number = std::string(Trim(seg.Field(4).value()));
      if (order.placer_order_number.empty()) {
        order.placer_order_number = std::string(Trim(seg.Field(2).value()));
      }
      order.filler_order_number = std::string(Trim(seg.Field(3).value()));
      const hl7::Element p = seg.Field(12);
      order.ordering_provider.id = std::string(Trim(p.Comp(1).value()));
      order.ordering_provider.family_name = std::string(Trim(p.Comp(2).value()));
      order.ordering_provider.given_name = std::string(Trim(p.Comp(3).value()));
      order.ordering_provider.id_type = std::string(Trim(p.Comp(13).value()));
      if (const std::string_view prio = Trim(seg.Field(7).Comp(6).value()); !prio.empty()) {
        order.priority = std::string(prio);
      }
    } else if (name == "TQ1") {
      if (const std::string_view prio = Trim(seg.Field(9).value()); !prio.empty()) {
        order.priority = std::string(prio);
      }
    } else if (name == "OBR") {
      in_first_obr = first_obr;
      first_obr = false;
      const hl7::Element c = seg.Field(4);
      TestCode t;
      t.code = std::string(Trim(c.Comp(1).value()));
      t.display = std::string(Trim(c.Comp(2).value()));
      t.system = std::string(Trim(c.Comp(3).value()));
      t.alternate_code = std::string(Trim(c.Comp(4).value()));
      t.alternate_display = std::string(Trim(c.Comp(5).value()));
      t.alternate_system = std::string(Trim(c.Comp(6).value()));
      order.test_codes.push_back(std::move(t));
      if (const std::string_view prio = Trim(seg.Field(5).value()); !prio.empty()) {
        order.priority = std::string(prio);
      }
    } else if (name == "NTE" && in_first_obr && order.note.empty()) {
      order.note = std::string(seg.Field(3).value());
    }
  }
  return order;
}

absl::StatusOr<std::string> ServiceRequestToOrm(std::string_view json,
                                                const ServiceRequestOptions& sr_options,
                                                const OrmOptions& orm_options) {
  absl::StatusOr<OrderRequest> order = FromServiceRequest(json, sr_options);
  if (!order.ok()) return order.status();
  return BuildOrm(*order, orm_options);
}

}  // namespace bridge::fhir_to_v2
