// The rate-limit state file: parse, format, round trip and damaged input
// (every bad line reported with its number, never trusted); version 2
// (issue 17: pause and ramp) and the version 1 files written before it.
#include "delivery/state/destination_state.hpp"

#include <gtest/gtest.h>

namespace hikyaku::delivery::state {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(int64_t unix_seconds) { return system_clock::time_point(seconds(unix_seconds)); }

DestinationState v2(std::string domain, milliseconds pause, int64_t paused_until, unsigned connections,
                    int64_t until) {
  return DestinationState{std::move(domain), pause, paused_until == 0 ? system_clock::time_point{} : at(paused_until),
                          connections, at(until)};
}

// A version 1 entry as parse() gives it: no pause known, none pending, one
// connection.
DestinationState v1(std::string domain, int64_t until) { return v2(std::move(domain), milliseconds(0), 0, 1, until); }

TEST(DestinationState, ParsesGoodFile) {
  auto p = parse(
      "hikyaku-destinations 2\n"
      "# domain pause-ms paused-until-unix-seconds connections until-unix-seconds\n"
      "\n"
      "gmail.com 600000 1795000600 1 1795004200\n"
      "  example.org\t1200000  0 4 1795000123  \n"
      "last.test 0 0 1000 1795000999");  // no final newline
  EXPECT_TRUE(p.issues.empty()) << p.issues.front().line << ": " << p.issues.front().message;
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0], v2("gmail.com", milliseconds(600000), 1795000600, 1, 1795004200));
  EXPECT_EQ(p.entries[1], v2("example.org", milliseconds(1200000), 0, 4, 1795000123));
  EXPECT_EQ(p.entries[2], v2("last.test", milliseconds(0), 0, 1000, 1795000999));
}

// Files written before issue 17 still load: each line is a destination that
// resumes at one connection (its spacing checked, then dropped).
TEST(DestinationState, ParsesVersion1File) {
  auto p = parse(
      "hikyaku-destinations 1\n"
      "# domain spacing-ms until-unix-seconds\n"
      "\n"
      "gmail.com 4000 1795000000\n"
      "  example.org\t2000  1795000123  \n"
      "last.test 300000 1795000999");  // no final newline
  EXPECT_TRUE(p.issues.empty()) << p.issues.front().line << ": " << p.issues.front().message;
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0], v1("gmail.com", 1795000000));
  EXPECT_EQ(p.entries[1], v1("example.org", 1795000123));
  EXPECT_EQ(p.entries[2], v1("last.test", 1795000999));
  // Written back as version 2.
  auto again = parse(format(p.entries));
  EXPECT_TRUE(again.issues.empty());
  EXPECT_EQ(again.entries, p.entries);
  EXPECT_EQ(format(p.entries).substr(0, 23), "hikyaku-destinations 2\n");
}

TEST(DestinationState, EmptyTextIsNoState) {
  auto p = parse("");
  EXPECT_TRUE(p.entries.empty());
  EXPECT_TRUE(p.issues.empty());
}

TEST(DestinationState, BadVersion1LinesAreReportedWithNumbersAndIgnored) {
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

TEST(DestinationState, BadLinesAreReportedWithNumbersAndIgnored) {
  struct Case {
    std::string name, line, want;  // want: a substring of the issue
  };
  const std::vector<Case> cases = {
      {"version_1_line", "gmail.com 4000 1795000000", "expected 5 fields"},
      {"too_many_fields", "gmail.com 600000 0 1 1795000000 x", "expected 5 fields"},
      {"pause_negative", "gmail.com -5 0 1 1795000000", "bad pause"},
      {"pause_plus", "gmail.com +5 0 1 1795000000", "bad pause"},
      {"pause_not_number", "gmail.com 10m 0 1 1795000000", "bad pause"},
      {"pause_over_a_day", "gmail.com 86400001 0 1 1795000000", "bad pause"},
      {"pause_overflow", "gmail.com 99999999999999999999999 0 1 1795000000", "bad pause"},
      {"paused_until_not_number", "gmail.com 600000 soon 1 1795000000", "bad paused-until"},
      {"paused_until_after_2100", "gmail.com 600000 4102444801 1 1795000000", "bad paused-until"},
      {"connections_zero", "gmail.com 600000 0 0 1795000000", "bad connections"},
      {"connections_over_max", "gmail.com 600000 0 1001 1795000000", "bad connections"},
      {"until_not_number", "gmail.com 600000 0 1 tomorrow", "bad until"},
      {"until_after_2100", "gmail.com 600000 0 1 4102444801", "bad until"},
      {"until_cr", "gmail.com 600000 0 1 1795000000\r", "bad until"},
      {"domain_control_byte", std::string("gm\x01il.com 600000 0 1 1795000000"), "bad domain"},
      {"domain_too_long", std::string(256, 'a') + " 600000 0 1 1795000000", "bad domain"},
  };
  for (const auto& c : cases) {
    auto p = parse("hikyaku-destinations 2\nok.test 600000 0 1 1795000000\n" + c.line +
                   "\nafter.test 600000 0 2 1795000000\n");
    ASSERT_EQ(p.issues.size(), 1u) << c.name;
    EXPECT_EQ(p.issues[0].line, 3u) << c.name;
    EXPECT_NE(p.issues[0].message.find(c.want), std::string::npos)
        << c.name << ": got \"" << p.issues[0].message << "\", want \"" << c.want << "\"";
    ASSERT_EQ(p.entries.size(), 2u) << c.name;
    EXPECT_EQ(p.entries[0].domain, "ok.test") << c.name;
    EXPECT_EQ(p.entries[1].domain, "after.test") << c.name;
  }
}

TEST(DestinationState, DuplicateDomainKeepsTheFirst) {
  auto p = parse("hikyaku-destinations 2\na.test 600000 0 1 1795000000\na.test 1200000 0 1 1795000000\n");
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].pause, milliseconds(600000));
  ASSERT_EQ(p.issues.size(), 1u);
  EXPECT_EQ(p.issues[0].line, 3u);
}

TEST(DestinationState, BadHeaderIgnoresTheWholeFile) {
  const std::vector<std::string> texts = {"gmail.com 4000 1795000000\n",
                                          "hikyaku-destinations 3\ngmail.com 4000 1795000000\n",
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
      v2("gmail.com", milliseconds(600000), 1795000600, 1, 1795004200),
      v2("example.org", milliseconds(1200000), 0, 3, 1795003600),
  };
  auto text = format(in);
  EXPECT_EQ(text,
            "hikyaku-destinations 2\n# domain pause-ms paused-until-unix-seconds connections until-unix-seconds\n"
            "gmail.com 600000 1795000600 1 1795004200\nexample.org 1200000 0 3 1795003600\n");
  auto p = parse(text);
  EXPECT_TRUE(p.issues.empty());
  EXPECT_EQ(p.entries, in);
}

TEST(DestinationState, FormatLeavesOutWhatParseWouldRefuse) {
  std::vector<DestinationState> in = {
      v2("two words.test", milliseconds(600000), 0, 1, 1795000000),
      v2("negative.test", milliseconds(-1), 0, 1, 1795000000),
      v2("zero-connections.test", milliseconds(600000), 0, 0, 1795000000),
      v2("#comment.test", milliseconds(600000), 0, 1, 1795000000),
      {"good.test", milliseconds(600000), system_clock::time_point{}, 1,
       at(1795000000) + milliseconds(700)},                               // sub-second: truncated
      v2("good.test", milliseconds(1200000), 0, 1, 1795000000),          // duplicate
  };
  auto p = parse(format(in));
  EXPECT_TRUE(p.issues.empty());
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0], v2("good.test", milliseconds(600000), 0, 1, 1795000000));
}

}  // namespace
}  // namespace hikyaku::delivery::state
