// Unit tests of the SNI certificate choice (tls/server_name.hpp).
#include "tls/server_name.hpp"

#include <gtest/gtest.h>

namespace hikyaku::tls {
namespace {

TEST(ServerName, Matching_RFC6125_6_4_3) {
  struct Case {
    const char* name;
    const char* pattern;
    const char* server_name;
    bool want;
  };
  const Case cases[] = {
      {"exact", "mail.example.com", "mail.example.com", true},
      {"exact_case_insensitive_RFC4343", "Mail.Example.COM", "mAIL.example.com", true},
      {"trailing_dot_ignored", "mail.example.com", "mail.example.com.", true},
      {"other_name", "mail.example.com", "smtp.example.com", false},
      {"longer_name", "example.com", "mail.example.com", false},
      {"wildcard_one_label", "*.example.com", "a.example.com", true},
      {"wildcard_case_insensitive", "*.EXAMPLE.com", "A.example.COM", true},
      {"wildcard_not_the_parent", "*.example.com", "example.com", false},
      {"wildcard_not_two_labels", "*.example.com", "a.b.example.com", false},
      {"wildcard_empty_label", "*.example.com", ".example.com", false},
      {"wildcard_too_wide", "*.com", "example.com", false},
      {"partial_wildcard_refused", "m*.example.com", "mail.example.com", false},
      {"inner_wildcard_refused", "mail.*.com", "mail.example.com", false},
      {"peer_star_is_not_a_label", "*.example.com", "*.example.com", false},
      {"peer_star_exact", "*.example.com", "*", false},
      {"empty_server_name", "mail.example.com", "", false},
      {"empty_label", "mail..example.com", "mail..example.com", false},
      {"control_chars", "mail.example.com", "mail.example.com\n", false},
      {"suffix_not_on_label_boundary", "*.example.com", "aexample.com", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(name_matches(c.pattern, c.server_name), c.want)
        << c.name << ": name_matches(\"" << c.pattern << "\", \"" << c.server_name << "\") got " << !c.want
        << ", want " << c.want;
}

TEST(ServerName, ExactBeatsWildcardThenOrder) {
  // [0] the default, then the configured certificates in order.
  const std::vector<std::vector<std::string>> names{
      {"mx.example.com"},
      {"*.example.org", "example.org"},
      {"a.example.org"},
      {"b.example.net", "*.example.net"},
      {"B.example.NET"},
  };
  struct Case {
    const char* server_name;
    std::optional<std::size_t> want;
  };
  const Case cases[] = {
      {"mx.example.com", 0},
      {"MX.EXAMPLE.COM", 0},
      {"a.example.org", 2},     // exact beats the earlier wildcard
      {"z.example.org", 1},     // the wildcard
      {"example.org", 1},
      {"b.example.net", 3},     // two exact names: the earlier certificate
      {"c.example.net", 3},
      {"unknown.example", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& c : cases)
    EXPECT_EQ(choose_certificate(names, c.server_name), c.want) << "server name \"" << c.server_name << "\"";
}

TEST(ServerName, NoCertificates) { EXPECT_EQ(choose_certificate({}, "a.example"), std::nullopt); }

}  // namespace
}  // namespace hikyaku::tls
