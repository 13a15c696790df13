// Runs the codec over every message in ../shared/corpus (real messages from
// public projects, read in place and never copied into this repository).
// Skipped when the folder is absent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/hl7/ack.h"
#include "mapping/hl7/batch.h"
#include "mapping/hl7/encoder.h"
#include "mapping/hl7/error.h"
#include "mapping/hl7/message.h"
#include "tests/support/test_paths.h"

namespace bridge::hl7 {
namespace {

const AckSpec kSpec{.control_id = "LB1", .timestamp = "20260101000000+0000"};

std::vector<std::filesystem::path> CorpusFiles(const std::string& suffix) {
  std::optional<std::filesystem::path> dir = bridge::testing::CorpusDir();
  if (!dir.has_value()) return {};
  return bridge::testing::FilesWithSuffix(*dir, suffix);
}

// What the corpus is expected to do, file by file. Every message in it is
// valid ER7 (the files SOURCES.md calls malformed are malformed in content,
// not in syntax), so none is expected to fail to parse; a file that should
// goes in kParseFailures with the code it must fail with. The files below
// parse but are refused by the header check lab-bridge applies before it
// acknowledges; each must be refused with exactly this code and reason, and
// every file not listed must be accepted.
struct ExpectedFailure {
  std::string_view file;
  ErrorCode code;
  std::string_view reason;  // a part of the status message
};

constexpr std::array<ExpectedFailure, 0> kParseFailures = {};  // none today (see above)

constexpr ExpectedFailure kHeaderRefusals[] = {
    // ReportStream's inventory fragments leave MSH-11 empty.
    {"inv_dtm_csec_precision_instant.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_dtm_hour_precision_dateTime.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_dtm_month_precision_instant.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_data_absent_n.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_data_absent_x.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_dtm.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_ed.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_sn_as_quantity.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_sn_as_range.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    {"inv_obx_sn_as_string.hl7", ErrorCode::kRequiredFieldMissing, "MSH-11"},
    // No message control id at all: the NAK's MSA-2 stays empty.
    {"hapi_oml_o21_spanish_utf8_multi_order.hl7", ErrorCode::kRequiredFieldMissing, "MSH-10"},
    {"lfh_oml_o21_prior_orders_dg1.hl7", ErrorCode::kRequiredFieldMissing, "MSH-10"},
    {"lfh_oml_o21_with_specimen.hl7", ErrorCode::kRequiredFieldMissing, "MSH-10"},
    // A header with no MSH-9 (python-hl7's delimiter fragment).
    {"py_nonstandard_delimiters_fragment.hl7", ErrorCode::kRequiredFieldMissing, "MSH-9"},
    // Message types and events lab-bridge does not take.
    {"hapi_orl_o34_application_ack.hl7", ErrorCode::kUnsupportedEventCode, "MSH-9.2"},
    {"apy_oml_o33_specimen_centric.hl7", ErrorCode::kUnsupportedEventCode, "MSH-9.2"},
    {"hapi_oul_r22_final.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"hapi_oul_r22_partial_with_x.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"medplum_oul_r22_cobas_2018.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"medplum_oul_r22_cobas_2022.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"medplum_qbp_q11_cobas_utf8.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"OUL-R22-01.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    {"nhapi_adt_a01_z_segments.hl7", ErrorCode::kUnsupportedMessageType, "MSH-9"},
    // ACKs declaring 2.6.1, which is not in the supported version list.
    {"medplum_ack_2_6_1.hl7", ErrorCode::kUnsupportedVersionId, "MSH-12"},
    {"medplum_ack_nonstandard_field_separator.hl7", ErrorCode::kUnsupportedVersionId, "MSH-12"},
};

const ExpectedFailure* Find(std::span<const ExpectedFailure> list, std::string_view file) {
  for (const ExpectedFailure& entry : list) {
    if (entry.file == file) return &entry;
  }
  return nullptr;
}

void ExpectFailure(const absl::Status& status, const ExpectedFailure& expected) {
  ASSERT_FALSE(status.ok()) << "expected to fail with " << static_cast<int>(expected.code);
  std::optional<Hl7ErrorDetail> detail = GetHl7Error(status);
  ASSERT_TRUE(detail.has_value()) << status;
  EXPECT_EQ(static_cast<int>(detail->code), static_cast<int>(expected.code)) << status;
  EXPECT_NE(std::string(status.message()).find(expected.reason), std::string::npos) << status;
}

// The NAK for a refused message: not AA, MSA-2 the message's own MSH-10
// (empty only when the message has none), built both from the parsed message
// and, as for a message that did not parse, from its bytes alone.
void ExpectNakWithOwnId(const Message* parsed, std::string_view bytes, const absl::Status& status,
                        const ExpectedFailure& expected) {
  const std::string control_id = PeekControlId(bytes).value_or("");
  std::vector<const Message*> sources = {nullptr};
  if (parsed != nullptr) sources.push_back(parsed);
  for (const Message* source : sources) {
    SCOPED_TRACE(source == nullptr ? "NAK from the bytes" : "NAK from the parsed message");
    absl::StatusOr<Message> nak = Message::Parse(BuildAck(source, bytes, status, kSpec));
    ASSERT_TRUE(nak.ok()) << nak.status();
    std::optional<AckSummary> summary = ReadAck(*nak);
    ASSERT_TRUE(summary.has_value());
    const bool refused = expected.code >= ErrorCode::kUnsupportedMessageType;
    EXPECT_THAT(summary->code, ::testing::AnyOf(refused ? "AR" : "AE", refused ? "CR" : "CE"));
    EXPECT_EQ(summary->acknowledged_control_id, control_id);
    if (parsed != nullptr) {
      EXPECT_EQ(control_id, parsed->control_id());
    }
    EXPECT_NE(nak->Segment("ERR"), std::nullopt);
  }
}

TEST(CorpusTest, EveryMessageParsesRoundTripsAndIsAcknowledgedWithItsOwnId) {
  std::vector<std::filesystem::path> files = CorpusFiles(".hl7");
  if (files.empty()) GTEST_SKIP() << "../shared/corpus is absent";
  std::set<std::string> seen;
  int accepted = 0;
  int refused = 0;
  for (const std::filesystem::path& file : files) {
    const std::string name = file.filename().string();
    SCOPED_TRACE(file.string());
    seen.insert(name);
    const ExpectedFailure* parse_failure = Find(kParseFailures, name);
    const ExpectedFailure* header_refusal = Find(kHeaderRefusals, name);
    const std::string bytes = bridge::testing::ReadFileOrDie(file);
    std::vector<OwnedMessage> pieces = SplitMessages(bytes);
    ASSERT_FALSE(pieces.empty());
    for (const OwnedMessage& piece : pieces) {
      ASSERT_FALSE(piece.is_stray) << "text outside any message at offset " << piece.offset;
      absl::StatusOr<Message> m = Message::Parse(piece.bytes);
      if (parse_failure != nullptr) {
        ExpectFailure(m.status(), *parse_failure);
        ExpectNakWithOwnId(nullptr, piece.bytes, m.status(), *parse_failure);
        ++refused;
        continue;
      }
      ASSERT_TRUE(m.ok()) << m.status();
      // The corpus is CR-terminated, so encoding gives back the same bytes.
      EXPECT_EQ(Encode(*m), piece.bytes);
      absl::StatusOr<Message> again = Message::Parse(Encode(*m));
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_TRUE(*again == *m);

      const absl::Status header = ValidateHeader(*m, {});
      if (header_refusal != nullptr) {
        ExpectFailure(header, *header_refusal);
        ExpectNakWithOwnId(&*m, piece.bytes, header, *header_refusal);
        ++refused;
        continue;
      }
      ASSERT_TRUE(header.ok()) << header;
      absl::StatusOr<Message> ack = Message::Parse(BuildAck(&*m, m->raw(), header, kSpec));
      ASSERT_TRUE(ack.ok()) << ack.status();
      std::optional<AckSummary> summary = ReadAck(*ack);
      ASSERT_TRUE(summary.has_value());
      EXPECT_THAT(summary->code, ::testing::AnyOf("AA", "CA"));
      ASSERT_FALSE(m->control_id().empty());
      EXPECT_EQ(ack->Get("MSA-2").encoded(), m->control_id());
      ++accepted;
    }
  }
  // A listed file that is not in the corpus means the list is stale.
  const std::span<const ExpectedFailure> lists[] = {kParseFailures, kHeaderRefusals};
  for (std::span<const ExpectedFailure> list : lists) {
    for (const ExpectedFailure& entry : list) {
      EXPECT_TRUE(seen.count(std::string(entry.file))) << entry.file << " is not in the corpus";
    }
  }
  std::cout << "corpus: " << accepted << " accepted with AA, " << refused
            << " refused with a NAK carrying their MSH-10\n";
  EXPECT_EQ(refused, static_cast<int>(kParseFailures.size() + std::size(kHeaderRefusals)));
}

TEST(CorpusTest, OriginalBytesWithLfAndBomParseLikeTheNormalisedCopy) {
  std::vector<std::filesystem::path> files = CorpusFiles(".hl7.orig");
  if (files.empty()) GTEST_SKIP() << "../shared/corpus is absent";
  for (const std::filesystem::path& orig : files) {
    SCOPED_TRACE(orig.string());
    std::filesystem::path normalised = orig;
    normalised.replace_extension();  // drop ".orig"
    absl::StatusOr<Message> a = Message::Parse(bridge::testing::ReadFileOrDie(orig));
    absl::StatusOr<Message> b = Message::Parse(bridge::testing::ReadFileOrDie(normalised));
    ASSERT_EQ(a.ok(), b.ok());
    if (!a.ok()) continue;
    EXPECT_TRUE(*a == *b);
    EXPECT_EQ(Encode(*a), Encode(*b));
  }
}

}  // namespace
}  // namespace bridge::hl7
