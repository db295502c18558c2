// resolve_route() (RFC 5321 §5.1, RFC 7505) against dns::FakeResolver.
#include "smtp/client/route.hpp"

#include <gtest/gtest.h>

#include "dns/fake_resolver.hpp"

namespace hikyaku::smtp::client {
namespace {

TEST(ResolveRoute, Rfc5321_5_1_MxOrderWithAddresses) {
  dns::FakeResolver r;
  r.add_mx("gmail.test", 20, "alt1.gmail.test");
  r.add_mx("gmail.test", 10, "mx.gmail.test");
  r.add_a("mx.gmail.test", "127.0.0.2");
  r.add_a("mx.gmail.test", "::2");
  r.add_a("alt1.gmail.test", "127.0.0.3");
  std::mt19937 rng(7);
  auto route = resolve_route(r, "gmail.test", "mx.example.test", rng);
  ASSERT_FALSE(route.failure);
  ASSERT_EQ(route.hosts.size(), 2u);
  EXPECT_EQ(route.hosts[0].name, "mx.gmail.test");
  EXPECT_EQ(route.hosts[0].addresses, (std::vector<std::string>{"127.0.0.2", "::2"}));  // A before AAAA
  EXPECT_EQ(route.hosts[1].addresses, (std::vector<std::string>{"127.0.0.3"}));
}

TEST(ResolveRoute, Failures) {
  dns::FakeResolver r;
  r.add_mx("nullmx.test", 0, "");
  r.add_a("implicit.test", "127.0.0.3");
  r.add_mx("self.test", 10, "mx.example.test");
  r.add_mx("noaddr.test", 10, "ghost.test");
  r.add_mx("tempaddr.test", 10, "flaky.test");
  r.set_temp_error("flaky.test");
  r.set_temp_error("servfail.test");
  struct Case {
    std::string name, domain;
    bool fail;
    Outcome::Kind kind;
    std::string status;
  };
  using K = Outcome::Kind;
  const std::vector<Case> cases = {
      {"rfc7505_null_mx", "nullmx.test", true, K::permanent, "5.1.10"},
      {"nxdomain", "nowhere.test", true, K::permanent, "5.1.2"},
      {"dns_temp", "servfail.test", true, K::temporary, "4.4.3"},
      {"rfc5321_5.1_own_name_only", "self.test", true, K::permanent, "5.4.6"},
      {"no_address", "noaddr.test", true, K::permanent, "5.4.4"},
      {"address_lookup_temp", "tempaddr.test", true, K::temporary, "4.4.3"},
      {"rfc5321_5.1_implicit_mx", "implicit.test", false, K::temporary, ""},
  };
  for (const auto& c : cases) {
    std::mt19937 rng(1);
    auto route = resolve_route(r, c.domain, "mx.example.test", rng);
    ASSERT_EQ(route.failure.has_value(), c.fail) << c.name;
    if (!c.fail) {
      ASSERT_EQ(route.hosts.size(), 1u) << c.name;
      EXPECT_EQ(route.hosts[0].name, c.domain) << c.name;
      continue;
    }
    EXPECT_EQ(route.failure->kind, c.kind) << c.name;
    EXPECT_EQ(route.failure->status, c.status) << c.name << ": got " << route.failure->status;
  }
}

// RFC 5321 §4.1.3, §5.1: an address literal is the host itself; no MX
// lookup is made (the fake resolver knows no such names: a lookup would
// answer NXDOMAIN).
TEST(ResolveRoute, Rfc5321_4_1_3_AddressLiterals) {
  dns::FakeResolver r;
  std::mt19937 rng(1);
  auto v4 = resolve_route(r, "[127.0.0.9]", "mx.example.test", rng);
  ASSERT_FALSE(v4.failure) << v4.failure->detail;
  ASSERT_EQ(v4.hosts.size(), 1u);
  EXPECT_EQ(v4.hosts[0].addresses, (std::vector<std::string>{"127.0.0.9"}));
  auto v6 = resolve_route(r, "[IPv6:::1]", "mx.example.test", rng);
  ASSERT_FALSE(v6.failure) << v6.failure->detail;
  EXPECT_EQ(v6.hosts.at(0).addresses, (std::vector<std::string>{"::1"}));
  for (const char* bad : {"[127.0.0.999]", "[::1]", "[IPv6:127.0.0.1]", "[example.test]"}) {
    auto route = resolve_route(r, bad, "mx.example.test", rng);
    ASSERT_TRUE(route.failure) << bad;
    EXPECT_EQ(route.failure->status, "5.4.4") << bad;
    EXPECT_EQ(route.failure->kind, Outcome::Kind::permanent) << bad;
  }
}

}  // namespace
}  // namespace hikyaku::smtp::client
