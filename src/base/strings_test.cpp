#include "base/strings.hpp"

#include <gtest/gtest.h>

namespace hikyaku::base {
namespace {

TEST(Strings, DurationsAndSizes) {
  EXPECT_EQ(parse_duration_seconds("90s"), 90u);
  EXPECT_EQ(parse_duration_seconds("15m"), 900u);
  EXPECT_EQ(parse_duration_seconds("5d"), 5u * 86400);
  EXPECT_EQ(parse_duration_seconds("12"), 12u);
  EXPECT_FALSE(parse_duration_seconds("m"));
  EXPECT_FALSE(parse_duration_seconds("1x"));
  EXPECT_EQ(parse_size_bytes("50M"), 50u * 1024 * 1024);
  EXPECT_EQ(parse_size_bytes("4096"), 4096u);
  EXPECT_FALSE(parse_size_bytes("-1"));
  EXPECT_FALSE(parse_size_bytes("99999999999999999999999"));
}

TEST(Strings, Base64RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\0user\0pass"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode(std::string("\0u\0p", 4)), "AHUAcA==");
  EXPECT_FALSE(base64_decode("A"));
  EXPECT_FALSE(base64_decode("AB=C"));
  EXPECT_FALSE(base64_decode("!!!!"));
}

TEST(Strings, CaseAndSplit) {
  EXPECT_TRUE(iequals("EHLO", "ehlo"));
  EXPECT_FALSE(iequals("EHLO", "ehl"));
  EXPECT_TRUE(istarts_with("MAIL FROM:<a>", "mail from:"));
  auto w = split_words("  a  b c ");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[2], "c");
  EXPECT_EQ(trim(" \tx \t"), "x");
  EXPECT_EQ(trim(" x\r\n"), "x\r\n");
  EXPECT_EQ(trim_lines("\r\n \tx y\r\n\t"), "x y");
  EXPECT_EQ(trim_lines("\r\n"), "");
}

TEST(Strings, LogPrintableAndWipe) {
  EXPECT_EQ(log_printable("alice"), "alice");
  EXPECT_EQ(log_printable("a\r\nb\xff"), "a??b?");
  EXPECT_EQ(log_printable(std::string(70, 'x')), std::string(64, 'x') + "...");
  std::string secret = "hunter2";
  wipe(secret);
  EXPECT_TRUE(secret.empty());
}

TEST(Strings, ValidUtf8_RFC3629_4) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("ascii"));
  EXPECT_TRUE(valid_utf8("\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae"));  // δοκιμή
  EXPECT_TRUE(valid_utf8("\xe2\x82\xac"));                  // U+20AC
  EXPECT_TRUE(valid_utf8("\xf0\x9f\x98\x80"));              // U+1F600
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));              // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xff"));                          // never a lead octet
  EXPECT_FALSE(valid_utf8("\x80"));                          // a lone continuation
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));                      // overlong '/'
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));                  // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));                  // a surrogate (U+D800)
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));              // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));                      // truncated
  EXPECT_FALSE(valid_utf8("a\xce"));                         // truncated at the end
}

TEST(Strings, SplitFieldsOnRunsOfSpacesAndTabs) {
  EXPECT_EQ(split_fields(" a\t b  c\t"), (std::vector<std::string_view>{"a", "b", "c"}));
  EXPECT_TRUE(split_fields(" \t ").empty());
}

TEST(Strings, EscapedFieldsAreOneTokenAndReversible) {
  EXPECT_EQ(escape_field(""), "%-");
  EXPECT_EQ(escape_field("a b%\x7f\xc3\xa9\n"), "a%20b%25%7F%C3%A9%0A");
  std::string out;
  const std::vector<std::string_view> values{"", "-", "%-x", "a b\tc", "100%", std::string_view("\0\x01", 2)};
  for (std::string_view v : values) {
    const std::string token = escape_field(v);
    EXPECT_EQ(split_fields(token).size(), 1u) << token;
    ASSERT_TRUE(unescape_field(token, out)) << token;
    EXPECT_EQ(out, v);
  }
  EXPECT_FALSE(unescape_field("%2", out));
  EXPECT_FALSE(unescape_field("%zz", out));
  EXPECT_FALSE(unescape_field("a%", out));
}

TEST(Strings, StateFileLinesAndTimes) {
  EXPECT_TRUE(blank_or_comment(""));
  EXPECT_TRUE(blank_or_comment(" \t "));
  EXPECT_TRUE(blank_or_comment("  # note"));
  EXPECT_FALSE(blank_or_comment("a # b"));
  using std::chrono::system_clock;
  const auto t = system_clock::time_point(std::chrono::seconds(1700000000)) + std::chrono::milliseconds(999);
  EXPECT_EQ(unix_seconds(t), 1700000000u);  // whole seconds, rounded down
  EXPECT_EQ(parse_unix_seconds("1700000000"), system_clock::time_point(std::chrono::seconds(1700000000)));
  EXPECT_EQ(parse_unix_seconds("4102444800"), system_clock::time_point(std::chrono::seconds(4102444800)));
  EXPECT_FALSE(parse_unix_seconds("4102444801"));  // after 2100-01-01: damage
  EXPECT_FALSE(parse_unix_seconds("-1"));
  EXPECT_FALSE(parse_unix_seconds("17e8"));
  EXPECT_FALSE(unix_seconds(system_clock::time_point(std::chrono::seconds(-1))));
  EXPECT_FALSE(unix_seconds(system_clock::time_point(std::chrono::seconds(4102444801))));
}

}  // namespace
}  // namespace hikyaku::base
