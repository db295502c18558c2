// The SMTP AUTH exchange (RFC 4954 §4) as a table of conversations: the
// AUTH argument, the client's lines, and what the server must answer.
#include "smtp/protocol/auth_exchange.hpp"

#include <gtest/gtest.h>

namespace hikyaku::smtp::protocol {
namespace {

using Kind = AuthExchange::Step::Kind;

TEST(AuthExchange, PlainWithInitialResponse_RFC4954_4_RFC4616_2) {
  AuthExchange x;
  auto s = x.start("PLAIN AGFsaWNlAHNlY3JldA==");  // "\0alice\0secret"
  ASSERT_EQ(s.kind, Kind::verify);
  EXPECT_FALSE(s.refused);
  EXPECT_EQ(x.mechanism(), "PLAIN");
  EXPECT_EQ(x.user(), "alice");
  EXPECT_EQ(x.take_password(), "secret");
}

TEST(AuthExchange, PlainWithoutInitialResponseGetsAnEmptyChallenge_RFC4954_4) {
  AuthExchange x;
  auto s = x.start("plain");
  ASSERT_EQ(s.kind, Kind::challenge);
  EXPECT_EQ(s.reply.wire(true), "334 \r\n");
  s = x.respond("YWxpY2UAYWxpY2UAc2VjcmV0");  // "alice\0alice\0secret": authzid = authcid
  ASSERT_EQ(s.kind, Kind::verify);
  EXPECT_FALSE(s.refused);
  EXPECT_EQ(x.user(), "alice");
}

TEST(AuthExchange, ProxyLoginFailsLikeAWrongPassword_RFC4616_2) {
  AuthExchange x;
  auto s = x.start("PLAIN Ym9iAGFsaWNlAHNlY3JldA==");  // "bob\0alice\0secret"
  ASSERT_EQ(s.kind, Kind::verify);
  EXPECT_TRUE(s.refused);
  EXPECT_TRUE(x.take_password().empty());
}

TEST(AuthExchange, LoginAsksForUserThenPassword) {
  AuthExchange x;
  auto s = x.start("LOGIN");
  ASSERT_EQ(s.kind, Kind::challenge);
  EXPECT_EQ(s.reply.wire(true), "334 VXNlcm5hbWU6\r\n");
  s = x.respond("YWxpY2U=");
  ASSERT_EQ(s.kind, Kind::challenge);
  EXPECT_EQ(s.reply.wire(true), "334 UGFzc3dvcmQ6\r\n");
  s = x.respond("c2VjcmV0");
  ASSERT_EQ(s.kind, Kind::verify);
  EXPECT_EQ(x.mechanism(), "LOGIN");
  EXPECT_EQ(x.user(), "alice");
  EXPECT_EQ(x.take_password(), "secret");
  // Over: a further line is out of sequence.
  EXPECT_EQ(x.respond("eA==").reply.code, 503);
}

TEST(AuthExchange, Refusals_RFC4954_4_and_6) {
  struct Case {
    const char* argument;
    const char* line;  // nullptr: none
    int code;
    const char* status;
  };
  const Case cases[] = {
      {"CRAM-MD5", nullptr, 504, "5.5.4"},         // not offered
      {"", nullptr, 501, "5.5.4"},                 // no mechanism
      {"PLAIN a b", nullptr, 501, "5.5.4"},        // two responses
      {"PLAIN !!!", nullptr, 501, "5.5.2"},        // not base64
      {"PLAIN =", nullptr, 501, "5.5.2"},          // empty: not a PLAIN message
      {"PLAIN AGFsaWNl", nullptr, 501, "5.5.2"},   // "\0alice": no password
      {"PLAIN", "*", 501, "5.7.0"},                // cancelled
      {"LOGIN", "*", 501, "5.7.0"},
      {"LOGIN", "=", 501, "5.5.2"},                // an empty user name
      {"LOGIN", "%%%", 501, "5.5.2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.argument) + " / " + (c.line ? c.line : "-"));
    AuthExchange x;
    auto s = x.start(c.argument);
    if (c.line != nullptr) {
      ASSERT_EQ(s.kind, Kind::challenge);
      s = x.respond(c.line);
    }
    ASSERT_EQ(s.kind, Kind::refuse);
    EXPECT_EQ(s.reply.code, c.code);
    EXPECT_EQ(s.reply.status, c.status);
  }
}

}  // namespace
}  // namespace hikyaku::smtp::protocol
