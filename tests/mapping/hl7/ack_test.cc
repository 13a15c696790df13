#include "mapping/hl7/ack.h"

#include <gtest/gtest.h>

#include <string>

#include "mapping/hl7/message.h"
#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

const AckSpec kSpec{.application = "LAB_BRIDGE",
                    .facility = "MPS_PMS",
                    .control_id = "LB0001",
                    .timestamp = "20260221120001+0000"};

Message ParseOrDie(const std::string& bytes) {
  absl::StatusOr<Message> m = Message::Parse(bytes);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : Message();
}

struct AckCase {
  const char* name;
  absl::Status status;
  const char* code;
  ErrorCode error;
};

void PrintTo(const AckCase& c, std::ostream* os) { *os << c.name; }

class MakeAckTest : public ::testing::TestWithParam<AckCase> {};

TEST_P(MakeAckTest, MapsStatusToAckCode) {
  AckDecision d = MakeAck(GetParam().status);
  EXPECT_EQ(d.code, GetParam().code);
  EXPECT_EQ(d.error, GetParam().error);
  AckDecision enhanced = MakeAck(GetParam().status, true);
  EXPECT_EQ(enhanced.code[0], 'C');
  EXPECT_EQ(enhanced.code[1], GetParam().code[1]);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MakeAckTest,
    ::testing::Values(AckCase{"ok", absl::OkStatus(), "AA", ErrorCode::kNone},
                      AckCase{"duplicate", absl::AlreadyExistsError("seen"), "AA",
                              ErrorCode::kNone},
                      AckCase{"bad_content",
                              Hl7Error(absl::StatusCode::kInvalidArgument,
                                       ErrorCode::kRequiredFieldMissing, {}, "x"),
                              "AE", ErrorCode::kRequiredFieldMissing},
                      AckCase{"bad_content_no_code", absl::InvalidArgumentError("x"), "AE",
                              ErrorCode::kDataTypeError},
                      AckCase{"unsupported_version",
                              Hl7Error(absl::StatusCode::kUnimplemented,
                                       ErrorCode::kUnsupportedVersionId, {}, "x"),
                              "AR", ErrorCode::kUnsupportedVersionId},
                      AckCase{"unsupported_no_code", absl::UnimplementedError("x"), "AR",
                              ErrorCode::kUnsupportedMessageType},
                      AckCase{"database_down", absl::UnavailableError("db"), "AR",
                              ErrorCode::kApplicationInternalError},
                      AckCase{"sender_not_allowed", absl::PermissionDeniedError("who"), "AR",
                              ErrorCode::kApplicationInternalError},
                      AckCase{"internal", absl::InternalError("bug"), "AE",
                              ErrorCode::kApplicationInternalError}),
    [](const ::testing::TestParamInfo<AckCase>& info) { return info.param.name; });

TEST(BuildAckTest, AcceptsTheGuideSample) {
  Message original = ParseOrDie(testing::GuideSampleOru());
  std::string ack = BuildAck(&original, original.raw(), absl::OkStatus(), kSpec);
  EXPECT_EQ(ack,
            "MSH|^~\\&|LAB_BRIDGE|MPS_PMS|LAB_LIS|REFERENCE_LAB|20260221120001+0000||"
            "ACK^R01^ACK|LB0001|P|2.5.1\r"
            "MSA|AA|MSG001\r");
  Message parsed = ParseOrDie(ack);
  std::optional<AckSummary> summary = ReadAck(parsed);
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->code, "AA");
  EXPECT_EQ(summary->acknowledged_control_id, "MSG001");
}

TEST(BuildAckTest, OldVersionsGetAPlainAckType) {
  Message original =
      ParseOrDie("MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|C23|P|2.3\rPID|1||1\r");
  Message ack = ParseOrDie(BuildAck(&original, original.raw(), absl::OkStatus(), kSpec));
  EXPECT_EQ(ack.Get("MSH-9").encoded(), "ACK");
  EXPECT_EQ(ack.Get("MSH-12").value(), "2.3");
  Message v231 = ParseOrDie("MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|C23|P|2.3.1\rPID|1||1\r");
  EXPECT_EQ(ParseOrDie(BuildAck(&v231, v231.raw(), absl::OkStatus(), kSpec)).Get("MSH-9").encoded(),
            "ACK^R01^ACK");
}

TEST(BuildAckTest, ErrorSegmentFollowsTheVersion) {
  const absl::Status missing =
      Hl7Error(absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing,
               {.segment = "PID", .segment_sequence = 2, .field = 3}, "PID-3 is empty");
  Message v251 = ParseOrDie(testing::GuideSampleOru());
  Message ack = ParseOrDie(BuildAck(&v251, v251.raw(), missing, kSpec));
  EXPECT_EQ(ack.Get("MSA-1").value(), "AE");
  EXPECT_EQ(ack.Get("MSA-2").value(), "MSG001");
  EXPECT_EQ(ack.Get("ERR-2").encoded(), "PID^2^3");
  EXPECT_EQ(ack.Get("ERR-3").encoded(), "101^Required field missing^HL70357");
  EXPECT_EQ(ack.Get("ERR-4").value(), "E");
  EXPECT_EQ(ack.Get("ERR-8").value(), "PID-3 is empty");
  EXPECT_TRUE(ack.Get("ERR-1").empty());

  Message v24 = ParseOrDie("MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|OLD7|P|2.4\rPID|1\r");
  Message old = ParseOrDie(BuildAck(&v24, v24.raw(), missing, kSpec));
  EXPECT_EQ(old.Get("ERR-1").encoded(), "PID^2^3^101&Required field missing&HL70357");
  EXPECT_EQ(old.Get("MSA-3").value(), "PID-3 is empty");
  EXPECT_TRUE(old.Get("ERR-3").empty());
}

TEST(BuildAckTest, NakForAnUnreadableMessageIsWellFormedAndEchoesTheControlId) {
  const std::string raw =
      "MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|BROKEN-9|P|2.5.1\r"
      "PID|1||7\rthis line lost its CR\r";
  absl::StatusOr<Message> failed = Message::Parse(raw);
  ASSERT_FALSE(failed.ok());
  Message ack = ParseOrDie(BuildAck(nullptr, raw, failed.status(), kSpec));
  EXPECT_EQ(ack.Get("MSA-1").value(), "AE");
  EXPECT_EQ(ack.Get("MSA-2").value(), "BROKEN-9");
  EXPECT_EQ(ack.Get("MSH-5").value(), "LIS");
  EXPECT_EQ(ack.Get("MSH-9").encoded(), "ACK^R01^ACK");
  EXPECT_EQ(ack.Get("ERR-3-1").value(), "100");

  // Nothing readable at all: still a valid ACK, with no invented control id.
  Message blind =
      ParseOrDie(BuildAck(nullptr, "\x01\x02 not hl7", absl::InvalidArgumentError("x"), kSpec));
  EXPECT_EQ(blind.Get("MSA-1").value(), "AE");
  EXPECT_TRUE(blind.Get("MSA-2").empty());
  EXPECT_EQ(blind.Get("MSH-12").value(), "2.5.1");
  EXPECT_EQ(blind.Get("MSH-11").value(), "P");
}

TEST(BuildAckTest, EnhancedModeAnswersWithCommitCodes) {
  Message original = ParseOrDie(testing::SyntheticFullOru());  // MSH-15 AL, MSH-16 NE
  ASSERT_TRUE(IsEnhancedMode(original));
  Message ack = ParseOrDie(BuildAck(&original, original.raw(), absl::OkStatus(), kSpec));
  EXPECT_EQ(ack.Get("MSA-1").value(), "CA");
  EXPECT_EQ(ack.Get("MSA-2").value(), "SYN-0002");
  EXPECT_TRUE(ShouldSendAcceptAck(original, MakeAck(absl::OkStatus(), true)));
}

TEST(BuildAckTest, HonoursAcceptAckType) {
  auto with_msh15 = [](const std::string& mode) {
    return ParseOrDie("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1|||" + mode + "|AL\rPID|1\r");
  };
  AckDecision ok = MakeAck(absl::OkStatus(), true);
  AckDecision error = MakeAck(absl::InvalidArgumentError("x"), true);
  EXPECT_FALSE(ShouldSendAcceptAck(with_msh15("NE"), ok));
  EXPECT_FALSE(ShouldSendAcceptAck(with_msh15("ER"), ok));
  EXPECT_TRUE(ShouldSendAcceptAck(with_msh15("ER"), error));
  EXPECT_TRUE(ShouldSendAcceptAck(with_msh15("SU"), ok));
  EXPECT_FALSE(ShouldSendAcceptAck(with_msh15("SU"), error));
  EXPECT_TRUE(ShouldSendAcceptAck(with_msh15("AL"), error));
}

TEST(BuildAckTest, ErrorTextNeverQuotesMessageContent) {
  // A storage error may quote data; the ACK must use the table text instead.
  Message original = ParseOrDie(testing::GuideSampleOru());
  std::string ack = BuildAck(&original, original.raw(),
                             absl::UnavailableError("duplicate key (mrn)=(12345) Doe"), kSpec);
  EXPECT_EQ(ack.find("12345"), std::string::npos);
  EXPECT_EQ(ack.find("Doe"), std::string::npos);
  Message parsed = ParseOrDie(ack);
  EXPECT_EQ(parsed.Get("MSA-1").value(), "AR");
  EXPECT_EQ(parsed.Get("ERR-3-1").value(), "207");
}

// MSH-11 (processing id, and its mode component) is echoed as the sender
// wrote it, for every processing id, in an ACK and in a NAK built from the
// bytes alone (first component only: the header could not be trusted).
struct ProcessingCase {
  const char* name;
  const char* msh11;
  const char* ack_msh11;  // from the parsed message
  const char* nak_msh11;  // from the bytes of a message that did not parse
};

void PrintTo(const ProcessingCase& c, std::ostream* os) { *os << c.name; }

class ProcessingIdEchoTest : public ::testing::TestWithParam<ProcessingCase> {};

TEST_P(ProcessingIdEchoTest, AckAndNakEchoMsh11) {
  const std::string header =
      std::string("MSH|^~\\&|LIS|LAB|PMS|FAC|20260101||ORU^R01|C11|") + GetParam().msh11 + "|2.5.1";
  Message original = ParseOrDie(header + "\rPID|1\r");
  Message ack = ParseOrDie(BuildAck(&original, original.raw(), absl::OkStatus(), kSpec));
  EXPECT_EQ(ack.Get("MSH-11").encoded(), GetParam().ack_msh11);
  EXPECT_EQ(ack.Get("MSA-1").value(), "AA");

  const std::string broken = header + "\rPID|1\rnot a segment\r";
  absl::StatusOr<Message> failed = Message::Parse(broken);
  ASSERT_FALSE(failed.ok());
  Message nak = ParseOrDie(BuildAck(nullptr, broken, failed.status(), kSpec));
  EXPECT_EQ(nak.Get("MSH-11").encoded(), GetParam().nak_msh11);
  EXPECT_EQ(nak.Get("MSA-2").value(), "C11");
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProcessingIdEchoTest,
    ::testing::Values(ProcessingCase{"production", "P", "P", "P"},
                      ProcessingCase{"training", "T", "T", "T"},
                      ProcessingCase{"debugging", "D", "D", "D"},
                      ProcessingCase{"training_initial_load", "T^I", "T^I", "T"},
                      // No processing id: ACK and NAK say P rather than nothing.
                      ProcessingCase{"empty", "", "P", "P"}),
    [](const ::testing::TestParamInfo<ProcessingCase>& info) { return info.param.name; });

// Acknowledgement mode as ack.cc decides it: MSH-15 or MSH-16 valued means
// enhanced mode (CA/CE/CR) instead of original mode (AA/AE/AR); whether the
// accept (commit) ACK is sent at all follows MSH-15 only (empty = AL). MSH-16
// asks for application acknowledgements, which lab-bridge does not send: it
// only selects the mode. An ACK never asks to be acknowledged itself.
struct ModeCase {
  const char* name;
  const char* msh15;
  const char* msh16;
  absl::Status outcome;
  const char* msa1;
  bool send;
};

void PrintTo(const ModeCase& c, std::ostream* os) { *os << c.name; }

class AckModeTest : public ::testing::TestWithParam<ModeCase> {};

TEST_P(AckModeTest, ChoosesModeAndWhetherToAnswer) {
  const ModeCase& c = GetParam();
  Message original = ParseOrDie(std::string("MSH|^~\\&|A|B|C|D|1||ORU^R01|M1|P|2.5.1|||") +
                                c.msh15 + "|" + c.msh16 + "\rPID|1\r");
  const bool enhanced = *c.msh15 != '\0' || *c.msh16 != '\0';
  EXPECT_EQ(IsEnhancedMode(original), enhanced);
  const AckDecision decision = MakeAck(c.outcome, IsEnhancedMode(original));
  EXPECT_EQ(decision.code, c.msa1);
  EXPECT_EQ(ShouldSendAcceptAck(original, decision), c.send);
  Message ack = ParseOrDie(BuildAck(&original, original.raw(), c.outcome, kSpec));
  EXPECT_EQ(ack.Get("MSA-1").value(), c.msa1);
  EXPECT_EQ(ack.Get("MSA-2").value(), "M1");
  EXPECT_TRUE(ack.Get("MSH-15").empty());
  EXPECT_TRUE(ack.Get("MSH-16").empty());
}

const absl::Status kContentError = absl::InvalidArgumentError("content");
const absl::Status kRefused = absl::UnimplementedError("refused");

INSTANTIATE_TEST_SUITE_P(Table, AckModeTest,
                         ::testing::Values(
                             // Original mode: neither field valued; always answered.
                             ModeCase{"original_ok", "", "", absl::OkStatus(), "AA", true},
                             ModeCase{"original_error", "", "", kContentError, "AE", true},
                             ModeCase{"original_refused", "", "", kRefused, "AR", true},
                             // MSH-15 AL: always answered.
                             ModeCase{"al_ne_ok", "AL", "NE", absl::OkStatus(), "CA", true},
                             ModeCase{"al_ne_error", "AL", "NE", kContentError, "CE", true},
                             ModeCase{"al_al_refused", "AL", "AL", kRefused, "CR", true},
                             // MSH-15 NE: never answered, whatever MSH-16 asks.
                             ModeCase{"ne_ne_ok", "NE", "NE", absl::OkStatus(), "CA", false},
                             ModeCase{"ne_al_error", "NE", "AL", kContentError, "CE", false},
                             ModeCase{"ne_only_ok", "NE", "", absl::OkStatus(), "CA", false},
                             // MSH-15 ER: answered only when something went wrong.
                             ModeCase{"er_al_ok", "ER", "AL", absl::OkStatus(), "CA", false},
                             ModeCase{"er_al_error", "ER", "AL", kContentError, "CE", true},
                             ModeCase{"er_su_refused", "ER", "SU", kRefused, "CR", true},
                             // MSH-15 SU: answered only on success.
                             ModeCase{"su_er_ok", "SU", "ER", absl::OkStatus(), "CA", true},
                             ModeCase{"su_er_error", "SU", "ER", kContentError, "CE", false},
                             ModeCase{"su_ne_refused", "SU", "NE", kRefused, "CR", false},
                             // Only MSH-16 valued: enhanced codes, and MSH-15 empty counts as AL.
                             ModeCase{"only_msh16_al_ok", "", "AL", absl::OkStatus(), "CA", true},
                             ModeCase{"only_msh16_ne_error", "", "NE", kContentError, "CE", true},
                             ModeCase{"only_msh16_su_refused", "", "SU", kRefused, "CR", true}),
                         [](const ::testing::TestParamInfo<ModeCase>& info) {
                           return info.param.name;
                         });

struct HeaderCase {
  const char* name;
  std::string msh;
  absl::StatusCode status;
  ErrorCode code;
};

void PrintTo(const HeaderCase& c, std::ostream* os) { *os << c.name; }

class ValidateHeaderTest : public ::testing::TestWithParam<HeaderCase> {};

TEST_P(ValidateHeaderTest, DecidesBetweenAeAndAr) {
  Message m = ParseOrDie(GetParam().msh + "\rPID|1\r");
  absl::Status s = ValidateHeader(m, {});
  EXPECT_EQ(s.code(), GetParam().status) << s;
  std::optional<Hl7ErrorDetail> detail = GetHl7Error(s);
  if (GetParam().code == ErrorCode::kNone) {
    EXPECT_FALSE(detail.has_value());
  } else {
    ASSERT_TRUE(detail.has_value());
    EXPECT_EQ(detail->code, GetParam().code);
    EXPECT_EQ(detail->location.segment, "MSH");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateHeaderTest,
    ::testing::Values(
        HeaderCase{"valid", "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5.1", absl::StatusCode::kOk,
                   ErrorCode::kNone},
        HeaderCase{"ack_without_event", "MSH|^~\\&|A|B|C|D|1||ACK|1|P|2.3", absl::StatusCode::kOk,
                   ErrorCode::kNone},
        HeaderCase{"no_type", "MSH|^~\\&|A|B|C|D|1|||1|P|2.5.1", absl::StatusCode::kInvalidArgument,
                   ErrorCode::kRequiredFieldMissing},
        HeaderCase{"no_event", "MSH|^~\\&|A|B|C|D|1||ORU|1|P|2.5.1",
                   absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing},
        HeaderCase{"no_control_id", "MSH|^~\\&|A|B|C|D|1||ORU^R01||P|2.5.1",
                   absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing},
        HeaderCase{"no_processing_id", "MSH|^~\\&|A|B|C|D|1||ORU^R01|1||2.5.1",
                   absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing},
        HeaderCase{"no_version", "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P",
                   absl::StatusCode::kInvalidArgument, ErrorCode::kRequiredFieldMissing},
        HeaderCase{"unknown_type", "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5.1",
                   absl::StatusCode::kUnimplemented, ErrorCode::kUnsupportedMessageType},
        HeaderCase{"unknown_event", "MSH|^~\\&|A|B|C|D|1||ORU^R30|1|P|2.5.1",
                   absl::StatusCode::kUnimplemented, ErrorCode::kUnsupportedEventCode},
        HeaderCase{"unknown_processing", "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|X|2.5.1",
                   absl::StatusCode::kUnimplemented, ErrorCode::kUnsupportedProcessingId},
        HeaderCase{"unknown_version", "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|3.0",
                   absl::StatusCode::kUnimplemented, ErrorCode::kUnsupportedVersionId}),
    [](const ::testing::TestParamInfo<HeaderCase>& info) { return info.param.name; });

}  // namespace
}  // namespace bridge::hl7

namespace bridge::hl7 {
namespace {

// Found by the fuzzer: a NAK for a message with invalid bytes in its header
// must itself be valid text.
TEST(BuildAckRegressionTest, NakNeverCopiesInvalidBytes) {
  const std::string raw = "MSH|^~\\&|LAB\xCF\xCF\x8F|B|C|D|1||ORU^R01|ID\xFF|P|2.5.1\rPID|1\r\x01";
  std::string nak = BuildAck(nullptr, raw, absl::InvalidArgumentError("x"), kSpec);
  EXPECT_TRUE(IsValidUtf8(nak));
  absl::StatusOr<Message> parsed = Message::Parse(nak);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Get("MSH-5").value(), "LAB???");
  EXPECT_EQ(parsed->Get("MSA-2").value(), "ID?");
}

}  // namespace
}  // namespace bridge::hl7
