#include "config/known_forwards.hpp"

#include <gtest/gtest.h>

namespace hikyaku::config {
namespace {

using std::chrono::hours;
using std::chrono::seconds;
using Time = std::chrono::system_clock::time_point;

constexpr Time kT0{seconds(1'800'000'000)};

Forward hidden(std::string to, std::vector<mail::Target> fallback = {{mail::Target::Kind::mailbox, "me"}}) {
  Forward f;
  f.to = std::move(to);
  f.fallback = std::move(fallback);
  return f;
}

Config load(std::string_view text) {
  auto r = load_config_text(text, "t.toml", "/etc/hk");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors.front().str());
  return r.config ? *r.config : Config{};
}

constexpr std::string_view kConfig = R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
[[mailbox]]
name = "me"
[[mailbox]]
name = "gm"
[[address]]
address = "me@example.test"
deliver = ["mailbox:me", "forward:me@gmail.test", "forward:open@gmail.test"]
[[forward]]
to = "me@gmail.test"
fallback = ["forward:second@gmail.test", "mailbox:gm"]
defer_limit = "30m"
notify = true
dmarc = "divert"
source_address = "192.0.2.7"
source_name = "out.example.test"
[[forward]]
to = "open@gmail.test"
hidden = false
)";

TEST(KnownForwards, FormatParsesBackToTheSameEntries) {
  KnownForward configured{hidden("me@gmail.test", {{mail::Target::Kind::forward, "second@gmail.test"},
                                                   {mail::Target::Kind::mailbox, "gm"}}),
                          std::nullopt};
  configured.forward.defer_limit = seconds(1800);
  configured.forward.notify = true;
  configured.forward.dmarc = "divert";
  configured.forward.source_address = {"192.0.2.7", "2001:db8::7"};
  configured.forward.source_name = "out.example.test";
  // A quoted local part with a space, an address starting with '#' (a
  // comment line if written as is) and one with '%'.
  KnownForward odd{hidden("\"a b\"@gmail.test"), kT0};
  KnownForward hash{hidden("#me@gmail.test"), kT0 + hours(1)};
  KnownForward percent{hidden("100%@gmail.test"), std::nullopt};
  const std::vector<KnownForward> entries{configured, odd, hash, percent};
  const std::string text = format_known_forwards(entries);
  EXPECT_NE(text.find("me@gmail.test - 1800 yes divert 192.0.2.7 2001:db8::7 out.example.test "
                      "forward:second@gmail.test mailbox:gm\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\"a%20b\"@gmail.test 1800000000 "), std::string::npos) << text;
  EXPECT_NE(text.find("\n%23me@gmail.test 1800003600 "), std::string::npos) << text;
  EXPECT_NE(text.find("100%25@gmail.test - 900 no rewrite-from %- %- %- mailbox:me\n"), std::string::npos) << text;
  auto parsed = parse_known_forwards(text);
  EXPECT_TRUE(parsed.issues.empty()) << parsed.issues.front().line << ": " << parsed.issues.front().message;
  EXPECT_EQ(parsed.entries, entries);
}

TEST(KnownForwards, FormatLeavesOutWhatParseWouldRefuse) {
  Forward open = hidden("open@gmail.test");
  open.hidden = false;
  const std::vector<KnownForward> entries{{open, std::nullopt},
                                          {hidden("x@gmail.test", {}), std::nullopt},
                                          {hidden("y@gmail.test", {{mail::Target::Kind::forward, "z@gmail.test"}}),
                                           std::nullopt},
                                          {hidden("me@gmail.test"), std::nullopt},
                                          {hidden("me@gmail.test"), kT0}};
  auto parsed = parse_known_forwards(format_known_forwards(entries));
  EXPECT_TRUE(parsed.issues.empty());
  // The one without a chain is valid: the default forward of a fallback
  // link has none.
  EXPECT_EQ(parsed.entries, (std::vector<KnownForward>{entries[1], entries[3]}));
}

TEST(KnownForwards, EachBadLineIsNamedAndIgnored) {
  const std::string text =
      "hikyaku-known-forwards 1\n"
      "# comment\n"
      "\n"
      "ok@gmail.test - 900 no rewrite-from %- %- %- mailbox:me\n"
      "short@gmail.test - 900 no rewrite-from %- %-\n"
      "not-an-address - 900 no rewrite-from %- %- %- mailbox:me\n"
      "t@gmail.test yesterday 900 no rewrite-from %- %- %- mailbox:me\n"
      "l@gmail.test - 1e3 no rewrite-from %- %- %- mailbox:me\n"
      "n@gmail.test - 900 maybe rewrite-from %- %- %- mailbox:me\n"
      "d@gmail.test - 900 no reject %- %- %- mailbox:me\n"
      "v4@gmail.test - 900 no rewrite-from 2001:db8::1 %- %- mailbox:me\n"
      "v6@gmail.test - 900 no rewrite-from %- 192.0.2.1 %- mailbox:me\n"
      "sn@gmail.test - 900 no rewrite-from %- %- not..a..name mailbox:me\n"
      "chain@gmail.test - 900 no rewrite-from %- %- %- mailbox:me forward:x@gmail.test\n"
      "target@gmail.test - 900 no rewrite-from %- %- %- relay:x@gmail.test mailbox:me\n"
      "name@gmail.test - 900 no rewrite-from %- %- %- mailbox:.hidden\n"
      "esc%2@gmail.test - 900 no rewrite-from %- %- %- mailbox:me\n"
      "OK@gmail.test 1800000000 900 no rewrite-from %- %- %- mailbox:me\n";
  auto parsed = parse_known_forwards(text);
  ASSERT_EQ(parsed.entries.size(), 1u);
  EXPECT_EQ(parsed.entries.front().forward.to, "ok@gmail.test");
  std::vector<size_t> lines;
  for (const auto& issue : parsed.issues) {
    lines.push_back(issue.line);
    EXPECT_FALSE(issue.message.empty());
  }
  EXPECT_EQ(lines, (std::vector<size_t>{5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}));
  EXPECT_EQ(parsed.issues.back().message, "duplicate address");
  EXPECT_NE(parsed.issues[9].message.find("does not end in a mailbox"), std::string::npos);
}

TEST(KnownForwards, AFileWithoutTheHeaderIsIgnoredWhole) {
  auto parsed = parse_known_forwards(
      "hikyaku-destinations 2\nok@gmail.test - 900 no rewrite-from %- %- %- mailbox:me\n");
  EXPECT_TRUE(parsed.foreign);
  EXPECT_TRUE(parsed.entries.empty());
  ASSERT_EQ(parsed.issues.size(), 1u);
  EXPECT_EQ(parsed.issues.front().line, 1u);
}

TEST(KnownForwards, RememberRecordsTheConfiguredHiddenForwards) {
  Config config = load(kConfig);
  const size_t configured = config.forwards.size();
  auto known = remember_forwards(config, {}, kT0);
  EXPECT_EQ(config.forwards.size(), configured);  // nothing added
  // me@ and the chain's second@ (a default hidden forward); not open@.
  ASSERT_EQ(known.size(), 2u);
  EXPECT_EQ(known[0].forward.to, "me@gmail.test");
  EXPECT_FALSE(known[0].removed);
  EXPECT_EQ(known[0].forward.defer_limit, seconds(1800));
  EXPECT_TRUE(known[0].forward.notify);
  EXPECT_EQ(known[0].forward.dmarc, "divert");
  EXPECT_EQ(known[0].forward.source_address.v4, "192.0.2.7");
  EXPECT_EQ(known[0].forward.source_name, "out.example.test");
  EXPECT_EQ(known[1].forward.to, "second@gmail.test");
  // What is remembered is what a restart reads back.
  EXPECT_EQ(parse_known_forwards(format_known_forwards(known)).entries, known);
}

TEST(KnownForwards, ARemovedForwardStaysKnownWithItsChainAndOptions) {
  Config before = load(kConfig);
  auto known = remember_forwards(before, {}, kT0);
  // The operator removes both forwards; a restart an hour later.
  std::string text(kConfig);
  text = text.substr(0, text.find("[[forward]]"));
  text.replace(text.find("deliver = [\"mailbox:me\", \"forward:me@gmail.test\", \"forward:open@gmail.test\"]"), 79,
               "deliver = [\"mailbox:me\"]");
  Config after = load(text);
  ASSERT_EQ(after.find_forward("me@gmail.test"), nullptr);
  const Time restart = kT0 + hours(1);
  known = remember_forwards(after, parse_known_forwards(format_known_forwards(known)).entries, restart);
  const Forward* kept = after.find_forward("me@gmail.test");
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->hidden);
  ASSERT_EQ(kept->fallback.size(), 2u);
  EXPECT_EQ(kept->fallback[0].str(), "forward:second@gmail.test");
  EXPECT_EQ(kept->fallback[1].str(), "mailbox:gm");
  EXPECT_EQ(kept->defer_limit, seconds(1800));
  EXPECT_TRUE(kept->notify);
  EXPECT_EQ(kept->dmarc, "divert");
  EXPECT_NE(after.find_forward("second@gmail.test"), nullptr);
  EXPECT_EQ(after.find_forward("open@gmail.test"), nullptr);  // not hidden: not remembered
  ASSERT_EQ(known.size(), 2u);
  EXPECT_EQ(known[0].removed, restart);
  // A later reload keeps the removal time, and a forward configured again
  // is the configuration's.
  Config again = load(kConfig);
  known = remember_forwards(again, known, restart + hours(5));
  ASSERT_EQ(known.size(), 2u);
  EXPECT_FALSE(known[0].removed);
  EXPECT_FALSE(known[1].removed);
}

TEST(KnownForwards, ARemovedOneIsForgottenWhenNothingInTheQueueNeedsIt) {
  const auto keep = seconds(5 * 86400);
  const Time removed = kT0;
  // r@ falls back to s@ (removed too); a@ is configured.
  auto state = [&] {
    return std::vector<KnownForward>{
        {hidden("a@gmail.test"), std::nullopt},
        {hidden("r@gmail.test", {{mail::Target::Kind::forward, "s@gmail.test"}, {mail::Target::Kind::mailbox, "me"}}),
         removed},
        {hidden("s@gmail.test", {}), removed}};
  };
  auto kept = [](const std::vector<KnownForward>& k) {
    std::vector<std::string> out;
    out.reserve(k.size());
    for (const auto& e : k) out.push_back(e.forward.to);
    return out;
  };
  using Addresses = std::vector<std::string>;
  // Within [delivery] expire of its removal: kept, whatever the queue.
  auto k = state();
  forget_forwards(k, removed + keep - seconds(1), keep, {});
  EXPECT_EQ(kept(k), (Addresses{"a@gmail.test", "r@gmail.test", "s@gmail.test"}));
  // Later, a slot planned to r@ (or a notice to it): r@ and the forward
  // its chain goes through stay, however long ago they were removed.
  k = state();
  forget_forwards(k, removed + keep * 30, keep, {"r@gmail.test"});
  EXPECT_EQ(kept(k), (Addresses{"a@gmail.test", "r@gmail.test", "s@gmail.test"}));
  // A slot at s@ only: s@ stays.
  k = state();
  forget_forwards(k, removed + keep, keep, {"s@gmail.test"});
  EXPECT_EQ(kept(k), (Addresses{"a@gmail.test", "s@gmail.test"}));
  // Nothing in the queue uses them: forgotten; the configured one never is.
  k = state();
  forget_forwards(k, removed + keep, keep, {"other@gmail.test"});
  EXPECT_EQ(kept(k), (Addresses{"a@gmail.test"}));
}

TEST(KnownForwards, TheRemovalIsNeverRecordedBeforeTheLastMomentItWasConfigured) {
  Config none = load(kConfig);
  none.forwards.clear();
  const auto known = remember_forwards(none, {{hidden("r@gmail.test"), std::nullopt}},
                                       kT0 + std::chrono::milliseconds(300));
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(known.front().removed, kT0 + seconds(1));
}

TEST(KnownForwards, WhatTheConfigurationAcceptsIsWrittenAndReadBack) {
  // An IPv4-mapped source address (the configuration files it as IPv4)
  // and a defer limit longer than the file's limit (written as that limit:
  // longer than mail is kept either way).
  KnownForward mapped{hidden("m@gmail.test"), std::nullopt};
  mapped.forward.source_address.v4 = "::ffff:192.0.2.7";
  KnownForward patient{hidden("p@gmail.test"), std::nullopt};
  patient.forward.defer_limit = seconds(600LL * 7 * 86400 * 52);
  auto parsed = parse_known_forwards(format_known_forwards({mapped, patient}));
  EXPECT_TRUE(parsed.issues.empty());
  ASSERT_EQ(parsed.entries.size(), 2u);
  EXPECT_EQ(parsed.entries[0], mapped);
  EXPECT_EQ(parsed.entries[1].forward.to, "p@gmail.test");
  EXPECT_GE(parsed.entries[1].forward.defer_limit, seconds(100LL * 365 * 86400));
}

TEST(KnownForwards, ACrlfFileReadsTheSame) {
  auto parsed = parse_known_forwards(
      "hikyaku-known-forwards 1\r\n# c\r\nok@gmail.test 1800000000 900 no rewrite-from %- %- %- mailbox:me\r\n");
  EXPECT_TRUE(parsed.issues.empty());
  EXPECT_FALSE(parsed.foreign);
  ASSERT_EQ(parsed.entries.size(), 1u);
  EXPECT_EQ(parsed.entries.front().forward.fallback.front().value, "me");
}

TEST(KnownForwards, AFallbackMailboxThatIsGoneIsAWarning) {
  Config config = load(kConfig);
  const size_t warnings = config.warnings.size();
  (void)remember_forwards(config, {{hidden("r@gmail.test", {{mail::Target::Kind::mailbox, "gone"}}), kT0}}, kT0);
  ASSERT_EQ(config.warnings.size(), warnings + 1);
  EXPECT_NE(config.warnings.back().message.find("no longer configured"), std::string::npos);
  EXPECT_EQ(config.warnings.back().message.find("r@gmail.test"), std::string::npos);  // not named
}

}  // namespace
}  // namespace hikyaku::config
