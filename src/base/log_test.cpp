#include "base/log.hpp"

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

// RFC 8259 §7: the message is escaped, so a line is always one valid JSON
// object, whatever a peer managed to put into it.
TEST(JsonLogLine, EscapesEverythingThatCouldBreakTheObject_RFC8259_7) {
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764770400123));
  EXPECT_EQ(json_log_line(t, "info", "smtpd", "plain text"),
            R"({"time":"2025-12-03T14:00:00.123Z","level":"info","logger":"smtpd","msg":"plain text"})");
  EXPECT_EQ(json_log_line(t, "warn", "q", "a \"quoted\" \\ back\r\n\tx\x7f"),
            R"({"time":"2025-12-03T14:00:00.123Z","level":"warn","logger":"q","msg":"a \"quoted\" \\ back\u000d\u000a\u0009x\u007f"})");
  // Well-formed UTF-8 stays as it is; a stray byte becomes \u00XX.
  EXPECT_NE(json_log_line(t, "info", "q", "δ").find(R"("msg":"δ")"), std::string::npos);
  EXPECT_NE(json_log_line(t, "info", "q", "a\xff").find(R"("msg":"a\u00ff")"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::base
