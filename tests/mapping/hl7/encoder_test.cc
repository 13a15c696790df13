#include "mapping/hl7/encoder.h"

#include <gtest/gtest.h>

#include <string>

#include "mapping/hl7/message.h"
#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

TEST(EncodeTest, CrTerminatedInputRoundTripsByteForByte) {
  for (const std::string& bytes : {testing::GuideSampleOru(), testing::SyntheticFullOru()}) {
    absl::StatusOr<Message> m = Message::Parse(bytes);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(Encode(*m), bytes);
  }
}

TEST(EncodeTest, OutputUsesCrTerminatorsWhateverTheInputUsed) {
  absl::StatusOr<Message> m =
      Message::Parse("\xEF\xBB\xBFMSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\r\nPID|1||7\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Encode(*m), "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1\rPID|1||7\r");
}

TEST(EncodeTest, ParseOfEncodeIsTheSameMessage) {
  absl::StatusOr<Message> m = Message::Parse(testing::SyntheticFullOru());
  ASSERT_TRUE(m.ok());
  absl::StatusOr<Message> again = Message::Parse(Encode(*m));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*again == *m);
}

TEST(EncodeTest, ReencodingWithOtherDelimitersKeepsEveryValue) {
  absl::StatusOr<Message> m = Message::Parse(testing::SyntheticFullOru());
  ASSERT_TRUE(m.ok());
  Delimiters other{.field = '$',
                   .component = '%',
                   .repetition = '*',
                   .escape = '!',
                   .subcomponent = '@',
                   .truncation = '\0'};
  std::string wire = Encode(*m, other);
  absl::StatusOr<Message> back = Message::Parse(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->delimiters(), other);
  ASSERT_EQ(back->segment_count(), m->segment_count());
  for (const char* path : {"PID-3(2)-4-2", "PID-5-2", "PID-11-1", "NTE(1)-3", "OBX(4)-5(2)-2",
                           "OBX(2)-5-1", "OBX(3)-5", "ZPI-2"}) {
    EXPECT_EQ(back->Get(path).value(), m->Get(path).value()) << path;
    EXPECT_EQ(back->Get(path).is_null(), m->Get(path).is_null()) << path;
  }
}

TEST(EncodeTest, EqualityNoticesAnyDifference) {
  absl::StatusOr<Message> a = Message::Parse(testing::GuideSampleOru());
  std::string changed = testing::GuideSampleOru();
  changed.replace(changed.find("6.8"), 3, "6.9");
  absl::StatusOr<Message> b = Message::Parse(changed);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(*a == *b);
  EXPECT_TRUE(*a == *a);
}

TEST(MessageBuilderTest, EscapesValuesAndTrimsTrailingEmpties) {
  MessageBuilder b;
  b.Segment("MSH").Set(3, "APP").Set(9, 1, "ORM").Set(9, 2, "O01").Set(10, "ID1").Set(12, "2.5.1");
  b.Segment("PID").Set(3, 1, "123").Set(3, 4, "MPS_PMS").Set(3, 5, "MR").Set(5, 1, "O'Brien|X");
  b.Segment("NTE").Set(3, "line one\nline two ^ & ~ \\");
  b.Segment("OBR").SetRep(4, 2, 1, 1, "B").SetRep(4, 1, 1, 1, "A").Set(6, "");
  b.Segment("PV1").SetNull(2);
  EXPECT_EQ(b.Build(),
            "MSH|^~\\&|APP||||||ORM^O01|ID1||2.5.1\r"
            "PID|||123^^^MPS_PMS^MR||O'Brien\\F\\X\r"
            "NTE|||line one\\.br\\line two \\S\\ \\T\\ \\R\\ \\E\\\r"
            "OBR||||A~B\r"
            "PV1||\"\"\r");
  absl::StatusOr<Message> parsed = Message::Parse(b.Build());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Get("PID-5").value(), "O'Brien|X");
  EXPECT_EQ(parsed->Get("NTE-3").value(), "line one\nline two ^ & ~ \\");
  EXPECT_EQ(parsed->Get("OBR-4(2)").value(), "B");
  EXPECT_TRUE(parsed->Get("PV1-2").is_null());
}

TEST(MessageBuilderTest, UsesItsOwnDelimiters) {
  MessageBuilder b(Delimiters{.field = '$', .component = '%'});
  b.Segment("MSH").Set(9, 1, "ACK").Set(10, "a$b");
  EXPECT_EQ(b.Build(), "MSH$%~\\&$$$$$$$ACK$a\\F\\b\r");
}

}  // namespace
}  // namespace bridge::hl7

namespace bridge::hl7 {
namespace {

TEST(EncodeTest, WritesBackInTheDeclaredCharacterSet) {
  const std::string latin1 =
      "MSH|^~\\&|A|B|C|D|20260101||ORU^R01|1|P|2.5.1||||||8859/1\rPID|1||7||M\xFCller^Ana\r";
  absl::StatusOr<Message> m = Message::Parse(latin1);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Encode(*m), latin1);
  EXPECT_NE(EncodeUtf8(*m).find("M\xC3\xBCller"), std::string::npos);
}

}  // namespace
}  // namespace bridge::hl7
