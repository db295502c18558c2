#include <gtest/gtest.h>

#include "auth/common/authentication_results.hpp"
#include "auth/common/author.hpp"
#include "auth/common/canonicalization.hpp"
#include "auth/common/message.hpp"
#include "auth/common/tag_list.hpp"

namespace hikyaku::auth::common {
namespace {

struct TagCase {
  const char* name;
  const char* input;
  bool ok;
  const char* tag;
  const char* want;
};

TEST(TagList, Rfc6376Sec3_2Table) {
  const TagCase cases[] = {
      {"simple", "v=1; a=rsa-sha256", true, "a", "rsa-sha256"},
      {"trailing_semicolon", "v=1; a=x;", true, "a", "x"},
      {"fws_around_equals", "v = 1 ;\r\n\ta =\r\n x y ", true, "a", "x y"},
      {"empty_value", "v=1; p=", true, "p", ""},
      {"underscore_name", "v=1; x_y1=z", true, "x_y1", "z"},
      {"duplicate", "v=1; v=2", false, "", ""},
      {"no_equals", "v=1; a", false, "", ""},
      {"digit_start", "1v=1", false, "", ""},
      {"empty", "  ", false, "", ""},
      {"control_char", "a=b\x01", false, "", ""},
      {"eight_bit", "a=\xc3\xa9", false, "", ""},
      {"bare_cr_not_fws", "a=b\rc", false, "", ""},
      {"colon_in_value_is_valid_syntax", "v=DKIM1: g=*", true, "v", "DKIM1: g=*"},
  };
  for (const auto& c : cases) {
    auto r = parse_tag_list(c.input);
    EXPECT_EQ(r.ok(), c.ok) << c.name;
    if (r.ok() && c.ok) {
      auto v = r->find(c.tag);
      ASSERT_TRUE(v.has_value()) << c.name;
      EXPECT_EQ(*v, c.want) << c.name;
    }
  }
}

TEST(Message, Rfc5322Sec2_2SplitKeepsFolding) {
  std::string m = to_crlf("A: 1\nB: two\n  lines\nC:3\n\nbody\n");
  auto p = parse_message(m);
  ASSERT_EQ(p.headers.size(), 3u);
  EXPECT_EQ(p.headers[1].raw, "B: two\r\n  lines");
  EXPECT_EQ(field_name(p.headers[1]), "B");
  EXPECT_EQ(p.headers[2].value, "3");
  EXPECT_EQ(p.body, "body\r\n");
  EXPECT_EQ(p.all("b").size(), 1u);
  auto nobody = parse_message("A: 1\r\n");
  EXPECT_EQ(nobody.headers.size(), 1u);
  EXPECT_FALSE(nobody.has_body_separator);
}

TEST(Canonicalization, Rfc6376Sec3_4_2RelaxedHeader) {
  EXPECT_EQ(canonicalize_header(Canonicalization::relaxed, "SubJect \t:  Hi  \t there \r\n\t again  "),
            "subject:Hi there again\r\n");
  EXPECT_EQ(canonicalize_header(Canonicalization::simple, "SubJect : x "), "SubJect : x \r\n");
}

TEST(Canonicalization, Rfc6376Sec3_7RemoveB) {
  EXPECT_EQ(remove_b_value("DKIM-Signature: v=1; bh=abc; b=xy\r\n z; d=a"), "DKIM-Signature: v=1; bh=abc; b=; d=a");
  EXPECT_EQ(remove_b_value("X: b = abc"), "X: b =");
}

struct BodyCase {
  const char* name;
  const char* body;
  const char* simple;
  const char* relaxed;
};

TEST(Canonicalization, Rfc6376Sec3_4_3And3_4_4Body) {
  const BodyCase cases[] = {
      {"empty", "", "\r\n", ""},
      {"only_crlf", "\r\n", "\r\n", ""},
      {"trailing_empty_lines", "a\r\n\r\n\r\n", "a\r\n", "a\r\n"},
      {"no_final_crlf", "a", "a\r\n", "a\r\n"},
      {"wsp", " a \t b  \r\n", " a \t b  \r\n", " a b\r\n"},
      {"inner_empty_lines", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
      {"wsp_only_lines_at_end", "a\r\n  \r\n\t\r\n", "a\r\n  \r\n\t\r\n", "a\r\n"},
      {"bare_cr", "a\rb\r\n", "a\rb\r\n", "a\rb\r\n"},
      {"rfc6376_A", "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n\r\n",
       "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n",
       "Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(canonicalize_body(Canonicalization::simple, c.body), c.simple) << c.name;
    EXPECT_EQ(canonicalize_body(Canonicalization::relaxed, c.body), c.relaxed) << c.name;
    // Byte-at-a-time feeding gives the same result (incremental hashing).
    for (auto canon : {Canonicalization::simple, Canonicalization::relaxed}) {
      BodyCanonicalizer bc(canon);
      std::string out;
      for (const char* p = c.body; *p; ++p) bc.update(std::string_view(p, 1), out);
      bc.finish(out);
      EXPECT_EQ(out, canonicalize_body(canon, c.body)) << c.name;
    }
  }
}

TEST(Canonicalization, Rfc6376Sec3_4_5BodyLength) {
  BodyHasher h(Canonicalization::simple, crypto::HashAlgorithm::sha256, 3);
  h.update("abc\r\nmore\r\n");
  EXPECT_EQ(h.finish(), crypto::sha256("abc"));
  EXPECT_EQ(h.canonical_length(), 11u);
}

TEST(AuthenticationResults, Rfc8601Sec2_2BuildAndParse) {
  AuthenticationResults ar{"mx.example.com", {}};
  ar.add("spf", "pass", {{"smtp.mailfrom", "a@example.org"}})
      .add("dkim", "pass", {{"header.d", "example.org"}, {"header.s", "sel"}})
      .add("dmarc", "pass", {{"header.from", "example.org"}})
      .add("arc", "none");
  std::string v = ar.value();
  EXPECT_EQ(v,
            "mx.example.com; spf=pass smtp.mailfrom=a@example.org;\r\n\tdkim=pass header.d=example.org "
            "header.s=sel;\r\n\tdmarc=pass header.from=example.org;\r\n\tarc=none");
  auto p = parse_authentication_results(v);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->authserv_id, "mx.example.com");
  ASSERT_EQ(p->results.size(), 4u);
  EXPECT_EQ(p->results[1].properties[1].second, "sel");
  auto q = parse_authentication_results("  example.org 1 (comment; x); dkim=pass (good sig) header.i=@x reason=\"a b\"");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->authserv_id, "example.org");
  EXPECT_EQ(q->results[0].reason, "a b");
  EXPECT_TRUE(is_own_authentication_results(" MX.example.com; none", "mx.example.com"));
  EXPECT_FALSE(is_own_authentication_results("mx.example.com.evil; none", "mx.example.com"));
  EXPECT_EQ((AuthenticationResults{"x", {}}.value()), "x; none");
}

// What we write we read back as written: a property value a sender chose
// (a quoted local part with '"', ';' and '=') stays one value and adds no
// result (it once turned "dmarc=fail" into a "dmarc=pass" read first).
TEST(AuthenticationResults, Rfc8601Sec2_2QuotedValuesRoundTrip) {
  const std::string sender = "\"@author.test x;dmarc=pass x\"@evil.test";
  AuthenticationResults ar{"mx.example.com", {}};
  ar.add("spf", "pass", {{"smtp.mailfrom", sender}})
      .add("dmarc", "fail", {{"header.from", "author.test"}}, "a \\ b; \"c\"");
  const std::string v = ar.value();
  auto p = parse_authentication_results(v);
  ASSERT_TRUE(p.has_value()) << v;
  ASSERT_EQ(p->results.size(), 2u) << v;
  EXPECT_EQ(p->results[0].method, "spf");
  ASSERT_EQ(p->results[0].properties.size(), 1u) << v;
  EXPECT_EQ(p->results[0].properties[0].second, sender);
  EXPECT_EQ(p->results[1].method, "dmarc");
  EXPECT_EQ(p->results[1].result, "fail");
  EXPECT_EQ(p->results[1].reason, "a \\ b; \"c\"");
  // The same through the ARC collection of our own results.
  auto collected = collect_results_for(
      parse_message(to_crlf("Authentication-Results: " + v + "\n\nbody\n")), "mx.example.com");
  ASSERT_TRUE(collected.has_value());
  auto again = parse_authentication_results(*collected);
  ASSERT_TRUE(again.has_value()) << *collected;
  ASSERT_EQ(again->results.size(), 2u) << *collected;
  EXPECT_EQ(again->results[1].result, "fail");
}

TEST(AuthenticationResults, Rfc8617Sec4_1_1CollectForArc) {
  std::string m = to_crlf(
      "Authentication-Results: lists.example.org; arc=none\n"
      "Authentication-Results: other.example; spf=fail\n"
      "Authentication-Results: lists.example.org; spf=pass smtp.mfrom=a@b;\n  dmarc=pass\n\nbody\n");
  auto p = parse_message(m);
  auto r = collect_results_for(p, "lists.example.org");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "lists.example.org; arc=none;\r\n  spf=pass smtp.mfrom=a@b;\r\n  dmarc=pass");
  EXPECT_FALSE(collect_results_for(p, "nobody").has_value());
}

TEST(Author, ParsesNameAddrAndRefusesGroupsAndLists_RFC5322_3_4) {
  auto a = parse_author(" \"Ann, A.\" <ann@Author.Test>");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->display_name, "Ann, A.");
  EXPECT_EQ(a->address, "ann@Author.Test");
  EXPECT_EQ(a->domain, "author.test");
  auto b = parse_author("ann@author.test (Ann)");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->domain, "author.test");
  EXPECT_FALSE(parse_author("a@x.test, b@y.test"));
  EXPECT_FALSE(parse_author("undisclosed:;"));
  EXPECT_FALSE(parse_author(""));
}

// fuzz/forward_transform_fuzz.cpp: an escaped quote inside a quoted
// display name ended the quoted string for the group check, so a ":" after
// it made the From a "group" and the message had no author for DMARC.
TEST(Author, QuotedPairDoesNotEndQuotedString_RFC5322_3_2_4) {
  auto a = parse_author(" \"Smith \\\"Bob\\\": Sales; EU\" <bob@Author.Test>");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->domain, "author.test");
  EXPECT_EQ(a->display_name, "Smith \"Bob\": Sales; EU");
  auto m = find_author(parse_message("From: \"\\\"x\\\": y\" <ceo@bank.test>\r\n\r\nb\r\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->domain, "bank.test");
  EXPECT_FALSE(parse_author("\"a\\\"\": b@x.test;"));  // a real group after the quoted name
}

TEST(Author, DomainWithoutTrailingDots_RFC5322_3_4_1) {
  auto a = parse_author("x@Example.COM.");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->domain, "example.com");
  // fuzz/author_fuzz.cpp's finding (first input): a domain of dots only is
  // no author domain (it gave "."); every trailing dot goes, not just one.
  EXPECT_FALSE(parse_author("\x8c\x8c\x8c~\n@\n.."));
  EXPECT_FALSE(parse_author("x@.."));
  auto b = parse_author("<x@Example.COM..>");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->domain, "example.com");
  EXPECT_EQ(b->address, "x@Example.COM..");
}

TEST(Author, UnfoldsBeforeQuotedPairs_RFC5322_2_2_3) {
  // fuzz/author_fuzz.cpp: a backslash before a fold's CRLF took the CR into
  // the display name, and From rewriting copies that name into a new field.
  std::string m = "From: \"Ann\\\r\n B\" <ann@author.test>\r\nTo: b@example.test\r\n\r\nbody\r\n";
  auto a = find_author(parse_message(m));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->display_name, "Ann B");
  EXPECT_EQ(a->domain, "author.test");
  auto c = parse_author("\"x\\\r\n\\\r\n\" <x@y.test>");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->display_name.find_first_of("\r\n"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::auth::common
