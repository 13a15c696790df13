#include "mapping/hl7/batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mapping/hl7/message.h"
#include "tests/mapping/hl7/test_messages.h"

namespace bridge::hl7 {
namespace {

struct Collected {
  std::vector<std::string> messages;
  std::vector<std::uint64_t> offsets;
  std::vector<bool> stray;
};

Collected SplitInChunks(const std::string& input, std::size_t chunk) {
  Collected c;
  MessageSplitter splitter;
  auto collect = [&](const SplitMessage& m) {
    c.messages.emplace_back(m.bytes);
    c.offsets.push_back(m.offset);
    c.stray.push_back(m.is_stray);
  };
  for (std::size_t i = 0; i < input.size(); i += chunk) {
    splitter.Feed(std::string_view(input).substr(i, chunk), collect);
  }
  splitter.Finish(collect);
  return c;
}

TEST(MessageSplitterTest, SplitsABatchAndDropsTheEnvelope) {
  const std::string one = testing::GuideSampleOru();
  const std::string batch = "FHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + one + one + "BTS|2\rFTS|1\r";
  Collected c = SplitInChunks(batch, batch.size());
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[0], one);
  EXPECT_EQ(c.messages[1], one);
  EXPECT_EQ(c.offsets[0], 26u);
  EXPECT_EQ(c.offsets[1], 26u + one.size());
}

TEST(MessageSplitterTest, ResultDoesNotDependOnChunkSize) {
  std::string lf_export = testing::GuideSampleOru() + "\n" + testing::SyntheticFullOru();
  for (char& ch : lf_export) {
    if (ch == '\r') ch = '\n';
  }
  Collected whole = SplitInChunks(lf_export, lf_export.size());
  ASSERT_EQ(whole.messages.size(), 2u);
  // Every chunk size up to three 16-byte blocks, so each line end falls at
  // every position of a block and of a chunk's tail.
  std::vector<std::size_t> sizes = {64, 1000};
  for (std::size_t chunk = 1; chunk <= 48; ++chunk) sizes.push_back(chunk);
  for (std::size_t chunk : sizes) {
    Collected c = SplitInChunks(lf_export, chunk);
    EXPECT_EQ(c.messages, whole.messages) << "chunk=" << chunk;
    EXPECT_EQ(c.offsets, whole.offsets) << "chunk=" << chunk;
  }
  // The same messages framed for MLLP with CRLF lines: every kind of line end.
  std::string framed;
  for (const std::string& m : whole.messages) {
    std::string crlf;
    for (char ch : m) crlf += ch == '\r' ? std::string("\r\n") : std::string(1, ch);
    framed += "\x0b" + crlf + "\x1c\r";
  }
  for (std::size_t chunk : sizes) {
    EXPECT_EQ(SplitInChunks(framed, chunk).messages, whole.messages) << "framed, chunk=" << chunk;
  }
  // Each piece is a CR-terminated message that parses.
  for (const std::string& m : whole.messages) EXPECT_TRUE(Message::Parse(m).ok());
}

TEST(MessageSplitterTest, ReadsAnMllpCapture) {
  const std::string one = testing::GuideSampleOru();
  const std::string capture = "\x0b" + one + "\x1c\r\x0b" + one + "\x1c\r";
  Collected c = SplitInChunks(capture, 5);
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[1], one);
}

TEST(MessageSplitterTest, ReportsStrayTextInsteadOfDroppingIt) {
  const std::string input = "garbage line\r" + testing::GuideSampleOru();
  Collected c = SplitInChunks(input, 4);
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_TRUE(c.stray[0]);
  EXPECT_FALSE(c.stray[1]);
}

TEST(MessageSplitterTest, BoundsMemoryForAHugeMessage) {
  MessageSplitter splitter(1024);
  std::vector<SplitMessage> out;
  std::vector<std::string> texts;
  auto collect = [&](const SplitMessage& m) {
    texts.emplace_back(m.bytes);
    out.push_back(m);
  };
  std::string huge = "MSH|^~\\&|A\rNTE|1||" + std::string(1 << 20, 'x') + "\r";
  splitter.Feed(huge, collect);
  splitter.Feed(testing::GuideSampleOru(), collect);
  splitter.Finish(collect);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].is_stray);
  EXPECT_LE(texts[0].size(), 1024u);
  EXPECT_EQ(texts[1], testing::GuideSampleOru());
}

TEST(SplitMessagesTest, OwnsCopies) {
  std::vector<OwnedMessage> messages =
      SplitMessages(testing::GuideSampleOru() + testing::GuideSampleOru());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].bytes, testing::GuideSampleOru());
}

}  // namespace
}  // namespace bridge::hl7
