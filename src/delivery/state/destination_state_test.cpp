// The rate-limit state file: parse, format, round trip and damaged input
// (every bad line reported with its number, never trusted).
#include "delivery/state/destination_state.hpp"

#include <gtest/gtest.h>

namespace hikyaku::delivery::state {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(int64_t unix_seconds) { return system_clock::time_point(seconds(unix_seconds)); }

TEST(DestinationState, ParsesGoodFile) {
  auto p = parse(
      "hikyaku-destinations 1\n"
      "# domain spacing-ms until-unix-seconds\n"
      "\n"
      "gmail.com 4000 1795000000\n"
      "  example.org\t2000  1795000123  \n"
      "last.test 300000 1795000999");  // no final newline
  EXPECT_TRUE(p.issues.empty()) << p.issues.front().line << ": " << p.issues.front().message;
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0], (DestinationState{"gmail.com", milliseconds(4000), at(1795000000)}));
  EXPECT_EQ(p.entries[1], (DestinationState{"example.org", milliseconds(2000), at(1795000123)}));
  EXPECT_EQ(p.entries[2], (DestinationState{"last.test", milliseconds(300000), at(1795000999)}));
}

TEST(DestinationState, EmptyTextIsNoState) {
  auto p = parse("");
  EXPECT_TRUE(p.entries.empty());
  EXPECT_TRUE(p.issues.empty());
}

TEST(DestinationState, BadLinesAreReportedWithNumbersAndIgnored) {
  struct Case {
    std::string name, line, want;  // want: a substring of the issue
  };
  const std::vector<Case> cases = {
      {"too_few_fields", "gmail.com 4000", "expected 3 fields"},
      {"too_many_fields", "gmail.com 4000 1795000000 x", "expected 3 fields"},
      {"spacing_zero", "gmail.com 0 1795000000", "bad spacing"},
      {"spacing_negative", "gmail.com -5 1795000000", "bad spacing"},
      {"spacing_plus", "gmail.com +5 1795000000", "bad spacing"},
      {"spacing_not_number", "gmail.com 4s 1795000000", "bad spacing"},
      {"spacing_over_a_day", "gmail.com 86400001 1795000000", "bad spacing"},
      {"spacing_overflow", "gmail.com 99999999999999999999999 1795000000", "bad spacing"},
      {"until_not_number", "gmail.com 4000 tomorrow", "bad until"},
      {"until_after_2100", "gmail.com 4000 4102444801", "bad until"},
      {"until_cr", "gmail.com 4000 1795000000\r", "bad until"},
      {"domain_control_byte", std::string("gm\x01il.com 4000 1795000000"), "bad domain"},
      {"domain_too_long", std::string(256, 'a') + " 4000 1795000000", "bad domain"},
  };
  for (const auto& c : cases) {
    auto p = parse("hikyaku-destinations 1\nok.test 2000 1795000000\n" + c.line + "\nafter.test 2000 1795000000\n");
    ASSERT_EQ(p.issues.size(), 1u) << c.name;
    EXPECT_EQ(p.issues[0].line, 3u) << c.name;
    EXPECT_NE(p.issues[0].message.find(c.want), std::string::npos)
        << c.name << ": got \"" << p.issues[0].message << "\", want \"" << c.want << "\"";
    // The good lines around it are kept.
    ASSERT_EQ(p.entries.size(), 2u) << c.name;
    EXPECT_EQ(p.entries[0].domain, "ok.test") << c.name;
    EXPECT_EQ(p.entries[1].domain, "after.test") << c.name;
  }
}

TEST(DestinationState, DuplicateDomainKeepsTheFirst) {
  auto p = parse("hikyaku-destinations 1\na.test 2000 1795000000\na.test 8000 1795000000\n");
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].spacing, milliseconds(2000));
  ASSERT_EQ(p.issues.size(), 1u);
  EXPECT_EQ(p.issues[0].line, 3u);
}

TEST(DestinationState, BadHeaderIgnoresTheWholeFile) {
  const std::vector<std::string> texts = {"gmail.com 4000 1795000000\n",
                                          "hikyaku-destinations 2\ngmail.com 4000 1795000000\n",
                                          std::string("\x7f" "ELF\x02\x01\x01\n\0\0gmail.com 1 1\n", 24)};
  for (const auto& text : texts) {
    auto p = parse(text);
    EXPECT_TRUE(p.entries.empty());
    ASSERT_EQ(p.issues.size(), 1u);
    EXPECT_EQ(p.issues[0].line, 1u);
  }
}

TEST(DestinationState, FormatRoundTrip) {
  std::vector<DestinationState> in = {
      {"gmail.com", milliseconds(2000), at(1795000000)},
      {"example.org", milliseconds(300000), at(1795003600)},
  };
  auto text = format(in);
  EXPECT_EQ(text,
            "hikyaku-destinations 1\n# domain spacing-ms until-unix-seconds\n"
            "gmail.com 2000 1795000000\nexample.org 300000 1795003600\n");
  auto p = parse(text);
  EXPECT_TRUE(p.issues.empty());
  EXPECT_EQ(p.entries, in);
}

TEST(DestinationState, FormatLeavesOutWhatParseWouldRefuse) {
  std::vector<DestinationState> in = {
      {"two words.test", milliseconds(2000), at(1795000000)},
      {"zero.test", milliseconds(0), at(1795000000)},
      {"#comment.test", milliseconds(2000), at(1795000000)},
      {"good.test", milliseconds(2000), at(1795000000) + milliseconds(700)},  // sub-second: truncated
      {"good.test", milliseconds(4000), at(1795000000)},                      // duplicate
  };
  auto p = parse(format(in));
  EXPECT_TRUE(p.issues.empty());
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0], (DestinationState{"good.test", milliseconds(2000), at(1795000000)}));
}

}  // namespace
}  // namespace hikyaku::delivery::state
