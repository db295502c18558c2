#include "net/line_buffer.hpp"

#include <gtest/gtest.h>

namespace hikyaku::net {
namespace {

TEST(LineBuffer, SplitsCrlfAndFlagsBareLf_RFC5321_2_3_8) {
  LineBuffer b(100);
  b.append("EHLO a\r\nNOOP\nQU");
  std::string line;
  bool bare = false;
  ASSERT_EQ(b.next(line, bare), LineBuffer::Status::line);
  EXPECT_EQ(line, "EHLO a");
  EXPECT_FALSE(bare);
  ASSERT_EQ(b.next(line, bare), LineBuffer::Status::line);
  EXPECT_EQ(line, "NOOP");
  EXPECT_TRUE(bare);
  EXPECT_EQ(b.next(line, bare), LineBuffer::Status::need_more);
  b.append("IT\r\n");
  ASSERT_EQ(b.next(line, bare), LineBuffer::Status::line);
  EXPECT_EQ(line, "QUIT");
}

TEST(LineBuffer, TooLongLineIsReportedOnceAndSkipped) {
  LineBuffer b(8);
  b.append(std::string(20, 'x'));
  std::string line;
  bool bare = false;
  EXPECT_EQ(b.next(line, bare), LineBuffer::Status::too_long);
  b.append("yyy\r\nNOOP\r\n");
  ASSERT_EQ(b.next(line, bare), LineBuffer::Status::line);
  EXPECT_EQ(line, "NOOP");
  b.append("0123456789\r\n");
  EXPECT_EQ(b.next(line, bare), LineBuffer::Status::too_long);
  EXPECT_EQ(b.next(line, bare), LineBuffer::Status::need_more);
}

}  // namespace
}  // namespace hikyaku::net
