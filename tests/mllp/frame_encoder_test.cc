#include "mllp/frame_encoder.h"

#include <gtest/gtest.h>

namespace bridge::mllp {
namespace {

TEST(FrameEncoderTest, WrapsPayloadInBlockCharacters) {
  EXPECT_EQ(Frame("MSH|1"), std::string("\x0bMSH|1\x1c\x0d"));
  EXPECT_EQ(Frame(""), std::string("\x0b\x1c\x0d"));
}

TEST(FrameEncoderTest, AppendFrameKeepsExistingBytes) {
  std::string out = Frame("A");
  AppendFrame("B", &out);
  EXPECT_EQ(out, Frame("A") + Frame("B"));
}

TEST(FrameEncoderTest, IsFrameableRejectsBlockCharacters) {
  EXPECT_TRUE(IsFrameable("MSH|^~\\&|A\rPID|1\r"));
  EXPECT_FALSE(IsFrameable(std::string("MSH\x0b", 4)));
  EXPECT_FALSE(IsFrameable(std::string("MSH\x1c", 4)));
}

}  // namespace
}  // namespace bridge::mllp
