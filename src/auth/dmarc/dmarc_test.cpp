// DMARC tests: record parsing (RFC 7489 §6.3, DMARCbis np/psd/t), the
// DMARCbis DNS tree walk (psd=, 8-query cap), RFC 7489 §3.2 PSL
// organizational domains, alignment modes (RFC 7489 §3.1) and the
// forwarder's "passed only via SPF under enforcement" helper.
#include <gtest/gtest.h>

#include "auth/dmarc/evaluate.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth::dmarc {
namespace {

TEST(DmarcRecord, Rfc7489_6_3_Parse) {
  struct Case {
    const char* name;
    const char* txt;
    bool ok;
    Policy p = Policy::none;
    std::optional<Policy> sp = std::nullopt;
    AlignmentMode adkim = AlignmentMode::relaxed;
    AlignmentMode aspf = AlignmentMode::relaxed;
    int pct = 100;
  };
  const Case cases[] = {
      {"RFC7489_6_3_minimal", "v=DMARC1; p=none", true},
      {"RFC7489_6_3_reject", "v=DMARC1;p=reject", true, Policy::reject},
      {"RFC7489_6_4_spaces_and_trailing_semicolon", " v = DMARC1 ; p = quarantine ; ", true, Policy::quarantine},
      {"RFC7489_6_3_sp", "v=DMARC1; p=reject; sp=none", true, Policy::reject, Policy::none},
      {"RFC7489_6_3_strict", "v=DMARC1; p=none; adkim=s; aspf=s", true, Policy::none, std::nullopt,
       AlignmentMode::strict, AlignmentMode::strict},
      {"RFC7489_6_3_pct", "v=DMARC1; p=quarantine; pct=20", true, Policy::quarantine, std::nullopt,
       AlignmentMode::relaxed, AlignmentMode::relaxed, 20},
      {"RFC7489_6_3_policy_case_insensitive", "v=DMARC1; p=REJECT", true, Policy::reject},
      {"RFC7489_6_3_unknown_tags_ignored", "v=DMARC1; p=none; fo=1; rf=afrf; ri=86400; x=y", true},
      {"RFC7489_6_3_v_not_first", "p=none; v=DMARC1", false},
      {"RFC7489_6_3_v_exact_value", "v=dmarc1; p=none", false},
      {"RFC7489_6_3_v_twice", "v=DMARC1; v=DMARC1; p=none", false},
      {"RFC7489_6_3_pct_over_100", "v=DMARC1; p=none; pct=101", false},
      {"RFC7489_6_3_pct_not_number", "v=DMARC1; p=none; pct=x", false},
      {"RFC7489_6_3_bad_adkim", "v=DMARC1; p=none; adkim=x", false},
      {"RFC7489_6_4_no_equals", "v=DMARC1; p", false},
      {"RFC7489_6_6_3_missing_p_no_rua", "v=DMARC1; sp=reject", false},
      {"RFC7489_6_6_3_bad_p_no_rua", "v=DMARC1; p=bogus", false},
      {"RFC7489_6_6_3_bad_p_with_rua_is_none", "v=DMARC1; p=bogus; rua=mailto:a@example.com", true},
      {"RFC7489_6_6_3_missing_p_with_rua_is_none", "v=DMARC1; rua=mailto:a@example.com", true},
  };
  for (const auto& c : cases) {
    auto r = parse_record(c.txt);
    ASSERT_EQ(r.ok(), c.ok) << c.name << (r.ok() ? "" : ": " + r.error().message);
    if (!r.ok()) continue;
    EXPECT_EQ(r->p, c.p) << c.name;
    EXPECT_EQ(r->sp, c.sp) << c.name;
    EXPECT_EQ(r->adkim, c.adkim) << c.name;
    EXPECT_EQ(r->aspf, c.aspf) << c.name;
    EXPECT_EQ(r->pct, c.pct) << c.name;
  }
}

TEST(DmarcRecord, DmarcBis_np_psd_t_rua) {
  auto r = parse_record("v=DMARC1; p=reject; np=quarantine; psd=y; t=y; rua=mailto:a@x.example,mailto:b@y.example");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->np, Policy::quarantine);
  EXPECT_EQ(r->psd, PsdFlag::yes);
  EXPECT_TRUE(r->testing);
  ASSERT_EQ(r->rua.size(), 2u);
  EXPECT_EQ(r->rua[1], "mailto:b@y.example");
  EXPECT_EQ(parse_record("v=DMARC1; p=none; psd=n")->psd, PsdFlag::no);
  EXPECT_FALSE(parse_record("v=DMARC1; p=none; psd=x").ok());
}

Input spf_only(std::string from, std::string spf_domain) {
  return Input{std::move(from), spf::Result::pass, std::move(spf_domain), {}};
}

TEST(DmarcTreeWalk, DmarcBis_4_10_PolicyDiscovery) {
  struct Case {
    const char* name;
    std::vector<std::pair<std::string, std::string>> records;  // _dmarc owner → TXT
    std::string from;
    Result want;
    std::string want_policy_domain;
    Policy want_policy;
  };
  const std::vector<Case> cases = {
      {"DmarcBis_4_10_record_at_author", {{"example.com", "v=DMARC1; p=reject"}}, "example.com", Result::pass,
       "example.com", Policy::reject},
      {"DmarcBis_4_10_walk_to_parent_uses_sp",
       {{"example.com", "v=DMARC1; p=reject; sp=quarantine"}},
       "a.b.example.com", Result::pass, "example.com", Policy::quarantine},
      {"DmarcBis_4_10_walk_to_parent_without_sp_uses_p",
       {{"example.com", "v=DMARC1; p=reject"}},
       "a.b.example.com", Result::pass, "example.com", Policy::reject},
      {"DmarcBis_4_10_nearest_record_wins",
       {{"example.com", "v=DMARC1; p=reject"}, {"b.example.com", "v=DMARC1; p=none"}},
       "a.b.example.com", Result::pass, "b.example.com", Policy::none},
      {"DmarcBis_4_10_multiple_records_discarded",
       {{"a.example.com", "v=DMARC1; p=none"}, {"a.example.com", "v=DMARC1; p=reject"},
        {"example.com", "v=DMARC1; p=quarantine"}},
       "a.example.com", Result::pass, "example.com", Policy::quarantine},
      {"DmarcBis_4_10_non_dmarc_txt_ignored",
       {{"example.com", "v=spf1 -all"}, {"example.com", "v=DMARC1; p=reject"}},
       "example.com", Result::pass, "example.com", Policy::reject},
      {"DmarcBis_4_10_psd_record_applies",
       {{"example", "v=DMARC1; p=reject; psd=y"}},
       "brand.example", Result::pass, "example", Policy::reject},
      {"RFC7489_6_6_3_no_record_is_none", {}, "example.com", Result::none, "", Policy::none},
      {"RFC7489_6_6_3_broken_record_is_permerror",
       {{"example.com", "v=DMARC1; p=reject; pct=500"}},
       "example.com", Result::permerror, "example.com", Policy::none},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    for (const auto& [owner, txt] : c.records) r.add_txt("_dmarc." + owner, txt);
    auto e = evaluate(r, spf_only(c.from, c.from));
    EXPECT_EQ(e.result, c.want) << c.name << ": got " << to_string(e.result) << " (" << e.detail << ")";
    EXPECT_EQ(e.policy_domain, c.want_policy_domain) << c.name;
    EXPECT_EQ(e.requested, c.want_policy) << c.name;
  }
}

TEST(DmarcTreeWalk, DmarcBis_4_10_EightQueryCap) {
  // 12 labels: the walk asks the full name, then jumps to 7 labels, then
  // 6 ... 1: 8 queries; a record at 10 labels is never seen.
  dns::FakeResolver r;
  const std::string from = "l12.l11.l10.l9.l8.l7.l6.l5.l4.example.co.test";
  r.add_txt("_dmarc.l10.l9.l8.l7.l6.l5.l4.example.co.test", "v=DMARC1; p=reject");
  auto e = evaluate(r, Input{from, spf::Result::fail, "x.invalid", {}});
  EXPECT_EQ(e.result, Result::none) << e.detail;
  EXPECT_EQ(r.queries(), 8);
  EXPECT_EQ(tree_walk_targets(from).size(), 8u);

  // The 7-label name after the jump is found.
  dns::FakeResolver r2;
  r2.add_txt("_dmarc.l6.l5.l4.example.co.test", "v=DMARC1; p=quarantine");
  auto e2 = evaluate(r2, Input{from, spf::Result::fail, "x.invalid", {}});
  EXPECT_EQ(e2.result, Result::fail);
  EXPECT_EQ(e2.policy_domain, "l6.l5.l4.example.co.test");
}

TEST(DmarcTreeWalk, DmarcBis_4_10_2_OrganizationalDomainAndPsd) {
  struct Case {
    const char* name;
    std::vector<std::pair<std::string, std::string>> records;
    std::string from;
    std::string spf_domain;
    Result want;
    std::string want_org;
  };
  const std::vector<Case> cases = {
      {"DmarcBis_4_10_2_shortest_record_is_org",
       {{"example.com", "v=DMARC1; p=reject"}}, "mail.example.com", "bounce.example.com", Result::pass,
       "example.com"},
      {"DmarcBis_4_10_2_psd_n_stops_walk",
       {{"example.com", "v=DMARC1; p=reject"}, {"dept.example.com", "v=DMARC1; p=reject; psd=n"}},
       "a.dept.example.com", "b.dept.example.com", Result::pass, "dept.example.com"},
      {"DmarcBis_4_10_2_psd_n_splits_siblings",
       {{"example.com", "v=DMARC1; p=reject"}, {"dept.example.com", "v=DMARC1; p=reject; psd=n"}},
       "a.dept.example.com", "other.example.com", Result::fail, "dept.example.com"},
      {"DmarcBis_4_10_2_psd_y_org_is_one_below",
       {{"gov.test", "v=DMARC1; p=reject; psd=y"}},
       "a.agency.gov.test", "b.agency.gov.test", Result::pass, "agency.gov.test"},
      {"DmarcBis_4_10_2_psd_y_different_children_not_aligned",
       {{"gov.test", "v=DMARC1; p=reject; psd=y"}},
       "a.agency.gov.test", "other.gov.test", Result::fail, "agency.gov.test"},
      {"DmarcBis_4_10_2_record_only_at_author_makes_it_the_org",
       {{"mail.example.com", "v=DMARC1; p=reject"}}, "mail.example.com", "bounce.example.com", Result::fail,
       "mail.example.com"},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    for (const auto& [owner, txt] : c.records) r.add_txt("_dmarc." + owner, txt);
    auto e = evaluate(r, spf_only(c.from, c.spf_domain));
    EXPECT_EQ(e.result, c.want) << c.name << ": got " << to_string(e.result) << " (" << e.detail << ")";
    EXPECT_EQ(e.organizational_domain, c.want_org) << c.name;
  }
}

TEST(DmarcPsl, Rfc7489_3_2_OrganizationalDomain) {
  auto psl = PublicSuffixList::parse(
      "// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n");
  struct Case {
    const char* domain;
    const char* want;
  };
  const Case cases[] = {
      {"example.com", "example.com"},        {"a.b.example.com", "example.com"},
      {"Mail.Example.CO.UK.", "example.co.uk"}, {"co.uk", "co.uk"},
      {"a.b.example.ck", "b.example.ck"},    {"www.ck", "www.ck"},
      {"a.www.ck", "www.ck"},                {"x.city.kawasaki.jp", "city.kawasaki.jp"},
      {"a.b.kawasaki.jp", "a.b.kawasaki.jp"}, {"example.unlisted", "example.unlisted"},
      {"a.example.unlisted", "example.unlisted"},
  };
  for (const auto& c : cases) EXPECT_EQ(psl.organizational_domain(c.domain), c.want) << c.domain;
}

TEST(DmarcPsl, Rfc7489_3_2_DebianListAndDiscovery) {
  auto psl = PublicSuffixList::load("/usr/share/publicsuffix/public_suffix_list.dat");
  if (!psl.ok()) GTEST_SKIP() << psl.error().message;
  EXPECT_EQ(psl->organizational_domain("mail.example.co.uk"), "example.co.uk");
  EXPECT_EQ(psl->organizational_domain("a.b.github.io"), "b.github.io");
  EXPECT_FALSE(PublicSuffixList::load("/nonexistent/psl.dat").ok());

  // RFC 7489 §6.6.3: author domain, then the organizational domain only.
  dns::FakeResolver r;
  r.add_txt("_dmarc.example.co.uk", "v=DMARC1; p=reject; sp=quarantine");
  Options o{Discovery::public_suffix_list, &psl.value(), 0};
  auto e = evaluate(r, spf_only("a.b.example.co.uk", "bounce.example.co.uk"), o);
  EXPECT_EQ(e.result, Result::pass) << e.detail;
  EXPECT_EQ(e.policy_domain, "example.co.uk");
  EXPECT_EQ(e.requested, Policy::quarantine);
  EXPECT_EQ(r.queries(), 2);
}

TEST(DmarcAlignment, Rfc7489_3_1_Modes) {
  struct Case {
    const char* name;
    const char* record;
    Input input;
    Result want;
    bool spf_aligned;
    bool dkim_aligned;
  };
  using D = DkimIdentifier;
  const std::vector<Case> cases = {
      {"RFC7489_3_1_2_spf_relaxed_subdomain", "v=DMARC1; p=reject",
       {"example.com", spf::Result::pass, "bounce.example.com", {}}, Result::pass, true, false},
      {"RFC7489_3_1_2_spf_strict_subdomain_fails", "v=DMARC1; p=reject; aspf=s",
       {"example.com", spf::Result::pass, "bounce.example.com", {}}, Result::fail, false, false},
      {"RFC7489_3_1_2_spf_strict_exact", "v=DMARC1; p=reject; aspf=s",
       {"example.com", spf::Result::pass, "EXAMPLE.com.", {}}, Result::pass, true, false},
      {"RFC7489_3_1_2_spf_softfail_not_pass", "v=DMARC1; p=reject",
       {"example.com", spf::Result::softfail, "example.com", {}}, Result::fail, false, false},
      {"RFC7489_3_1_1_dkim_relaxed", "v=DMARC1; p=reject",
       {"news.example.com", spf::Result::fail, "other.test", {D{true, "example.com"}}}, Result::pass, false, true},
      {"RFC7489_3_1_1_dkim_strict_fails_for_parent", "v=DMARC1; p=reject; adkim=s",
       {"news.example.com", spf::Result::fail, "other.test", {D{true, "example.com"}}}, Result::fail, false, false},
      {"RFC7489_3_1_1_dkim_failed_signature_ignored", "v=DMARC1; p=reject",
       {"example.com", spf::Result::none, "", {D{false, "example.com"}, D{true, "thirdparty.test"}}},
       Result::fail, false, false},
      {"RFC7489_3_1_1_second_signature_aligns", "v=DMARC1; p=reject",
       {"example.com", spf::Result::none, "", {D{true, "esp.test"}, D{true, "example.com"}}}, Result::pass, false,
       true},
      {"RFC7489_3_1_unrelated_domain_not_aligned", "v=DMARC1; p=reject",
       {"example.com", spf::Result::pass, "example.com.evil.test", {}}, Result::fail, false, false},
      {"RFC7489_4_2_both_aligned", "v=DMARC1; p=reject",
       {"example.com", spf::Result::pass, "example.com", {D{true, "example.com"}}}, Result::pass, true, true},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    r.add_txt("_dmarc.example.com", c.record);
    auto e = evaluate(r, c.input);
    EXPECT_EQ(e.result, c.want) << c.name << ": got " << to_string(e.result) << " (" << e.detail << ")";
    EXPECT_EQ(e.spf_aligned, c.spf_aligned) << c.name;
    EXPECT_EQ(e.dkim_aligned, c.dkim_aligned) << c.name;
  }
}

TEST(DmarcPolicy, Rfc7489_6_6_4_PctAndTesting) {
  struct Case {
    const char* name;
    const char* record;
    int sample;
    Policy want_applied;
  };
  const Case cases[] = {
      {"RFC7489_6_6_4_pct100", "v=DMARC1; p=reject", 99, Policy::reject},
      {"RFC7489_6_6_4_inside_sample", "v=DMARC1; p=reject; pct=50", 49, Policy::reject},
      {"RFC7489_6_6_4_outside_sample_downgrades", "v=DMARC1; p=reject; pct=50", 50, Policy::quarantine},
      {"RFC7489_6_6_4_quarantine_downgrades_to_none", "v=DMARC1; p=quarantine; pct=0", 0, Policy::none},
      {"DmarcBis_t_y_downgrades", "v=DMARC1; p=reject; t=y", 0, Policy::quarantine},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    r.add_txt("_dmarc.example.com", c.record);
    Options o;
    o.pct_sample = c.sample;
    auto e = evaluate(r, Input{"example.com", spf::Result::fail, "example.com", {}}, o);
    EXPECT_EQ(e.result, Result::fail) << c.name;
    EXPECT_EQ(e.applied, c.want_applied) << c.name;
  }
}

TEST(DmarcPolicy, DmarcBis_np_NonExistentSubdomain) {
  dns::FakeResolver r;
  r.add_txt("_dmarc.example.com", "v=DMARC1; p=none; sp=quarantine; np=reject");
  r.add_a("exists.example.com", "192.0.2.1");
  auto gone = evaluate(r, Input{"gone.example.com", spf::Result::fail, "x.test", {}});
  EXPECT_EQ(gone.requested, Policy::reject);
  auto there = evaluate(r, Input{"exists.example.com", spf::Result::fail, "x.test", {}});
  EXPECT_EQ(there.requested, Policy::quarantine);
  auto org = evaluate(r, Input{"example.com", spf::Result::fail, "x.test", {}});
  EXPECT_EQ(org.requested, Policy::none);
}

TEST(DmarcErrors, TemporaryDnsErrorIsTemperror) {
  dns::FakeResolver r;
  r.set_temp_error("_dmarc.example.com");
  auto e = evaluate(r, spf_only("example.com", "example.com"));
  EXPECT_EQ(e.result, Result::temperror);
}

TEST(DmarcForwarding, PassedOnlyViaSpfUnderEnforcement) {
  struct Case {
    const char* name;
    const char* record;
    Input input;
    bool want;
  };
  using D = DkimIdentifier;
  const std::vector<Case> cases = {
      {"spf_only_reject", "v=DMARC1; p=reject", {"example.com", spf::Result::pass, "example.com", {}}, true},
      {"spf_only_quarantine", "v=DMARC1; p=quarantine",
       {"example.com", spf::Result::pass, "example.com", {}}, true},
      {"spf_only_p_none", "v=DMARC1; p=none", {"example.com", spf::Result::pass, "example.com", {}}, false},
      {"dkim_aligned_too", "v=DMARC1; p=reject",
       {"example.com", spf::Result::pass, "example.com", {D{true, "example.com"}}}, false},
      {"dmarc_fail", "v=DMARC1; p=reject", {"example.com", spf::Result::fail, "example.com", {}}, false},
      {"subdomain_sp_none", "v=DMARC1; p=reject; sp=none",
       {"news.example.com", spf::Result::pass, "news.example.com", {}}, false},
      {"pct_sampled_out_still_enforcing", "v=DMARC1; p=reject; pct=0",
       {"example.com", spf::Result::pass, "example.com", {}}, true},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    r.add_txt("_dmarc.example.com", c.record);
    auto e = evaluate(r, c.input);
    EXPECT_EQ(passed_only_via_spf_under_enforcement(e), c.want) << c.name << " (" << e.detail << ")";
  }
}

}  // namespace
}  // namespace hikyaku::auth::dmarc
