// SPF decided on the event-loop path: check_host() run through
// dns::resolve_then() (answers fetched asynchronously, the check re-run
// until it misses nothing) gives the same Outcome as the synchronous check
// against the same zone. Here rather than in dns/ because dns may not
// depend on auth.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "auth/spf/check.hpp"
#include "dns/fake_resolver.hpp"
#include "dns/resolution.hpp"

namespace hikyaku::auth::spf {
namespace {

// include: chains three deep, mx with two hosts, a:, exists:, an include
// that does not exist and one whose server fails.
void load(dns::FakeResolver& z) {
  z.add_txt("example.test", "v=spf1 include:one.example.test mx a:host.example.test -all");
  z.add_txt("one.example.test", "v=spf1 include:two.example.test ~all");
  z.add_txt("two.example.test", "v=spf1 include:three.example.test ?all");
  z.add_txt("three.example.test", "v=spf1 ip4:198.51.100.0/24 -all");
  z.add_mx("example.test", 10, "mx1.example.test");
  z.add_mx("example.test", 20, "mx2.example.test");
  z.add_a("mx1.example.test", "192.0.2.10");
  z.add_a("mx2.example.test", "192.0.2.20");
  z.add_a("mx2.example.test", "2001:db8::20");
  z.add_a("host.example.test", "203.0.113.5");
  z.add_txt("exists.test", "v=spf1 exists:%{ir}.allow.exists.test -all");
  z.add_a("5.113.0.203.allow.exists.test", "127.0.0.2");
  z.add_txt("missing.test", "v=spf1 include:nowhere.test -all");
  z.add_txt("broken.test", "v=spf1 include:down.test -all");
  z.set_temp_error("down.test");
  z.add_txt("exp.test", "v=spf1 -all exp=why.exp.test");
  z.add_txt("why.exp.test", "%{i} is not one of %{d}'s hosts");
}

struct Case {
  const char* name;
  const char* ip;
  const char* mail_from;
};

constexpr Case kCases[] = {
    {"include chain pass (RFC 7208 §5.2)", "198.51.100.7", "ann@example.test"},
    {"mx pass, second host (RFC 7208 §5.4)", "192.0.2.20", "ann@example.test"},
    {"mx pass over IPv6", "2001:db8::20", "ann@example.test"},
    {"a: pass (RFC 7208 §5.3)", "203.0.113.5", "ann@example.test"},
    {"fail after every term", "192.0.2.99", "ann@example.test"},
    {"exists: with macros (RFC 7208 §5.7, §7)", "203.0.113.5", "ann@exists.test"},
    {"exists: no match", "203.0.113.6", "ann@exists.test"},
    {"include of a missing domain: permerror (RFC 7208 §5.2)", "192.0.2.1", "ann@missing.test"},
    {"include whose server fails: temperror (RFC 7208 §2.6.7)", "192.0.2.1", "ann@broken.test"},
    {"no SPF record: none", "192.0.2.1", "ann@nowhere.test"},
    {"exp= explanation (RFC 7208 §6.2)", "192.0.2.1", "ann@exp.test"},
};

Options options() {
  Options o;
  o.receiver = "mx.hk.test";
  o.now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  return o;
}

Outcome check_async(dns::FakeResolver& zone, const dns::IpAddress& ip, const std::string& mail_from,
                    int& decisions) {
  std::optional<Outcome> got;
  decisions = 0;
  dns::resolve_then<Outcome>(
      zone,
      [&](dns::Resolver& r) {
        ++decisions;
        return check_mail_from(r, ip, mail_from, "helo.client.test", options());
      },
      [&](Outcome o) { got = std::move(o); });
  while (!got && zone.deliver_pending(/*newest_first=*/true) > 0) {
  }
  EXPECT_TRUE(got) << "resolve_then never finished";
  return got.value_or(Outcome{});
}

TEST(SpfThroughResolveThen, SameOutcomeAsTheSynchronousCheck) {
  for (bool deferred : {false, true}) {
    for (const auto& c : kCases) {
      SCOPED_TRACE(std::string(c.name) + (deferred ? " (answers delivered later)" : " (immediate)"));
      auto ip = dns::IpAddress::parse(c.ip);
      ASSERT_TRUE(ip);
      dns::FakeResolver sync_zone;
      load(sync_zone);
      Outcome want = check_mail_from(sync_zone, *ip, c.mail_from, "helo.client.test", options());

      dns::FakeResolver async_zone;
      load(async_zone);
      async_zone.set_deferred(deferred);
      int decisions = 0;
      Outcome got = check_async(async_zone, *ip, c.mail_from, decisions);
      EXPECT_EQ(to_string(got.result), to_string(want.result));
      EXPECT_EQ(got.explanation, want.explanation);
      EXPECT_EQ(got.detail, want.detail);
      EXPECT_GE(decisions, 1);
      EXPECT_LE(async_zone.queries(), sync_zone.queries()) << "no question asked twice";
    }
  }
}

TEST(SpfThroughResolveThen, ExpectedResults_RFC7208_2_6) {
  // Guards against both paths being wrong the same way.
  struct Want {
    const char* ip;
    const char* mail_from;
    Result result;
  };
  const Want wants[] = {
      {"198.51.100.7", "ann@example.test", Result::pass},   {"192.0.2.20", "ann@example.test", Result::pass},
      {"203.0.113.5", "ann@example.test", Result::pass},    {"192.0.2.99", "ann@example.test", Result::fail},
      {"203.0.113.5", "ann@exists.test", Result::pass},     {"192.0.2.1", "ann@missing.test", Result::permerror},
      {"192.0.2.1", "ann@broken.test", Result::temperror},  {"192.0.2.1", "ann@nowhere.test", Result::none},
  };
  for (const auto& w : wants) {
    dns::FakeResolver zone;
    load(zone);
    zone.set_deferred(true);
    int decisions = 0;
    Outcome got = check_async(zone, *dns::IpAddress::parse(w.ip), w.mail_from, decisions);
    EXPECT_EQ(to_string(got.result), to_string(w.result)) << w.ip << " " << w.mail_from << ": " << got.detail;
  }
  dns::FakeResolver zone;
  load(zone);
  int decisions = 0;
  Outcome exp = check_async(zone, *dns::IpAddress::parse("192.0.2.1"), "ann@exp.test", decisions);
  EXPECT_EQ(exp.explanation, "192.0.2.1 is not one of exp.test's hosts");
}

}  // namespace
}  // namespace hikyaku::auth::spf
