#include "mapping/hl7/oru.h"

#include <cstdint>
#include <string_view>

namespace bridge::hl7 {
namespace {

// A segment id as one number, so placing a segment is one switch rather
// than a chain of string comparisons (this runs for every parsed ORU).
constexpr std::uint32_t SegmentCode(std::string_view id) {
  return id.size() != 3 ? 0
                        : static_cast<std::uint32_t>(static_cast<unsigned char>(id[0])) << 16 |
                              static_cast<std::uint32_t>(static_cast<unsigned char>(id[1])) << 8 |
                              static_cast<unsigned char>(id[2]);
}

}  // namespace

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

  // The first observation of a list makes room for several, as results
  // usually come in panels: growing 1, 2, 4, 8 moves every Observation.
  auto add_observation = [](std::vector<Observation>& list) -> Observation* {
    if (list.empty()) list.reserve(8);
    list.emplace_back();
    return &list.back();
  };
  // PRT, Z-segments and anything else: kept with the innermost open group.
  auto keep_other = [&](int i) {
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
  };

  for (int i = 1; i < message.segment_count(); ++i) {
    switch (SegmentCode(message.segment(i).name())) {
      case SegmentCode("SFT"):
        if (result != nullptr) {
          keep_other(i);
          break;
        }
        oru.sft.push_back(i);
        break;
      case SegmentCode("PID"):
        result = start_result();
        result->pid = i;
        note_target = NoteTarget::kPatient;
        break;
      case SegmentCode("PD1"):
        if (result == nullptr || order != nullptr) {
          keep_other(i);
          break;
        }
        result->pd1 = i;
        break;
      case SegmentCode("NK1"):
        if (result == nullptr || order != nullptr) {
          keep_other(i);
          break;
        }
        result->nk1.push_back(i);
        break;
      case SegmentCode("PV1"):
        if (result == nullptr || order != nullptr) {
          keep_other(i);
          break;
        }
        result->pv1 = i;
        note_target = NoteTarget::kNone;
        break;
      case SegmentCode("PV2"):
        if (result == nullptr || order != nullptr) {
          keep_other(i);
          break;
        }
        result->pv2 = i;
        break;
      case SegmentCode("ORC"):
        start_order();
        order->orc = i;
        note_target = NoteTarget::kOrder;
        break;
      case SegmentCode("OBR"):
        // An OBR right after its own ORC completes that group; otherwise it
        // starts a new ORDER_OBSERVATION (ORC is optional).
        if (order == nullptr || order->obr != -1) start_order();
        order->obr = i;
        observation = nullptr;
        specimen = nullptr;
        note_target = NoteTarget::kOrder;
        break;
      case SegmentCode("TQ1"):
      case SegmentCode("TQ2"):
        if (order == nullptr) {
          keep_other(i);
          break;
        }
        order->timing.push_back(i);
        break;
      case SegmentCode("CTD"):
        if (order == nullptr) {
          keep_other(i);
          break;
        }
        order->ctd = i;
        break;
      case SegmentCode("OBX"):
        if (order == nullptr) {
          oru.unplaced.push_back(i);
          observation = nullptr;
          note_target = NoteTarget::kNone;
          break;
        }
        observation =
            add_observation(specimen != nullptr ? specimen->observations : order->observations);
        observation->obx = i;
        note_target = NoteTarget::kObservation;
        break;
      case SegmentCode("SPM"):
        if (order == nullptr) {
          keep_other(i);
          break;
        }
        order->specimens.emplace_back();
        specimen = &order->specimens.back();
        specimen->spm = i;
        observation = nullptr;
        note_target = NoteTarget::kSpecimen;
        break;
      case SegmentCode("FT1"):
        if (order == nullptr) {
          keep_other(i);
          break;
        }
        order->ft1.push_back(i);
        break;
      case SegmentCode("CTI"):
        if (order == nullptr) {
          keep_other(i);
          break;
        }
        order->cti.push_back(i);
        break;
      case SegmentCode("NTE"):
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
        break;
      case SegmentCode("DSC"):
        oru.dsc = i;
        break;
      default:
        keep_other(i);
        break;
    }
  }
  return oru;
}

}  // namespace bridge::hl7
