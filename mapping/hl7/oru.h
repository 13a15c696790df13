// ORU^R01 grouping: which segments belong to which PATIENT_RESULT, PATIENT,
// ORDER_OBSERVATION, OBSERVATION and SPECIMEN group, decided by position as
// in the v2.5.1 abstract message (earlier versions are a subset of it).
//
//   OruR01 oru = GroupOruR01(message);
//   for (const PatientResult& pr : oru.patient_results)
//     for (const OrderObservation& order : pr.orders)
//       for (const Observation& obs : order.observations)
//         message.segment(obs.obx) ...
//
// Tolerant: optional segments may be missing, groups repeat, and segments
// the structure does not name (Z-segments, PRT, anything unknown) are kept in
// the `other` list of the group they appear in, never dropped. Segment
// references are 0-based indexes for Message::segment(). Pure, thread-safe.
#pragma once

#include <vector>

#include "mapping/hl7/message.h"

namespace bridge::hl7 {

struct Observation {
  int obx = -1;
  std::vector<int> notes;  // NTE
  std::vector<int> other;  // PRT, Z-segments, unknown
};

struct Specimen {
  int spm = -1;
  std::vector<Observation> observations;  // SPECIMEN_OBSERVATION (OBX after SPM)
  std::vector<int> notes;
  std::vector<int> other;
};

struct OrderObservation {
  int orc = -1;             // -1 when the order has no ORC
  int obr = -1;             // -1 only for a malformed group (ORC with no OBR)
  std::vector<int> notes;   // NTE after OBR
  std::vector<int> timing;  // TQ1 / TQ2
  int ctd = -1;
  std::vector<Observation> observations;
  std::vector<int> ft1;
  std::vector<int> cti;
  std::vector<Specimen> specimens;
  std::vector<int> other;
};

struct PatientResult {
  int pid = -1;  // -1 when the PATIENT group is absent
  int pd1 = -1;
  std::vector<int> patient_notes;  // NTE after PID
  std::vector<int> nk1;
  int pv1 = -1;
  int pv2 = -1;
  std::vector<OrderObservation> orders;
  std::vector<int> other;
};

struct OruR01 {
  int msh = 0;
  std::vector<int> sft;
  std::vector<PatientResult> patient_results;
  int dsc = -1;
  // Segments that could not be placed in any group (for example an OBX
  // before the first OBR); the mapper reports them.
  std::vector<int> unplaced;
};

OruR01 GroupOruR01(const Message& message);

}  // namespace bridge::hl7
