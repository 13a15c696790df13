#include "mapping/hl7/oru.h"

#include <string_view>

namespace bridge::hl7 {

OruR01 GroupOruR01(const Message& message) {
  OruR01 oru;
  PatientResult* result = nullptr;
  OrderObservation* order = nullptr;
  Observation* observation = nullptr;
  Specimen* specimen = nullptr;
  // Which group a following NTE belongs to.
  enum class NoteTarget {
    kNone,
    kPatient,
    kOrder,
    kObservation,
    kSpecimen
  } note_target = NoteTarget::kNone;

  auto start_result = [&]() -> PatientResult* {
    oru.patient_results.emplace_back();
    order = nullptr;
    observation = nullptr;
    specimen = nullptr;
    return &oru.patient_results.back();
  };
  auto ensure_result = [&] {
    if (result == nullptr) result = start_result();
  };
  auto start_order = [&] {
    ensure_result();
    result->orders.emplace_back();
    order = &result->orders.back();
    observation = nullptr;
    specimen = nullptr;
  };

  for (int i = 1; i < message.segment_count(); ++i) {
    const std::string_view name = message.segment(i).name();
    if (name == "SFT" && result == nullptr) {
      oru.sft.push_back(i);
    } else if (name == "PID") {
      result = start_result();
      result->pid = i;
      note_target = NoteTarget::kPatient;
    } else if (name == "PD1" && result != nullptr && order == nullptr) {
      result->pd1 = i;
    } else if (name == "NK1" && result != nullptr && order == nullptr) {
      result->nk1.push_back(i);
    } else if (name == "PV1" && result != nullptr && order == nullptr) {
      result->pv1 = i;
      note_target = NoteTarget::kNone;
    } else if (name == "PV2" && result != nullptr && order == nullptr) {
      result->pv2 = i;
    } else if (name == "ORC") {
      start_order();
      order->orc = i;
      note_target = NoteTarget::kOrder;
    } else if (name == "OBR") {
      // An OBR right after its own ORC completes that group; otherwise it
      // starts a new ORDER_OBSERVATION (ORC is optional).
      if (order == nullptr || order->obr != -1) start_order();
      order->obr = i;
      observation = nullptr;
      specimen = nullptr;
      note_target = NoteTarget::kOrder;
    } else if ((name == "TQ1" || name == "TQ2") && order != nullptr) {
      order->timing.push_back(i);
    } else if (name == "CTD" && order != nullptr) {
      order->ctd = i;
    } else if (name == "OBX") {
      if (order == nullptr) {
        oru.unplaced.push_back(i);
        observation = nullptr;
        note_target = NoteTarget::kNone;
        continue;
      }
      std::vector<Observation>& list =
          specimen != nullptr ? specimen->observations : order->observations;
      list.emplace_back();
      observation = &list.back();
      observation->obx = i;
      note_target = NoteTarget::kObservation;
    } else if (name == "SPM" && order != nullptr) {
      order->specimens.emplace_back();
      specimen = &order->specimens.back();
      specimen->spm = i;
      observation = nullptr;
      note_target = NoteTarget::kSpecimen;
    } else if (name == "FT1" && order != nullptr) {
      order->ft1.push_back(i);
    } else if (name == "CTI" && order != nullptr) {
      order->cti.push_back(i);
    } else if (name == "NTE") {
      switch (note_target) {
        case NoteTarget::kPatient:
          result->patient_notes.push_back(i);
          break;
        case NoteTarget::kOrder:
          order->notes.push_back(i);
          break;
        case NoteTarget::kObservation:
          observation->notes.push_back(i);
          break;
        case NoteTarget::kSpecimen:
          specimen->notes.push_back(i);
          break;
        case NoteTarget::kNone:
          oru.unplaced.push_back(i);
          break;
      }
    } else if (name == "DSC") {
      oru.dsc = i;
    } else {
      // PRT, Z-segments and anything else: kept with the innermost open group.
      if (observation != nullptr) {
        observation->other.push_back(i);
      } else if (specimen != nullptr) {
        specimen->other.push_back(i);
      } else if (order != nullptr) {
        order->other.push_back(i);
      } else if (result != nullptr) {
        result->other.push_back(i);
      } else {
        oru.unplaced.push_back(i);
      }
    }
  }
  return oru;
}

}  // namespace bridge::hl7
