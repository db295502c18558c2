#include "base/access_list.hpp"

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

TEST(Cidr, Parse_RFC4632_3_1) {
  struct Case {
    const char* name;
    const char* input;
    const char* want;  // canonical str(), or nullptr: an error containing `error`
    const char* error = "";
  };
  const Case cases[] = {
      {"ipv4 /24", "192.0.2.0/24", "192.0.2.0/24"},
      {"ipv4 bare is /32", "192.0.2.7", "192.0.2.7/32"},
      {"ipv4 /0", "0.0.0.0/0", "0.0.0.0/0"},
      {"ipv4 /32", "127.0.0.66/32", "127.0.0.66/32"},
      {"ipv4 odd prefix", "10.128.0.0/9", "10.128.0.0/9"},
      {"ipv6 /32", "2001:DB8::/32", "2001:db8::/32"},
      {"ipv6 bare is /128", "::1", "::1/128"},
      {"ipv6 /0", "::/0", "::/0"},
      {"RFC4291 2.5.5.2 mapped prefix is ipv4", "::ffff:192.0.2.0/120", "192.0.2.0/24"},
      {"RFC4291 2.5.5.2 mapped host is ipv4", "::ffff:127.0.0.1", "127.0.0.1/32"},
      {"mapped block /96 is ipv4 /0", "::ffff:0:0/96", "0.0.0.0/0"},
      {"host bits set", "192.0.2.1/24", nullptr, "host bits set after /24 (the network is 192.0.2.0/24)"},
      {"ipv6 host bits set", "2001:db8::1/64", nullptr, "the network is 2001:db8::/64"},
      {"prefix too long v4", "192.0.2.0/33", nullptr, "above /32"},
      {"prefix too long v6", "::/129", nullptr, "above /128"},
      {"prefix not a number", "192.0.2.0/1a", nullptr, "not a number"},
      {"empty prefix", "192.0.2.0/", nullptr, "not a number"},
      {"signed prefix", "192.0.2.0/+8", nullptr, "not an IPv4 or IPv6 address"},
      {"two slashes", "192.0.2.0/24/8", nullptr, "not a number"},
      {"empty", "", nullptr, "empty"},
      {"hostname", "example.com", nullptr, "not an IPv4 or IPv6 address"},
      {"short ipv4", "192.0.2/24", nullptr, "not an IPv4 address"},
      {"octet out of range", "192.0.2.256", nullptr, "not an IPv4 address"},
      {"bad ipv6", "2001:db8:::1", nullptr, "not an IPv6 address"},
      {"zone not in a rule", "fe80::1%eth0", nullptr, "not an IPv4 or IPv6 address"},
      {"space", " 192.0.2.0/24", nullptr, "not an IPv4 or IPv6 address"},
  };
  for (const auto& c : cases) {
    auto got = Cidr::parse(c.input);
    if (c.want != nullptr) {
      ASSERT_TRUE(got.ok()) << c.name << ": got error " << got.error().message;
      EXPECT_EQ(got->str(), c.want) << c.name;
    } else {
      ASSERT_FALSE(got.ok()) << c.name << ": got " << got->str() << ", want an error";
      EXPECT_NE(got.error().message.find(c.error), std::string::npos)
          << c.name << ": got '" << got.error().message << "', want it to contain '" << c.error << "'";
    }
  }
}

TEST(Cidr, ANulByteIsNotCutOff) {
  EXPECT_FALSE(Cidr::parse(std::string_view("192.0.2.1\0/8", 12)).ok());
  EXPECT_FALSE(parse_client_address(std::string_view("192.0.2.1\0x", 11)));
}

TEST(Cidr, ClientAddress_RFC4291_2_5_5_2) {
  EXPECT_EQ(parse_client_address("::ffff:192.0.2.1")->str(), "192.0.2.1/32");
  EXPECT_EQ(parse_client_address("fe80::1%eth0")->str(), "fe80::1/128");  // RFC 4007 §11 zone dropped
  EXPECT_FALSE(parse_client_address("192.0.2.0/24"));
  EXPECT_FALSE(parse_client_address("?"));
  EXPECT_FALSE(parse_client_address(""));
}

AccessList rules(std::initializer_list<const char*> allow, std::initializer_list<const char*> deny) {
  AccessList out;
  for (const char* a : allow) out.allow.push_back(*Cidr::parse(a));
  for (const char* d : deny) out.deny.push_back(*Cidr::parse(d));
  return out;
}

TEST(AccessList, Permits) {
  struct Case {
    const char* name;
    AccessList list;
    const char* address;
    bool want;
  };
  const Case cases[] = {
      {"no rules allow all", {}, "203.0.113.9", true},
      {"no rules allow even garbage", {}, "?", true},
      {"allow list match", rules({"192.0.2.0/24", "127.0.0.0/8"}, {}), "127.0.0.5", true},
      {"allow list miss", rules({"192.0.2.0/24"}, {}), "198.51.100.1", false},
      {"deny only: denied", rules({}, {"127.0.0.66/32"}), "127.0.0.66", false},
      {"deny only: others allowed", rules({}, {"127.0.0.66/32"}), "127.0.0.65", true},
      {"deny wins over allow", rules({"127.0.0.0/8"}, {"127.0.0.66"}), "127.0.0.66", false},
      {"deny wins over allow, others allowed", rules({"127.0.0.0/8"}, {"127.0.0.66"}), "127.0.0.67", true},
      {"RFC4291 2.5.5.2 mapped peer matches ipv4 rule", rules({"192.0.2.0/24"}, {}), "::ffff:192.0.2.44", true},
      {"mapped peer denied by ipv4 rule", rules({}, {"192.0.2.0/24"}), "::ffff:192.0.2.44", false},
      {"ipv6 rule does not match ipv4 peer", rules({"::/0"}, {}), "192.0.2.1", false},
      {"ipv4 rule does not match ipv6 peer", rules({"0.0.0.0/0"}, {}), "2001:db8::1", false},
      {"ipv6 allow", rules({"2001:db8::/32"}, {}), "2001:db8:1::5", true},
      {"ipv6 allow miss", rules({"2001:db8::/32"}, {}), "2001:db9::5", false},
      {"odd prefix boundary in", rules({"10.128.0.0/9"}, {}), "10.255.255.255", true},
      {"odd prefix boundary out", rules({"10.128.0.0/9"}, {}), "10.127.255.255", false},
      {"unparsable peer with rules fails closed", rules({}, {"192.0.2.0/24"}), "?", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(c.list.permits(c.address), c.want) << c.name << ": got " << !c.want << ", want " << c.want;
}

}  // namespace
}  // namespace hikyaku::base
