// Runs the codec over every message in ../shared/corpus (real messages from
// public projects, read in place and never copied into this repository).
// Skipped when the folder is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
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

TEST(CorpusTest, EveryMessageParsesRoundTripsAndIsAcknowledgedWithItsOwnId) {
  std::vector<std::filesystem::path> files = CorpusFiles(".hl7");
  if (files.empty()) GTEST_SKIP() << "../shared/corpus is absent";
  int parsed = 0;
  int refused = 0;
  for (const std::filesystem::path& file : files) {
    SCOPED_TRACE(file.string());
    const std::string bytes = bridge::testing::ReadFileOrDie(file);
    for (const OwnedMessage& piece : SplitMessages(bytes)) {
      ASSERT_FALSE(piece.is_stray) << "text outside any message at offset " << piece.offset;
      absl::StatusOr<Message> m = Message::Parse(piece.bytes);
      if (!m.ok()) {
        // A deliberately malformed message: a clear HL7 error, and a NAK
        // that still carries its control id.
        ++refused;
        std::optional<Hl7ErrorDetail> detail = GetHl7Error(m.status());
        ASSERT_TRUE(detail.has_value()) << m.status();
        EXPECT_NE(detail->code, ErrorCode::kNone);
        absl::StatusOr<Message> nak =
            Message::Parse(BuildAck(nullptr, piece.bytes, m.status(), kSpec));
        ASSERT_TRUE(nak.ok()) << nak.status();
        std::optional<AckSummary> summary = ReadAck(*nak);
        ASSERT_TRUE(summary.has_value());
        EXPECT_NE(summary->code, "AA");
        EXPECT_EQ(summary->acknowledged_control_id, PeekControlId(piece.bytes).value_or(""));
        std::cout << "  refused " << file.filename().string() << ": " << m.status().message()
                  << "\n";
        continue;
      }
      ++parsed;
      // The corpus is CR-terminated, so encoding gives back the same bytes.
      EXPECT_EQ(Encode(*m), piece.bytes);
      absl::StatusOr<Message> again = Message::Parse(Encode(*m));
      ASSERT_TRUE(again.ok());
      EXPECT_TRUE(*again == *m);
      absl::StatusOr<Message> ack =
          Message::Parse(BuildAck(&*m, m->raw(), absl::OkStatus(), kSpec));
      ASSERT_TRUE(ack.ok()) << ack.status();
      std::optional<AckSummary> summary = ReadAck(*ack);
      ASSERT_TRUE(summary.has_value());
      if (!m->control_id().empty()) {
        EXPECT_EQ(ack->Get("MSA-2").encoded(), m->control_id());
      }
    }
  }
  std::cout << "corpus: " << parsed << " parsed, " << refused << " refused with a NAK\n";
  EXPECT_GT(parsed, 50);
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
