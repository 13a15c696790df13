#include "mapping/hl7/oru.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

std::string Name(const Message& m, int index) { return std::string(m.segment(index).name()); }

TEST(OruR01Test, GroupsTheGuideSample) {
  absl::StatusOr<Message> m = Message::Parse(testing::GuideSampleOru());
  ASSERT_TRUE(m.ok());
  OruR01 oru = GroupOruR01(*m);
  ASSERT_EQ(oru.patient_results.size(), 1u);
  const PatientResult& pr = oru.patient_results[0];
  EXPECT_EQ(Name(*m, pr.pid), "PID");
  ASSERT_EQ(pr.orders.size(), 1u);
  EXPECT_EQ(pr.orders[0].orc, -1);
  EXPECT_EQ(Name(*m, pr.orders[0].obr), "OBR");
  ASSERT_EQ(pr.orders[0].observations.size(), 5u);
  EXPECT_EQ(m->segment(pr.orders[0].observations[4].obx).Field(3).Comp(1).value(), "K");
  EXPECT_TRUE(oru.unplaced.empty());
}

TEST(OruR01Test, PlacesNotesSpecimensAndZSegments) {
  absl::StatusOr<Message> m = Message::Parse(testing::SyntheticFullOru());
  ASSERT_TRUE(m.ok());
  OruR01 oru = GroupOruR01(*m);
  EXPECT_EQ(oru.sft.size(), 1u);
  ASSERT_EQ(oru.patient_results.size(), 1u);
  const PatientResult& pr = oru.patient_results[0];
  EXPECT_EQ(pr.patient_notes.size(), 1u);
  EXPECT_NE(pr.pv1, -1);
  ASSERT_EQ(pr.orders.size(), 1u);
  const OrderObservation& order = pr.orders[0];
  EXPECT_EQ(Name(*m, order.orc), "ORC");
  EXPECT_EQ(order.notes.size(), 1u);
  ASSERT_EQ(order.observations.size(), 4u);
  EXPECT_EQ(order.observations[0].notes.size(), 1u);
  // The Z-segment after OBX 4 stays with that observation, not dropped.
  ASSERT_EQ(order.observations[3].other.size(), 1u);
  EXPECT_EQ(Name(*m, order.observations[3].other[0]), "ZPI");
  ASSERT_EQ(order.specimens.size(), 1u);
  ASSERT_EQ(order.specimens[0].observations.size(), 1u);
  EXPECT_EQ(m->segment(order.specimens[0].observations[0].obx).Field(1).value(), "5");
}

TEST(OruR01Test, StartsOrdersAtOrcOrAtAnObrWithoutOne) {
  absl::StatusOr<Message> m = Message::Parse(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\r"
      "PID|1||1\rORC|RE|P1\rOBR|1|P1\rOBX|1|NM|A||1\rOBR|2|P2\rOBX|1|NM|B||2\r"
      "ORC|RE|P3\rOBR|3|P3\rTQ1|1\rOBX|1|NM|C||3\r"
      "PID|2||2\rOBR|1|P4\rOBX|1|NM|D||4\rNTE|1||n\rDSC|x\r");
  ASSERT_TRUE(m.ok());
  OruR01 oru = GroupOruR01(*m);
  ASSERT_EQ(oru.patient_results.size(), 2u);
  ASSERT_EQ(oru.patient_results[0].orders.size(), 3u);
  EXPECT_NE(oru.patient_results[0].orders[0].orc, -1);
  EXPECT_EQ(oru.patient_results[0].orders[1].orc, -1);
  EXPECT_EQ(oru.patient_results[0].orders[2].timing.size(), 1u);
  ASSERT_EQ(oru.patient_results[1].orders.size(), 1u);
  EXPECT_EQ(oru.patient_results[1].orders[0].observations[0].notes.size(), 1u);
  EXPECT_NE(oru.dsc, -1);
}

TEST(OruR01Test, ToleratesMissingPatientAndReportsStrays) {
  absl::StatusOr<Message> m = Message::Parse(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.3\rOBX|1|NM|A||1\rOBR|1|P1\rOBX|1|NM|B||2\r");
  ASSERT_TRUE(m.ok());
  OruR01 oru = GroupOruR01(*m);
  ASSERT_EQ(oru.unplaced.size(), 1u);
  ASSERT_EQ(oru.patient_results.size(), 1u);
  EXPECT_EQ(oru.patient_results[0].pid, -1);
  EXPECT_EQ(oru.patient_results[0].orders[0].observations.size(), 1u);
}

// A known segment out of its place is kept like an unknown one, with the
// innermost open group, never dropped and never taken for its usual role.
TEST(OruR01Test, KnownSegmentsOutOfPlaceAreKeptAsOthers) {
  absl::StatusOr<Message> m = Message::Parse(
      "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\r"
      "TQ1|1\rPID|1||1\rSFT|x\rOBR|1|P1\rPV1|1|O\rNK1|1\rOBX|1|NM|A||1\rPD1|1\r"
      "SPM|1|S1\rOBX|2|NM|B||2\rPV2|1\r");
  ASSERT_TRUE(m.ok()) << m.status();
  OruR01 oru = GroupOruR01(*m);
  EXPECT_EQ(oru.unplaced, std::vector<int>({1}));  // TQ1 before any group
  ASSERT_EQ(oru.patient_results.size(), 1u);
  const PatientResult& pr = oru.patient_results[0];
  EXPECT_EQ(pr.other, std::vector<int>({3}));  // SFT after PID
  EXPECT_EQ(pr.pv1, -1);
  EXPECT_TRUE(pr.nk1.empty());
  ASSERT_EQ(pr.orders.size(), 1u);
  const OrderObservation& order = pr.orders[0];
  EXPECT_EQ(order.other, std::vector<int>({5, 6}));  // PV1, NK1 after OBR
  ASSERT_EQ(order.observations.size(), 1u);
  EXPECT_EQ(order.observations[0].other, std::vector<int>({8}));  // PD1 after OBX
  ASSERT_EQ(order.specimens.size(), 1u);
  ASSERT_EQ(order.specimens[0].observations.size(), 1u);
  EXPECT_EQ(order.specimens[0].observations[0].other, std::vector<int>({11}));  // PV2
}

}  // namespace
}  // namespace bridge::hl7
