#include "admin/control.hpp"

#include <gtest/gtest.h>

#include <string>

namespace hikyaku::admin {
namespace {


TEST(ControlProtocol, FlushRequestsRoundTrip) {
  for (const ControlRequest& r : {ControlRequest{}, ControlRequest{ControlRequest::Kind::flush, "", "gmail.com"}}) {
    auto parsed = parse_control_request(format_control_request(r));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->queue_id, r.queue_id);
    EXPECT_EQ(parsed->destination, r.destination);
  }
  auto both = parse_control_request("flush id 0123456789abc destination Gmail.COM\n");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->queue_id, "0123456789abc");
  EXPECT_EQ(both->destination, "gmail.com");
}

TEST(ControlProtocol, MalformedRequestsAreNamed) {
  const struct {
    const char* line;
    const char* error;
  } cases[] = {
      {"", "unknown request"},
      {"FLUSH", "unknown request"},
      {"reboot", "unknown request"},
      {"flush id", "'id' needs a value"},
      {"flush id ../../etc/passwd", "not a queue id"},
      {"flush destination gmail.com destination x.test", "unexpected 'destination'"},
      {"flush destination a@b", "not a domain"},
      {"flush destination .example", "not a domain"},
      {"flush everything now", "unexpected 'everything'"},
      {"flush\r\nflush", "more than one line"},
  };
  for (const auto& c : cases) {
    auto r = parse_control_request(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos) << c.line << ": " << r.error().message;
  }
  EXPECT_FALSE(parse_control_request(std::string(kMaxControlLine + 1, 'x')).ok());
}

TEST(ControlProtocol, RepliesAreOneLine) {
  EXPECT_EQ(format_control_reply({true, "2 deliveries made due"}), "ok 2 deliveries made due\r\n");
  EXPECT_EQ(format_control_reply({false, "bad\r\nline"}), "error bad  line\r\n");
  auto ok = parse_control_reply("ok 2 deliveries made due\r\n");
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.text, "2 deliveries made due");
  auto err = parse_control_reply("error not a queue id: x\n");
  EXPECT_FALSE(err.ok);
  EXPECT_EQ(err.text, "not a queue id: x");
  EXPECT_FALSE(parse_control_reply("HTTP/1.1 400 Bad Request").ok);
}

}  // namespace
}  // namespace hikyaku::admin
