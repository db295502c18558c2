#include "mail/address.hpp"

#include <gtest/gtest.h>

#include "mail/reply.hpp"

namespace hikyaku::mail {
namespace {

struct Case {
  const char* name;
  const char* input;
  bool allow_null;
  bool utf8;
  bool ok;
  const char* want;  // str() or "" for null path
};

TEST(Address, ParsePath_RFC5321_4_1_2) {
  const Case cases[] = {
      {"plain", "<a@b.example>", false, false, true, "a@b.example"},
      {"domain lowercased", "<User@EXAMPLE.Test>", false, false, true, "User@example.test"},
      {"null path allowed", "<>", true, false, true, ""},
      {"null path refused", "<>", false, false, false, ""},
      {"source route ignored", "<@relay.example:a@b.example>", false, false, true, "a@b.example"},
      {"quoted local", "<\"john doe\"@b.example>", false, false, true, "\"john doe\"@b.example"},
      {"no brackets", "a@b.example", false, false, false, ""},
      {"no domain", "<a@>", false, false, false, ""},
      {"no local", "<@b>", false, false, false, ""},
      {"double dot", "<a..b@c.example>", false, false, false, ""},
      {"utf8 refused without SMTPUTF8", "<j\xc3\xb6rg@b.example>", false, false, false, ""},
      {"utf8 with SMTPUTF8", "<j\xc3\xb6rg@b.example>", false, true, true, "j\xc3\xb6rg@b.example"},
      {"address literal", "<a@[127.0.0.1]>", false, false, true, "a@[127.0.0.1]"},
      {"space inside", "<a b@c>", false, false, false, ""},
      {"unterminated", "<a@b", false, false, false, ""},
  };
  for (const auto& c : cases) {
    auto r = parse_path(c.input, c.allow_null, c.utf8);
    EXPECT_EQ(r.ok, c.ok) << c.name;
    if (r.ok) {
      EXPECT_EQ(r.address ? r.address->str() : "", c.want) << c.name;
    }
  }
}

TEST(Address, DomainOfIsLowercaseAfterTheLastAt) {
  EXPECT_EQ(domain_of("Alice@Gmail.Test"), "gmail.test");
  EXPECT_EQ(domain_of("\"a@b\"@Example.Test"), "example.test");
  EXPECT_EQ(domain_of("nodomain"), "");
}

TEST(Address, ParsePathKeepsParameters) {
  auto r = parse_path("<a@b.example> SIZE=100 BODY=8BITMIME", false, false);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.rest, " SIZE=100 BODY=8BITMIME");
}

TEST(Reply, WireMultiline_RFC5321_4_2_1) {
  Reply r;
  r.code = 250;
  r.lines = {"mx.example", "PIPELINING", "SIZE 100"};
  EXPECT_EQ(r.wire(), "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
  Reply e(550, "5.1.1", "No such user");
  EXPECT_EQ(e.wire(), "550 5.1.1 No such user\r\n");
  EXPECT_EQ(e.wire(false), "550 No such user\r\n");
}

}  // namespace
}  // namespace hikyaku::mail
