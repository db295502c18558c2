// SPF macro expansion and record parsing tables: RFC 7208 §7.4's own
// examples, plus parser edge cases from §4.6.1, §5 and §12.
#include <gtest/gtest.h>

#include "auth/spf/macro.hpp"
#include "auth/spf/record.hpp"

namespace hikyaku::auth::spf {
namespace {

MacroContext rfc_context(std::string_view ip) {
  // RFC 7208 §7.4: sender strong-bad@email.example.com, IP 192.0.2.3 or 2001:db8::cb01.
  MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local_part = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = *dns::IpAddress::parse(ip);
  c.helo = "mx.example.org";
  c.receiver = "mx.hikyaku.test";
  c.now_unix = 1700000000;
  return c;
}

TEST(SpfMacro, Rfc7208_7_4_Examples) {
  struct Case {
    const char* in;
    const char* ip;
    const char* want;
  };
  const Case cases[] = {
      {"%{s}", "192.0.2.3", "strong-bad@email.example.com"},
      {"%{o}", "192.0.2.3", "email.example.com"},
      {"%{d}", "192.0.2.3", "email.example.com"},
      {"%{d4}", "192.0.2.3", "email.example.com"},
      {"%{d3}", "192.0.2.3", "email.example.com"},
      {"%{d2}", "192.0.2.3", "example.com"},
      {"%{d1}", "192.0.2.3", "com"},
      {"%{dr}", "192.0.2.3", "com.example.email"},
      {"%{d2r}", "192.0.2.3", "example.email"},
      {"%{l}", "192.0.2.3", "strong-bad"},
      {"%{l-}", "192.0.2.3", "strong.bad"},
      {"%{lr}", "192.0.2.3", "strong-bad"},
      {"%{lr-}", "192.0.2.3", "bad.strong"},
      {"%{l1r-}", "192.0.2.3", "strong"},
      {"%{ir}.%{v}._spf.%{d2}", "192.0.2.3", "3.2.0.192.in-addr._spf.example.com"},
      {"%{lr-}.lp._spf.%{d2}", "192.0.2.3", "bad.strong.lp._spf.example.com"},
      {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "192.0.2.3",
       "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
      {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "192.0.2.3",
       "3.2.0.192.in-addr.strong.lp._spf.example.com"},
      {"%{d2}.trusted-domains.example.net", "192.0.2.3", "example.com.trusted-domains.example.net"},
      {"%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01",
       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
      {"%%%_%-", "192.0.2.3", "% %20"},
      {"%{h}", "192.0.2.3", "mx.example.org"},
  };
  for (const auto& c : cases) {
    auto got = expand_macros(c.in, rfc_context(c.ip), false);
    ASSERT_TRUE(got.ok()) << c.in << ": " << got.error().message;
    EXPECT_EQ(got.value(), c.want) << c.in;
  }
}

TEST(SpfMacro, Rfc7208_7_3_UrlEscapeAndExplainOnlyMacros) {
  auto ctx = rfc_context("192.0.2.3");
  ctx.local_part = "a b/c";
  EXPECT_EQ(expand_macros("%{L}", ctx, false).value(), "a%20b%2Fc");
  // RFC 7208 §7.2: c, r, t only in exp= text.
  EXPECT_FALSE(expand_macros("%{c}", ctx, false).ok());
  EXPECT_EQ(expand_macros("%{c} %{r} %{t}", ctx, true).value(), "192.0.2.3 mx.hikyaku.test 1700000000");
  auto v6 = rfc_context("2001:db8::cb01");
  EXPECT_EQ(expand_macros("%{c}", v6, true).value(), "2001:db8::cb01");
  // Errors: zero digit, unknown letter, bad escape, unterminated.
  for (const char* bad : {"%{d0}", "%{x}", "%x", "%{d", "%", "a b"})
    EXPECT_FALSE(expand_macros(bad, ctx, false).ok()) << bad;
}

TEST(SpfMacro, Rfc7208_7_3_TruncateTo253) {
  auto ctx = rfc_context("192.0.2.3");
  ctx.local_part = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
                   std::string(60, 'd') + "." + std::string(60, 'e');
  auto got = expand_domain_spec("%{l}.example.com", ctx);
  ASSERT_TRUE(got.ok());
  EXPECT_LE(got->size(), 253u);
  EXPECT_TRUE(got->starts_with("ccc")) << *got;  // 316 → 255 → 194 octets
}

TEST(SpfRecord, Rfc7208_4_6_1_and_5_Parse) {
  struct Case {
    const char* name;
    const char* txt;
    bool ok;
  };
  const Case cases[] = {
      {"RFC7208_4_5_version_only", "v=spf1", true},
      {"RFC7208_4_5_version_case", "V=SPF1 -ALL", true},
      {"RFC7208_5_all_mechanisms",
       "v=spf1 +all -include:a.example ~a ?a:b.example/24//64 mx mx:c.example/0 ptr ptr:d.example "
       "ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.e.example",
       true},
      {"RFC7208_6_modifiers", "v=spf1 redirect=a.example exp=explain.%{d} unknown-mod=%{l}", true},
      {"RFC7208_6_duplicate_redirect", "v=spf1 redirect=a.example redirect=b.example", false},
      {"RFC7208_6_duplicate_exp", "v=spf1 exp=a.example exp=b.example", false},
      {"RFC7208_5_1_all_with_arg", "v=spf1 all:foo.example", false},
      {"RFC7208_5_2_include_needs_domain", "v=spf1 include", false},
      {"RFC7208_5_2_include_no_cidr", "v=spf1 include:a.example/24", false},
      {"RFC7208_5_6_ip4_cidr_33", "v=spf1 ip4:192.0.2.0/33", false},
      {"RFC7208_5_6_ip4_leading_zero_cidr", "v=spf1 ip4:192.0.2.0/024", false},
      {"RFC7208_5_6_ip4_with_v6", "v=spf1 ip4:2001:db8::1", false},
      {"RFC7208_5_6_ip6_cidr_129", "v=spf1 ip6:2001:db8::/129", false},
      {"RFC7208_5_3_a_dual_cidr_too_long", "v=spf1 a//129", false},
      {"RFC7208_4_6_1_unknown_mechanism", "v=spf1 foo", false},
      {"RFC7208_4_6_1_tab_is_not_a_separator", "v=spf1\t-all", false},
      {"RFC7208_7_1_domain_end_toplabel", "v=spf1 a:foo-bar", false},
      {"RFC7208_7_1_domain_end_numeric_toplabel", "v=spf1 a:example.123", false},
      {"RFC7208_7_1_domain_end_macro", "v=spf1 a:%{d}", true},
      {"RFC7208_7_1_bad_macro_in_modifier", "v=spf1 foo=%{q}", false},
      {"RFC7208_3_1_non_ascii", "v=spf1 a:\xc3\xa9.example", false},
      {"RFC7208_4_5_not_spf", "v=spf10", false},
  };
  for (const auto& c : cases) {
    auto r = parse_record(c.txt);
    EXPECT_EQ(r.ok(), c.ok) << c.name << (r.ok() ? "" : ": " + r.error().message);
  }
  auto r = parse_record("v=spf1 -a:mail.example/28//64 ip6:2001:db8::/48");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->mechanisms.size(), 2u);
  EXPECT_EQ(r->mechanisms[0].qualifier, Qualifier::fail);
  EXPECT_EQ(r->mechanisms[0].domain_spec, "mail.example");
  EXPECT_EQ(r->mechanisms[0].cidr4, 28);
  EXPECT_EQ(r->mechanisms[0].cidr6, 64);
  EXPECT_EQ(r->mechanisms[1].cidr6, 48);
}

}  // namespace
}  // namespace hikyaku::auth::spf
