// Table-driven tests of the SMTP client's sans-I/O parts: outcome
// classification, MX ordering and the loop check (reply parsing, EHLO
// capabilities and dot-stuffing are tested beside smtp/protocol/server_reply).
// RFC sections are named in the case names.
#include <gtest/gtest.h>

#include <random>

#include "smtp/client/outcome.hpp"
#include "smtp/client/route.hpp"
#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::smtp::client {
namespace {

// The reply the lines make (an empty one when they do not make one).
ServerReply parse_all(const std::vector<std::string>& lines) {
  protocol::ReplyParser p;
  for (const auto& l : lines) {
    auto st = p.feed(l);
    if (st == protocol::ReplyParser::Status::complete) return p.take();
    if (st == protocol::ReplyParser::Status::error) break;
  }
  return ServerReply{};
}

TEST(Classify, Replies) {
  struct Case {
    std::string name;
    std::vector<std::string> lines;
    Stage stage;
    Outcome::Kind kind;
    std::string status;
    bool next;
    bool rate;
  };
  using K = Outcome::Kind;
  const std::vector<Case> cases = {
      {"2xx_delivered", {"250 2.0.0 OK"}, Stage::body, K::delivered, "2.0.0", false, false},
      {"2xx_without_enhanced", {"250 OK"}, Stage::body, K::delivered, "2.0.0", false, false},
      {"rfc5321_5.1_5xx_rcpt_final", {"550 5.7.1 disabled"}, Stage::rcpt, K::permanent, "5.7.1", false, false},
      {"5xx_end_of_data_final", {"552 5.7.0 virus"}, Stage::body, K::permanent, "5.7.0", false, false},
      {"5xx_mail_final", {"553 5.1.8 bad sender"}, Stage::mail, K::permanent, "5.1.8", false, false},
      {"5xx_no_enhanced", {"554 no"}, Stage::data, K::permanent, "5.0.0", false, false},
      {"4xx_next_host", {"451 4.7.0 Temporary System Problem"}, Stage::rcpt, K::temporary, "4.7.0", true, false},
      {"rfc3463_mismatch", {"451 5.7.0 odd"}, Stage::rcpt, K::temporary, "4.0.0", true, false},
      {"rfc3.1_554_greeting_next_host", {"554 5.3.2 no service"}, Stage::greeting, K::temporary, "4.3.2", true, false},
      {"gmail_rate_4.7.28", {"421 4.7.28 unusual rate"}, Stage::mail, K::temporary, "4.7.28", true, true},
      {"gmail_rate_4.7.0", {"421-4.7.0 Our system has detected an unusual rate", "421 4.7.0 of unsolicited mail"},
       Stage::mail, K::temporary, "4.7.0", true, true},
      {"451_4.7.0_no_rate_word", {"451 4.7.0 Try again later"}, Stage::body, K::temporary, "4.7.0", true, false},
  };
  for (const auto& c : cases) {
    auto o = classify(parse_all(c.lines), c.stage);
    EXPECT_EQ(o.kind, c.kind) << c.name;
    EXPECT_EQ(o.status, c.status) << c.name << ": got " << o.status << ", want " << c.status;
    EXPECT_EQ(o.try_next_host, c.next) << c.name;
    EXPECT_EQ(o.rate_limited, c.rate) << c.name;
  }
  // The detail is the reply exactly as the server said it.
  EXPECT_EQ(classify(parse_all({"550 5.7.1 The email account that you tried to reach is disabled."}), Stage::rcpt)
                .detail,
            "550 5.7.1 The email account that you tried to reach is disabled.");
}

TEST(Classify, Failures) {
  struct Case {
    Failure f;
    Outcome::Kind kind;
    std::string status;
    bool next;
  };
  using K = Outcome::Kind;
  const std::vector<Case> cases = {
      {Failure::dns_temp, K::temporary, "4.4.3", false},      {Failure::dns_nxdomain, K::permanent, "5.1.2", false},
      {Failure::null_mx, K::permanent, "5.1.10", false},      {Failure::unroutable, K::permanent, "5.4.4", false},
      {Failure::loop, K::permanent, "5.4.6", false},          {Failure::connect_refused, K::temporary, "4.4.1", true},
      {Failure::connect_timeout, K::temporary, "4.4.1", true}, {Failure::timeout, K::temporary, "4.4.2", true},
      {Failure::connection_lost, K::temporary, "4.4.2", true}, {Failure::tls, K::temporary, "4.7.5", true},
      {Failure::protocol, K::temporary, "4.5.0", true},        {Failure::local, K::temporary, "4.3.0", false},
  };
  for (const auto& c : cases) {
    auto o = classify(c.f, "why");
    EXPECT_EQ(o.kind, c.kind) << c.status;
    EXPECT_EQ(o.status, c.status);
    EXPECT_EQ(o.try_next_host, c.next) << c.status;
    EXPECT_EQ(o.detail, "why");
  }
}

TEST(Route, Rfc5321_5_1_OrderAndShuffle) {
  std::mt19937 rng(42);
  std::vector<MxHost> mx = {{20, "b"}, {10, "a1"}, {10, "a2"}, {30, "c"}};
  bool saw_a1_first = false, saw_a2_first = false;
  for (int i = 0; i < 50; ++i) {
    auto o = order_mx(mx, "", rng);
    ASSERT_EQ(o.size(), 4u);
    EXPECT_EQ(o[0].preference, 10);
    EXPECT_EQ(o[2].name, "b");
    EXPECT_EQ(o[3].name, "c");
    (o[0].name == "a1" ? saw_a1_first : saw_a2_first) = true;
  }
  EXPECT_TRUE(saw_a1_first && saw_a2_first) << "equal preferences must be randomised";
}

TEST(Route, Rfc5321_5_1_OwnNameDropsItAndWorse) {
  std::mt19937 rng(1);
  bool self = false;
  auto o = order_mx({{10, "mx1.example.test"}, {20, "MX.Example.Test."}, {30, "backup"}}, "mx.example.test", rng,
                    &self);
  EXPECT_TRUE(self);
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].name, "mx1.example.test");
  auto none = order_mx({{10, "mx.example.test"}}, "mx.example.test", rng, &self);
  EXPECT_TRUE(none.empty());
}

TEST(Route, Rfc7505_NullMx) {
  EXPECT_TRUE(is_null_mx({{0, ""}}));
  EXPECT_TRUE(is_null_mx({{0, "."}}));
  EXPECT_FALSE(is_null_mx({{0, ""}, {10, "mx"}}));
  EXPECT_FALSE(is_null_mx({{10, "mx"}}));
  std::mt19937 rng(1);
  auto o = order_mx({{0, ""}, {10, "mx"}}, "", rng);  // "." among real hosts is dropped
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].name, "mx");
}

TEST(Route, OwnListenerLoop) {
  config::Listen listen;
  listen.smtp = {{"127.0.0.1", 2525}};
  listen.submission = {{"0.0.0.0", 587}};
  EXPECT_TRUE(listen.is_own("127.0.0.1", 2525));
  EXPECT_FALSE(listen.is_own("127.0.0.2", 2525));
  EXPECT_FALSE(listen.is_own("127.0.0.1", 25));
  EXPECT_TRUE(listen.is_own("127.0.0.9", 587));  // wildcard covers loopback
  EXPECT_FALSE(listen.is_own("192.0.2.1", 587));
}

}  // namespace
}  // namespace hikyaku::smtp::client
