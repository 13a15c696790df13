#include "mllp/frame_decoder.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mllp/frame_encoder.h"

namespace bridge::mllp {
namespace {

class FrameDecoderTest : public ::testing::Test {
 protected:
  // Feeds `bytes` and returns the payloads of complete (non-oversize) frames.
  std::vector<std::string> FeedBytes(std::string_view bytes) {
    std::vector<DecodedFrame> frames;
    decoder_.Feed(bytes, &frames);
    return PayloadsOf(frames);
  }
  std::vector<std::string> FinishStream() {
    std::vector<DecodedFrame> frames;
    finished_cleanly_ = decoder_.Finish(&frames);
    return PayloadsOf(frames);
  }
  static std::vector<std::string> PayloadsOf(const std::vector<DecodedFrame>& frames) {
    std::vector<std::string> out;
    for (const DecodedFrame& f : frames) {
      EXPECT_FALSE(f.oversize);
      out.push_back(f.payload);
    }
    return out;
  }

  FrameDecoder decoder_{1024};
  bool finished_cleanly_ = true;
};

using Payloads = std::vector<std::string>;

// Feeds the same bytes split at every pair of boundaries (three pieces); the
// result must not depend on how TCP segmented the stream.
TEST(FrameDecoderGrindTest, ResultIsIndependentOfSplitPoints) {
  const std::string wire = std::string("\r\n\0junk", 7) + Frame("MSH|1\rPID|1") + "\n" +
                           Frame("MSH|2") + Frame("") + std::string("\x0b" "MSH|3\x1c", 7);
  const Payloads expected = {"MSH|1\rPID|1", "MSH|2", "", "MSH|3"};
  for (std::size_t a = 0; a <= wire.size(); ++a) {
    for (std::size_t b = a; b <= wire.size(); ++b) {
      SCOPED_TRACE("split=" + std::to_string(a) + "," + std::to_string(b));
      FrameDecoder decoder(1024);
      std::vector<DecodedFrame> frames;
      decoder.Feed(std::string_view(wire).substr(0, a), &frames);
      decoder.Feed(std::string_view(wire).substr(a, b - a), &frames);
      decoder.Feed(std::string_view(wire).substr(b), &frames);
      EXPECT_TRUE(decoder.Finish(&frames));
      Payloads got;
      for (const DecodedFrame& f : frames) {
        got.push_back(f.payload);
      }
      ASSERT_EQ(got, expected);
      EXPECT_EQ(decoder.stats().junk_bytes, 8u);  // "\r\n\0junk" + "\n"
    }
  }
}

TEST(FrameDecoderGrindTest, ByteAtATimeEqualsWhole) {
  const std::string wire = Frame("MSH|A") + Frame("MSH|B");
  FrameDecoder decoder(1024);
  std::vector<DecodedFrame> frames;
  for (char c : wire) {
    decoder.Feed(std::string_view(&c, 1), &frames);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, "MSH|A");
  EXPECT_EQ(frames[1].payload, "MSH|B");
}

TEST_F(FrameDecoderTest, SeveralFramesInOneRead) {
  EXPECT_EQ(FeedBytes(Frame("1") + Frame("2") + Frame("3")), (Payloads{"1", "2", "3"}));
  EXPECT_EQ(decoder_.stats().frames, 3u);
  EXPECT_EQ(decoder_.stats().junk_bytes, 0u);
}

TEST_F(FrameDecoderTest, JunkNulAndLineFeedsBetweenFramesAreSkippedAndCounted) {
  const std::string junk("garbage\0\n\r\n", 11);
  EXPECT_EQ(FeedBytes(junk + Frame("1") + std::string("\0\n", 2) + Frame("2")),
            (Payloads{"1", "2"}));
  EXPECT_EQ(decoder_.stats().junk_bytes, 13u);
  EXPECT_FALSE(decoder_.in_frame());
}

TEST_F(FrameDecoderTest, FinalCrMissingAtEndOfStreamIsTolerated) {
  EXPECT_EQ(FeedBytes("\x0bMSH|1\x1c"), Payloads{});
  EXPECT_EQ(FinishStream(), Payloads{"MSH|1"});
  EXPECT_TRUE(finished_cleanly_);
  EXPECT_EQ(decoder_.stats().missing_cr, 1u);
}

TEST_F(FrameDecoderTest, EndBlockWithoutCrFollowedByNextFrame) {
  EXPECT_EQ(FeedBytes("\x0b" "1\x1c\x0b" "2\x1c\r"), (Payloads{"1", "2"}));
  EXPECT_EQ(decoder_.stats().missing_cr, 1u);
}

TEST_F(FrameDecoderTest, UnfinishedFrameAtEndOfStreamIsDropped) {
  EXPECT_EQ(FeedBytes("\x0bMSH|1 trunc"), Payloads{});
  EXPECT_TRUE(decoder_.in_frame());
  EXPECT_EQ(FinishStream(), Payloads{});
  EXPECT_FALSE(finished_cleanly_);
  EXPECT_EQ(decoder_.stats().truncated_frames, 1u);
  EXPECT_FALSE(decoder_.in_frame());
}

TEST_F(FrameDecoderTest, StartBlockInsideFrameRestartsTheFrame) {
  EXPECT_EQ(FeedBytes("\x0bhalf" + Frame("whole")), Payloads{"whole"});
  EXPECT_EQ(decoder_.stats().truncated_frames, 1u);
  EXPECT_EQ(decoder_.stats().junk_bytes, 5u);  // <VT>half
}

TEST_F(FrameDecoderTest, FrameOfExactlyTheLimitIsAccepted) {
  const std::string payload(1024, 'x');
  EXPECT_EQ(FeedBytes(Frame(payload)), Payloads{payload});
}

TEST(FrameDecoderOversizeTest, OversizeFrameIsCutWithBoundedMemory) {
  constexpr std::size_t kLimit = 64 * 1024;
  constexpr std::size_t kPrefix = 4096;
  FrameDecoder decoder(kLimit, kPrefix);
  std::vector<DecodedFrame> frames;
  std::string header = "MSH|^~\\&|LAB|FAC|||20240101||ORU^R01|CTRL42|P|2.5\r";
  decoder.Feed("\x0b" + header, &frames);
  // 10 MiB in 1000-byte chunks: the decoder must never hold more than the limit.
  const std::string chunk(1000, 'y');
  std::size_t max_seen = 0;
  for (int i = 0; i < 10 * 1024; ++i) {
    decoder.Feed(chunk, &frames);
    max_seen = std::max(max_seen, decoder.buffer_capacity());
    ASSERT_LE(decoder.buffered_bytes(), kLimit);
  }
  EXPECT_LE(max_seen, kLimit);
  // Exactly one notice, as soon as the limit was crossed, carrying the prefix.
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].oversize);
  EXPECT_EQ(frames[0].payload.size(), kPrefix);
  EXPECT_EQ(frames[0].payload.substr(0, header.size()), header);
  EXPECT_LT(decoder.buffer_capacity(), 64u);  // only the empty string's inline buffer
  // The rest of the oversize frame is skipped; the next frame decodes.
  decoder.Feed("\x1c\r" + Frame("MSH|next"), &frames);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_FALSE(frames[1].oversize);
  EXPECT_EQ(frames[1].payload, "MSH|next");
  EXPECT_EQ(decoder.stats().oversize_frames, 1u);
  EXPECT_EQ(decoder.stats().junk_bytes, 0u);
}

TEST(FrameDecoderOversizeTest, OversizeInOneReadIsReportedOnce) {
  FrameDecoder decoder(100, 10);
  std::vector<DecodedFrame> frames;
  decoder.Feed(Frame(std::string(500, 'z')) + Frame("ok"), &frames);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].oversize);
  EXPECT_EQ(frames[0].payload, std::string(10, 'z'));
  EXPECT_EQ(frames[1].payload, "ok");
}

}  // namespace
}  // namespace bridge::mllp
