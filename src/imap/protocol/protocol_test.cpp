// Unit tests for the sans-I/O IMAP protocol: framing, the command parser,
// response formatting, message structure and the engine driven through
// scripted conversations over a MemoryStore.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/strings.hpp"
#include "imap/protocol/command.hpp"
#include "imap/protocol/engine.hpp"
#include "imap/protocol/framer.hpp"
#include "imap/protocol/message.hpp"
#include "imap/protocol/response.hpp"

namespace hikyaku::imap::protocol {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------- framing

// SEARCH's substring test (RFC 3501 §6.4.4: case-insensitive): the same
// answers as a naive search, in time linear in both inputs (the needle and
// the message come from the client).
TEST(Icontains, AnswersAsANaiveSearchInLinearTime) {
  auto naive = [](std::string_view h, std::string_view n) {
    std::string lh(h), ln(n);
    for (char& c : lh) c = base::ascii_lower(c);
    for (char& c : ln) c = base::ascii_lower(c);
    return lh.find(ln) != std::string::npos;
  };
  EXPECT_TRUE(icontains("Subject: Quarterly FIGURES", "figures"));
  EXPECT_TRUE(icontains("anything", ""));
  EXPECT_FALSE(icontains("abc", "abcd"));
  uint32_t seed = 12345;
  auto next = [&seed] { return (seed = seed * 1103515245 + 12345) >> 16; };
  for (int round = 0; round < 2000; ++round) {
    std::string h, n;
    for (size_t i = 0, len = next() % 40; i < len; ++i) h += "aAbB"[next() % 4];
    for (size_t i = 0, len = next() % 6; i < len; ++i) n += "aAbB"[next() % 4];
    ASSERT_EQ(icontains(h, n), naive(h, n)) << h << " / " << n;
  }
  // The adversarial shape: 4 MB of 'a' and a 64 KiB needle that fails only
  // at its last octet. std::search took about 2.6e11 comparisons here.
  const std::string haystack(4 << 20, 'a');
  const std::string needle = std::string(64 << 10, 'A') + "b";
  EXPECT_FALSE(icontains(haystack, needle));
  EXPECT_TRUE(icontains(haystack + "b", needle));
}

TEST(Framer, Rfc3501Section4_3LiteralsInline) {
  Framer f(1000, 1000);
  std::string out;
  f.append("a1 LOGIN {5}\r\n");
  EXPECT_EQ(f.next(out), Framer::Status::continuation);
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  f.append("alice {3+}\r\npw\n\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out, "a1 LOGIN {5}\r\nalice {3+}\r\npw\n");
  EXPECT_TRUE(f.empty());
}

// in_command(): the session acknowledges input at once while a command is
// incomplete (net::Stream::acknowledge_now), and only then.
TEST(Framer, InCommandFromTheFirstOctetToTheCommandsEnd) {
  Framer f(1000, 1000);
  std::string out;
  EXPECT_FALSE(f.in_command());
  f.append("a1 APPEND INBOX {3}\r\n");
  EXPECT_TRUE(f.in_command());
  EXPECT_EQ(f.next(out), Framer::Status::continuation);
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  EXPECT_TRUE(f.in_command()) << "the line is taken in, the literal has not come";
  f.append("ab");
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  EXPECT_TRUE(f.in_command()) << "inside the literal";
  f.append("c");
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  EXPECT_TRUE(f.in_command()) << "the literal is whole, its line's end has not come (imaplib's CRLF)";
  f.append("\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_FALSE(f.in_command());
  f.append("a2 NOO");
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  EXPECT_TRUE(f.in_command());
}

TEST(Framer, ShrinkKeepsWhatIsBufferedAndFramingState) {
  // IDLE shrinks the framer's buffers (issue 15 item 4): a half-read
  // command, a half-read literal and pipelined bytes survive it.
  Framer f(100000, 100000);
  std::string out;
  f.append("a1 APPEND INBOX {70000+}\r\n" + std::string(70000, 'm') + "\r\na2 NO");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out.size(), std::string("a1 APPEND INBOX {70000+}\r\n").size() + 70000);
  EXPECT_EQ(f.next(out), Framer::Status::need_more);
  f.shrink();
  f.append("OP\r\na3 LOGIN {2}\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out, "a2 NOOP");
  EXPECT_EQ(f.next(out), Framer::Status::continuation);
  f.shrink();
  f.append("pw\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out, "a3 LOGIN {2}\r\npw");
  EXPECT_TRUE(f.empty());
}

TEST(Framer, TooLongLineAndTooLargeLiteral) {
  Framer f(30, 10);
  std::string out;
  f.append("a1 NOOP " + std::string(60, 'x'));
  EXPECT_EQ(f.next(out), Framer::Status::too_long);
  EXPECT_EQ(tag_of(out), "a1");
  f.append("yyy\r\na2 NOOP\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out, "a2 NOOP");
  // RFC 7888: a too-large LITERAL+ is skipped with the rest of its line.
  f.append("a3 APPEND INBOX {11+}\r\n01234567890 more\r\na4 NOOP\r\n");
  EXPECT_EQ(f.next(out), Framer::Status::too_large);
  ASSERT_EQ(f.next(out), Framer::Status::command);
  EXPECT_EQ(out, "a4 NOOP");
}

// A command of many literals, each within max_literal, is bounded as a
// whole (max_literal + max_line): without that bound, literal after
// literal would grow it without end. The limit moves between commands.
TEST(Framer, ManyLiteralsAreBoundedAsAWhole) {
  Framer f(30, 100);
  std::string out;
  f.append("a1 APPEND INBOX {60+}\r\n" + std::string(60, 'x') + " {60+}\r\n");
  EXPECT_EQ(f.next(out), Framer::Status::too_large);  // 60 + 60 and the lines > 100 + 30
  EXPECT_EQ(tag_of(out), "a1");
  f.append(std::string(60, 'y') + "\r\na2 APPEND INBOX {40+}\r\n" + std::string(40, 'x') + " {40+}\r\n" +
           std::string(40, 'y') + "\r\n");
  ASSERT_EQ(f.next(out), Framer::Status::command);  // the skipped literal and its line are gone
  EXPECT_TRUE(out.starts_with("a2 APPEND INBOX {40+}\r\n"));
  EXPECT_EQ(out.size(), 23u + 40 + 8 + 40);
  f.set_max_literal(10);
  f.append("a3 LOGIN {11}\r\n");
  EXPECT_EQ(f.next(out), Framer::Status::too_large);  // refused before the client sends it
  f.append("a4 LOGIN {10}\r\n");
  EXPECT_EQ(f.next(out), Framer::Status::continuation);
}

// ---------------------------------------------------------------- parsing

Options plaintext_options_for_test() {
  Options o;
  o.allow_plaintext = true;
  return o;
}

TEST(Command, Rfc3501Section9Basics) {
  struct Case {
    std::string text;
    bool ok;
    Verb verb;
    std::string tag;
  };
  const Case cases[] = {
      {"a1 CAPABILITY", true, Verb::capability, "a1"},
      {"a1 capability", true, Verb::capability, "a1"},
      {"A.2 noop", true, Verb::noop, "A.2"},
      {"a1 LOGIN alice \"pass word\"", true, Verb::login, "a1"},
      {"a1 LOGIN alice", false, Verb::noop, "a1"},
      {"a1 SELECT INBOX", true, Verb::select, "a1"},
      {"a1 SELECT", false, Verb::noop, "a1"},
      {"a1 FETCH 1:* (FLAGS UID)", true, Verb::fetch, "a1"},
      {"a1 FETCH 1:* FULL", true, Verb::fetch, "a1"},
      {"a1 FETCH 0 FLAGS", false, Verb::noop, "a1"},
      {"a1 FETCH 1 (FLAGS", false, Verb::noop, "a1"},
      {"a1 FETCH 1 BODY[HEADER.FIELDS (FROM TO)]<0.100>", true, Verb::fetch, "a1"},
      {"a1 UID FETCH 1:* BODY.PEEK[]", true, Verb::fetch, "a1"},
      {"a1 UID NOOP", false, Verb::noop, "a1"},
      {"a1 STORE 1 +FLAGS.SILENT (\\Seen)", true, Verb::store, "a1"},
      {"a1 STORE 1 FLAGS \\Seen \\Deleted", true, Verb::store, "a1"},
      {"a1 STORE 1 XFLAGS (\\Seen)", false, Verb::noop, "a1"},
      {"a1 SEARCH OR FROM alice NOT SEEN", true, Verb::search, "a1"},
      {"a1 SEARCH (SINCE 1-Feb-2024 BEFORE \"5-Mar-2024\") LARGER 10", true, Verb::search, "a1"},
      {"a1 SEARCH SINCE 31-Foo-2024", false, Verb::noop, "a1"},
      {"a1 SEARCH", false, Verb::noop, "a1"},
      {"a1 APPEND INBOX (\\Seen) \"05-Mar-2024 10:00:00 +0100\" {3}\r\nabc", true, Verb::append, "a1"},
      {"a1 APPEND INBOX {3}\r\nab", false, Verb::noop, "a1"},
      {"a1 ID (\"name\" \"mutt\" \"version\" NIL)", true, Verb::id, "a1"},
      {"a1 ID NIL", true, Verb::id, "a1"},
      {"a1 AUTHENTICATE PLAIN AGFsaWNlAHB3", true, Verb::authenticate, "a1"},
      {"a1 LIST \"\" *", true, Verb::list, "a1"},
      {"a1 STATUS INBOX (MESSAGES UIDNEXT)", true, Verb::status, "a1"},
      {"a1 UID EXPUNGE 1:3", true, Verb::expunge, "a1"},
      {"a1 XYZZY", false, Verb::noop, "a1"},
      {"+ NOOP", false, Verb::noop, "*"},
      {"", false, Verb::noop, "*"},
      {"a1", false, Verb::noop, "a1"},
      {"a1  NOOP", false, Verb::noop, "a1"},
      {"a1 NOOP extra", false, Verb::noop, "a1"},
      {"a\0001 NOOP"s, false, Verb::noop, "*"},
  };
  for (const auto& c : cases) {
    auto r = parse_command(c.text);
    EXPECT_EQ(r.command.has_value(), c.ok) << c.text << " error: " << r.error;
    EXPECT_EQ(r.tag, c.tag) << c.text;
    if (c.ok && r.command) {
      EXPECT_EQ(r.command->verb, c.verb) << c.text;
    }
  }
}

TEST(Command, Rfc3501Section6_4_5FetchAttributes) {
  auto r = parse_command("t FETCH 2,4:* (UID BODY.PEEK[1.2.MIME] BODY[HEADER.FIELDS.NOT (Received)]<5.10> RFC822.SIZE)");
  ASSERT_TRUE(r.command) << r.error;
  const auto& c = *r.command;
  ASSERT_EQ(c.set.ranges.size(), 2u);
  EXPECT_EQ(c.set.ranges[1].first, 4u);
  EXPECT_EQ(c.set.ranges[1].last, 0u);  // "*"
  ASSERT_EQ(c.fetch.size(), 4u);
  EXPECT_EQ(c.fetch[1].kind, FetchAtt::Kind::body_section);
  EXPECT_TRUE(c.fetch[1].peek);
  EXPECT_EQ(c.fetch[1].section.part, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(c.fetch[1].section.text, Section::Text::mime);
  EXPECT_EQ(c.fetch[2].section.text, Section::Text::header_fields_not);
  EXPECT_EQ(c.fetch[2].section.fields, std::vector<std::string>{"Received"});
  EXPECT_EQ(*c.fetch[2].partial_offset, 5u);
  EXPECT_EQ(c.fetch[2].partial_count, 10u);
  EXPECT_TRUE(c.set.contains(7, 9));
  EXPECT_FALSE(c.set.contains(3, 9));
}

// RFC 7162 §3.1 (CONDSTORE) syntax: SELECT/EXAMINE parameters, the FETCH
// and STORE modifiers (RFC 4466), the SEARCH MODSEQ key.
TEST(Command, Rfc7162CondstoreSyntax) {
  auto select = parse_command("a SELECT INBOX (CONDSTORE)");
  ASSERT_TRUE(select.command) << select.error;
  EXPECT_TRUE(select.command->condstore);
  EXPECT_EQ(select.command->mailbox, "INBOX");
  auto examine = parse_command("a EXAMINE \"x y\" (condstore)");
  ASSERT_TRUE(examine.command) << examine.error;
  EXPECT_TRUE(examine.command->condstore);
  EXPECT_FALSE(parse_command("a SELECT INBOX").command->condstore);

  auto fetch = parse_command("a FETCH 1:* (FLAGS MODSEQ) (CHANGEDSINCE 12345)");
  ASSERT_TRUE(fetch.command) << fetch.error;
  ASSERT_EQ(fetch.command->fetch.size(), 2u);
  EXPECT_EQ(fetch.command->fetch[1].kind, FetchAtt::Kind::modseq);
  EXPECT_EQ(fetch.command->changed_since, 12345u);
  auto uid_fetch = parse_command("a UID FETCH 1 FLAGS (CHANGEDSINCE 5)");
  ASSERT_TRUE(uid_fetch.command) << uid_fetch.error;
  EXPECT_EQ(uid_fetch.command->changed_since, 5u);
  EXPECT_FALSE(parse_command("a FETCH 1 FLAGS").command->changed_since);
  auto big = parse_command("a FETCH 1 MODSEQ (CHANGEDSINCE 9223372036854775807)");  // 2^63-1 (RFC 7162 §7)
  ASSERT_TRUE(big.command) << big.error;
  EXPECT_EQ(big.command->changed_since, 9223372036854775807ULL);

  auto store = parse_command("a STORE 1:5 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)");
  ASSERT_TRUE(store.command) << store.error;
  EXPECT_EQ(store.command->unchanged_since, 0u);
  EXPECT_TRUE(store.command->store.silent);
  EXPECT_EQ(store.command->store.flags, std::vector<std::string>{"\\Deleted"});
  EXPECT_FALSE(parse_command("a STORE 1 +FLAGS (\\Seen)").command->unchanged_since);

  auto search = parse_command("a SEARCH MODSEQ 5");
  ASSERT_TRUE(search.command) << search.error;
  ASSERT_EQ(search.command->search.children.size(), 1u);
  EXPECT_EQ(search.command->search.children[0].kind, SearchKey::Kind::modseq);
  EXPECT_EQ(search.command->search.children[0].number, 5u);
  auto entry = parse_command("a SEARCH 1:3 MODSEQ \"/flags/\\\\seen\" all 7");
  ASSERT_TRUE(entry.command) << entry.error;
  ASSERT_EQ(entry.command->search.children.size(), 2u);
  EXPECT_EQ(entry.command->search.children[1].kind, SearchKey::Kind::modseq);
  EXPECT_EQ(entry.command->search.children[1].number, 7u);

  for (const char* bad : {"a SELECT INBOX (FOO)", "a SELECT INBOX ()", "a SELECT INBOX CONDSTORE",
                          "a FETCH 1 FLAGS (CHANGEDSINCE)", "a FETCH 1 FLAGS (CHANGEDSINCE 99999999999999999999)",
                          "a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "a FETCH 1 FLAGS (VANISHED)",
                          "a STORE 1 (UNCHANGEDSINCE x) FLAGS \\Seen", "a STORE 1 (UNCHANGEDSINCE 1)FLAGS \\Seen",
                          "a SEARCH MODSEQ \"/flags/x\" bogus 7", "a SEARCH MODSEQ", "a SEARCH MODSEQ \"/flags/x\" all"}) {
    EXPECT_FALSE(parse_command(bad).command) << bad;
  }
}

// RFC 7162 §3.2.5 SELECT/EXAMINE (QRESYNC (...)) and §3.2.6 UID FETCH
// (CHANGEDSINCE n VANISHED); §7 ABNF: uidvalidity is nz-number, the
// mod-sequence-value at least 1, known-uids and seq-match-data hold no "*".
TEST(Command, Rfc7162QresyncSyntax) {
  // The RFC's own examples (§3.2.5).
  auto select = parse_command("A03 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))");
  ASSERT_TRUE(select.command) << select.error;
  ASSERT_TRUE(select.command->qresync);
  EXPECT_EQ(select.command->qresync->uidvalidity, 67890007u);
  EXPECT_EQ(select.command->qresync->modseq, 20050715194045000u);
  ASSERT_TRUE(select.command->qresync->known_uids);
  ASSERT_EQ(select.command->qresync->known_uids->ranges.size(), 3u);
  EXPECT_EQ(select.command->qresync->known_uids->ranges[1].first, 43u);
  EXPECT_EQ(select.command->qresync->known_uids->ranges[1].last, 211u);
  EXPECT_FALSE(select.command->condstore);
  auto matched = parse_command(
      "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
      "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))");
  ASSERT_TRUE(matched.command) << matched.error;
  ASSERT_TRUE(matched.command->qresync && matched.command->qresync->known_uids);
  EXPECT_EQ(matched.command->qresync->known_uids->ranges.size(), 1u);  // the match data is dropped
  auto only_match = parse_command("a examine \"x y\" (condstore qresync (1 2 (1:2 5,7)))");
  ASSERT_TRUE(only_match.command) << only_match.error;
  EXPECT_TRUE(only_match.command->condstore);
  ASSERT_TRUE(only_match.command->qresync);
  EXPECT_FALSE(only_match.command->qresync->known_uids);
  auto bare = parse_command("a SELECT INBOX (QRESYNC (4294967295 9223372036854775807))");
  ASSERT_TRUE(bare.command) << bare.error;
  EXPECT_EQ(bare.command->qresync->uidvalidity, 4294967295u);
  EXPECT_FALSE(parse_command("a SELECT INBOX (CONDSTORE)").command->qresync);

  auto vanished = parse_command("a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
  ASSERT_TRUE(vanished.command) << vanished.error;
  EXPECT_TRUE(vanished.command->vanished);
  EXPECT_EQ(vanished.command->changed_since, 12345u);
  auto any_order = parse_command("a UID FETCH 1:* FLAGS (vanished changedsince 1)");
  ASSERT_TRUE(any_order.command) << any_order.error;
  EXPECT_TRUE(any_order.command->vanished);
  EXPECT_FALSE(parse_command("a UID FETCH 1 FLAGS (CHANGEDSINCE 1)").command->vanished);

  for (const char* bad : {
           "a SELECT INBOX (QRESYNC (0 1))",                      // uidvalidity is nz-number
           "a SELECT INBOX (QRESYNC (1 0))",                      // mod-sequence-value >= 1
           "a SELECT INBOX (QRESYNC (4294967296 1))",
           "a SELECT INBOX (QRESYNC (1 9223372036854775808))",
           "a SELECT INBOX (QRESYNC (1))", "a SELECT INBOX (QRESYNC ())", "a SELECT INBOX (QRESYNC)",
           "a SELECT INBOX (QRESYNC (1 2)", "a SELECT INBOX QRESYNC (1 2)", "a SELECT INBOX (QRESYNC 1 2)",
           "a SELECT INBOX (QRESYNC (1 2 1:*))",                  // known-uids: "*" is not allowed
           "a SELECT INBOX (QRESYNC (1 2 *))", "a SELECT INBOX (QRESYNC (1 2 1:3 (1:* 1:3)))",
           "a SELECT INBOX (QRESYNC (1 2 1:3 (1:3)))", "a SELECT INBOX (QRESYNC (1 2 1:3 (1:3 1:3) 5))",
           "a SELECT INBOX (QRESYNC (1 2) QRESYNC (1 2))", "a SELECT INBOX (QRESYNC (1 2 x))",
           "a FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)",        // §3.2.6: UID FETCH only
           "a UID FETCH 1:* FLAGS (VANISHED)",                    // ... and with CHANGEDSINCE
           "a UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED VANISHED)",
           "a UID FETCH 1:* FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "a UID FETCH 1:* FLAGS ()",
           "a UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED", "a UID FETCH 1:* FLAGS (CHANGEDSINCE 1 BOGUS)"}) {
    EXPECT_FALSE(parse_command(bad).command) << bad;
  }
}

TEST(Command, HostileInputIsRefusedNotCrashed) {
  // Deep nesting is bounded.
  std::string deep = "a SEARCH " + std::string(200, '(') + "ALL" + std::string(200, ')');
  auto r = parse_command(deep);
  EXPECT_FALSE(r.command);
  EXPECT_EQ(r.tag, "a");
  std::string nots = "a SEARCH";
  for (int i = 0; i < 100; ++i) nots += " NOT";
  EXPECT_FALSE(parse_command(nots + " ALL").command);
  // Numbers beyond 32 bits, a literal longer than the data, an empty literal.
  EXPECT_FALSE(parse_command("a FETCH 4294967296 FLAGS").command);
  EXPECT_FALSE(parse_command("a LOGIN {10}\r\nabc def").command);
  auto empty = parse_command("a LOGIN {0}\r\n {0}\r\n");
  ASSERT_TRUE(empty.command) << empty.error;
  EXPECT_EQ(empty.command->user, "");
  // Partial with a zero count, a section on a non-section item.
  EXPECT_FALSE(parse_command("a FETCH 1 BODY[]<0.0>").command);
  EXPECT_FALSE(parse_command("a FETCH 1 RFC822[]").command);
  EXPECT_FALSE(parse_command("a FETCH 1 BODY[MIME]").command);  // MIME needs a part number
}

TEST(Engine, FramingErrorsAnswerWithTheTag) {
  Engine e(plaintext_options_for_test());
  EXPECT_EQ(e.on_framing_error(Framer::Status::too_long, "t9 NOOP xxxx").reply, "t9 BAD command line too long\r\n");
  EXPECT_EQ(e.on_framing_error(Framer::Status::too_large, "t8 APPEND INBOX {99999999}").reply,
            "t8 NO [TOOBIG] message too large\r\n");
  EXPECT_EQ(e.on_framing_error(Framer::Status::too_large, "t7 LOGIN {99999999}").reply, "t7 BAD literal too large\r\n");
}

TEST(Command, LiteralArgumentsAndQuoting) {
  auto r = parse_command("a LOGIN {5}\r\nalice \"p\\\"w\\\\\"");
  ASSERT_TRUE(r.command) << r.error;
  EXPECT_EQ(r.command->user, "alice");
  EXPECT_EQ(r.command->password, "p\"w\\");
}

TEST(Response, QuotingAndLiterals) {
  EXPECT_EQ(quote("abc"), "\"abc\"");
  EXPECT_EQ(quote("a\"b\\"), "\"a\\\"b\\\\\"");
  EXPECT_EQ(quote("a\r\nb"), "{4}\r\na\r\nb");
  EXPECT_EQ(quote("caf\xc3\xa9"), "{5}\r\ncaf\xc3\xa9");
  EXPECT_EQ(nstring(std::nullopt), "NIL");
  EXPECT_EQ(flag_list(kSeen | kDeleted, true), "(\\Seen \\Deleted \\Recent)");
  EXPECT_EQ(maildir_letters(kSeen | kAnswered | kFlagged | kDeleted | kDraft), "DFRST");
  EXPECT_EQ(from_maildir_letters("ST"), kSeen | kDeleted);
  EXPECT_EQ(internal_date(0), "\"01-Jan-1970 00:00:00 +0000\"");
  EXPECT_EQ(parse_date_text("1-Feb-1970"), 31);
}

// ---------------------------------------------------------------- messages

const std::string kSimple =
    "From: \"Ann Example\" <ann@example.org>\r\n"
    "To: bob@example.test, Carol <carol@example.test>\r\n"
    "Subject: Hello\r\n"
    "  world\r\n"
    "Date: Tue, 5 Mar 2024 10:00:00 +0100\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "\r\n"
    "line one\r\n"
    "line two\r\n";

const std::string kMultipart =
    "From: ann@example.org\r\n"
    "Subject: parts\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "hello\r\n"
    "--XX\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "\r\n"
    "inner body\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

TEST(Message, Rfc3501Section6_4_5Sections) {
  Section s;
  s.text = Section::Text::header_fields;
  s.fields = {"SUBJECT"};
  EXPECT_EQ(*section_text(kSimple, s), "Subject: Hello\r\n  world\r\n\r\n");
  s.text = Section::Text::text;
  EXPECT_EQ(*section_text(kSimple, s), "line one\r\nline two\r\n");
  s = Section{};
  s.part = {1};
  EXPECT_EQ(*section_text(kSimple, s), "line one\r\nline two\r\n");
  s.part = {2};
  EXPECT_FALSE(section_text(kSimple, s));

  s = Section{};
  s.part = {1};
  EXPECT_EQ(*section_text(kMultipart, s), "hello");
  s.text = Section::Text::mime;
  EXPECT_EQ(*section_text(kMultipart, s), "Content-Type: text/plain; charset=utf-8\r\n\r\n");
  s = Section{};
  s.part = {2};
  s.text = Section::Text::header;
  EXPECT_EQ(*section_text(kMultipart, s), "Subject: inner\r\n\r\n");
  s.part = {2, 1};
  s.text = Section::Text::none;
  EXPECT_EQ(*section_text(kMultipart, s), "inner body");  // the CRLF belongs to the delimiter
  s.part = {3};
  EXPECT_FALSE(section_text(kMultipart, s));
}

TEST(Message, Rfc3501Section7_4_2Envelope) {
  EXPECT_EQ(envelope(kSimple),
            "(\"Tue, 5 Mar 2024 10:00:00 +0100\" \"Hello  world\" "
            "((\"Ann Example\" NIL \"ann\" \"example.org\")) "
            "((\"Ann Example\" NIL \"ann\" \"example.org\")) "
            "((\"Ann Example\" NIL \"ann\" \"example.org\")) "
            "((NIL NIL \"bob\" \"example.test\")(\"Carol\" NIL \"carol\" \"example.test\")) "
            "NIL NIL NIL \"<m1@example.org>\")");
  EXPECT_NE(envelope("To: friends: a@b, c@d;\r\n\r\n").find(
                "((NIL NIL \"friends\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL))"),
            std::string::npos);
}

TEST(Message, Rfc3501Section7_4_2BodyStructure) {
  EXPECT_EQ(body_structure(kSimple, false), "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2)");
  EXPECT_EQ(body_structure(kSimple, true),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 20 2 NIL NIL NIL NIL)");
  std::string mp = body_structure(kMultipart, false);
  EXPECT_TRUE(mp.starts_with("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 5 1)(\"MESSAGE\" \"RFC822\""))
      << mp;
  EXPECT_TRUE(mp.ends_with(" \"MIXED\")")) << mp;
  EXPECT_TRUE(body_structure(kMultipart, true).ends_with(" \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)"));
}

// Nested deeper than the MIME parser goes (mail/mime.hpp): the innermost
// message/rfc822 still has its envelope, a body and a line count (RFC 3501
// §9 body-type-msg); the body past the limit is described as opaque.
TEST(Message, Rfc3501Section9MessagePartPastTheParsersLimits) {
  std::string m = "Subject: innermost\r\n\r\nhello\r\n";
  for (int i = 0; i < 20; ++i) m = "Subject: level " + std::to_string(i) + "\r\nContent-Type: message/rfc822\r\n\r\n" + m;
  const std::string s = body_structure(m, false);
  const auto opaque = s.find("(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" ");
  ASSERT_NE(opaque, std::string::npos) << s;
  // The message part that holds it: its envelope before, its line count after.
  EXPECT_NE(s.rfind("NIL NIL NIL NIL)", opaque), std::string::npos) << s;
  EXPECT_EQ(s.substr(s.find(')', opaque), 5), ") 12)") << s;  // the part's 12 lines
  EXPECT_EQ(std::count(s.begin(), s.end(), '('), std::count(s.begin(), s.end(), ')')) << s;
}

// ---------------------------------------------------------------- engine

class Conversation {
 public:
  explicit Conversation(Options o = {}) : engine(o) {
    auto a = std::make_unique<MemoryAccount>();
    account = a.get();
    store = &a->inbox();
    pending_account = std::move(a);
  }
  // Send one command; answer authenticate actions with "alice"/"pw".
  std::string send(std::string_view text) {
    Action a = engine.on_input(text);
    std::string out = a.reply;
    while (a.kind == Action::Kind::more) {
      ++parts;
      a = engine.resume();
      out += a.reply;
    }
    last_kind = a.kind;
    if (a.kind == Action::Kind::authenticate) {
      bool ok = !a.refused && a.user == "alice" && a.password == "pw";
      Action b = ok ? engine.login_result(LoginOutcome::ok, std::move(pending_account))
                    : engine.login_result(LoginOutcome::bad_credentials);
      out += b.reply;
      last_kind = b.kind;
    }
    if (a.kind == Action::Kind::start_tls) engine.tls_started();
    return out;
  }
  Engine engine;
  MemoryAccount* account;
  MemoryStore* store;  // INBOX
  std::unique_ptr<MemoryAccount> pending_account;
  Action::Kind last_kind = Action::Kind::none;
  size_t parts = 0;  // Action::Kind::more answers seen
};

Options plaintext() {
  Options o;
  o.allow_plaintext = true;
  return o;
}

TEST(Engine, Rfc3501Section6_2_3LoginDisabledWithoutTls) {
  Options o;
  o.tls_available = true;
  Conversation c(o);
  EXPECT_NE(c.engine.greeting().find("STARTTLS LOGINDISABLED"), std::string::npos);
  EXPECT_EQ(c.send("a1 LOGIN alice pw"), "a1 NO [PRIVACYREQUIRED] LOGIN needs TLS (STARTTLS)\r\n");
  EXPECT_EQ(c.send("a2 AUTHENTICATE PLAIN AGFsaWNlAHB3").substr(0, 6), "a2 NO ");
  EXPECT_EQ(c.send("a3 STARTTLS"), "a3 OK Begin TLS negotiation now\r\n");
  EXPECT_EQ(c.engine.capabilities().find("LOGINDISABLED"), std::string::npos);
  EXPECT_NE(c.engine.capabilities().find("AUTH=PLAIN"), std::string::npos);
  EXPECT_TRUE(c.send("a4 LOGIN alice pw").starts_with("a4 OK [CAPABILITY"));
  EXPECT_EQ(c.engine.state(), State::authenticated);
}

TEST(Engine, Rfc4959SaslIrAndContinuation) {
  Conversation c(plaintext());
  // "\0alice\0wrong"
  EXPECT_EQ(c.send("a1 AUTHENTICATE PLAIN AGFsaWNlAHdyb25n"), "a1 NO [AUTHENTICATIONFAILED] authentication failed\r\n");
  EXPECT_EQ(c.send("a2 AUTHENTICATE PLAIN"), "+ \r\n");
  EXPECT_EQ(c.send("*"), "a2 BAD AUTHENTICATE cancelled\r\n");
  EXPECT_EQ(c.send("a3 AUTHENTICATE PLAIN"), "+ \r\n");
  EXPECT_TRUE(c.send("AGFsaWNlAHB3").starts_with("a3 OK"));
}

TEST(Engine, Rfc3501SelectFetchStoreExpunge) {
  Conversation c(plaintext());
  c.store->add(kSimple);
  c.store->add(kMultipart, kSeen);
  c.send("a1 LOGIN alice pw");
  std::string sel = c.send("a2 SELECT inbox");
  EXPECT_NE(sel.find("* 2 EXISTS\r\n"), std::string::npos) << sel;
  EXPECT_NE(sel.find("* 2 RECENT\r\n"), std::string::npos) << sel;
  EXPECT_NE(sel.find("* OK [UNSEEN 1]"), std::string::npos) << sel;
  EXPECT_NE(sel.find("* OK [UIDVALIDITY 1234]"), std::string::npos) << sel;
  EXPECT_NE(sel.find("* OK [UIDNEXT 3]"), std::string::npos) << sel;
  EXPECT_NE(sel.find("a2 OK [READ-WRITE]"), std::string::npos) << sel;

  EXPECT_EQ(c.send("a3 FETCH 1 (UID RFC822.SIZE FLAGS)"),
            "* 1 FETCH (UID 1 RFC822.SIZE " + std::to_string(kSimple.size()) +
                " FLAGS (\\Recent))\r\na3 OK FETCH completed\r\n");
  // BODY[] sets \Seen and reports the flags; BODY.PEEK does not.
  EXPECT_EQ(c.send("a4 FETCH 1 BODY.PEEK[TEXT]<5.3>"), "* 1 FETCH (BODY[TEXT]<5> {3}\r\none)\r\na4 OK FETCH completed\r\n");
  EXPECT_EQ(c.store->entries[0].meta.flags, 0);
  EXPECT_EQ(c.send("a5 FETCH 1 BODY[TEXT]"),
            "* 1 FETCH (BODY[TEXT] {20}\r\nline one\r\nline two\r\n FLAGS (\\Seen \\Recent))\r\na5 OK FETCH completed\r\n");
  EXPECT_EQ(c.store->entries[0].meta.flags, kSeen);

  EXPECT_EQ(c.send("a6 UID STORE 2 +FLAGS (\\Deleted)"),
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Deleted \\Recent))\r\na6 OK UID STORE completed\r\n");
  EXPECT_EQ(c.send("a7 SEARCH DELETED"), "* SEARCH 2\r\na7 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("a8 EXPUNGE"), "* 2 EXPUNGE\r\n* 1 RECENT\r\na8 OK EXPUNGE completed\r\n");
  EXPECT_EQ(c.store->entries.size(), 1u);
  EXPECT_EQ(c.send("a9 FETCH 2 FLAGS"), "a9 BAD invalid message sequence number\r\n");
}

TEST(Engine, Rfc3501Section7_4_1ExpungeDeferredDuringFetch) {
  Conversation c(plaintext());
  c.store->add(kSimple);
  c.store->add(kSimple);
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  // Another session expunges message 1 and delivers a new one.
  c.store->entries.erase(c.store->entries.begin());
  c.store->add(kSimple);
  EXPECT_EQ(c.send("a3 FETCH 2 UID"), "* 2 FETCH (UID 2)\r\n* 3 EXISTS\r\n* 3 RECENT\r\na3 OK FETCH completed\r\n");
  EXPECT_EQ(c.send("a4 NOOP"), "* 1 EXPUNGE\r\n* 2 RECENT\r\na4 OK NOOP completed\r\n");
  EXPECT_EQ(c.send("a5 UID SEARCH ALL"), "* SEARCH 2 3\r\na5 OK UID SEARCH completed\r\n");
}

// RFC 3501 §6.4.3, §6.4.2: EXPUNGE and CLOSE remove what has \Deleted now.
// Another session (or POP3, or a mail reader on the Maildir) cleared or set
// it after this session last looked: its view must not decide.
TEST(Engine, Rfc3501Section6_4_3ExpungeTakesTheFlagsAsTheyAreNow) {
  Conversation c(plaintext());
  c.store->add(kSimple);
  c.store->add(kSimple);
  c.store->add(kSimple);
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  EXPECT_EQ(c.send("a3 STORE 1:2 +FLAGS.SILENT (\\Deleted)"), "a3 OK STORE completed\r\n");
  // Elsewhere: message 1 undeleted, message 3 deleted.
  ASSERT_TRUE(c.store->set_flags(c.store->entries[0].meta, 0, {}));
  ASSERT_TRUE(c.store->set_flags(c.store->entries[2].meta, kDeleted, {}));
  const std::string r = c.send("a4 EXPUNGE");
  EXPECT_NE(r.find("* 1 FETCH (FLAGS (\\Recent))\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"), std::string::npos) << r;
  EXPECT_TRUE(r.ends_with("a4 OK EXPUNGE completed\r\n")) << r;
  ASSERT_EQ(c.store->entries.size(), 1u);
  EXPECT_EQ(c.store->entries[0].meta.uid, 1u);

  // CLOSE: the same rule, silently.
  c.store->add(kSimple);  // UID 4
  c.send("b1 SELECT INBOX");
  EXPECT_EQ(c.send("b2 STORE 1 +FLAGS.SILENT (\\Deleted)"), "b2 OK STORE completed\r\n");
  ASSERT_TRUE(c.store->set_flags(c.store->entries[0].meta, kSeen, {}));
  ASSERT_TRUE(c.store->set_flags(c.store->entries[1].meta, kDeleted, {}));
  EXPECT_EQ(c.send("b3 CLOSE"), "b3 OK CLOSE completed\r\n");
  ASSERT_EQ(c.store->entries.size(), 1u);
  EXPECT_EQ(c.store->entries[0].meta.uid, 1u);
}

TEST(Engine, Rfc2177Idle) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  EXPECT_EQ(c.send("a3 IDLE"), "+ idling\r\n");
  EXPECT_EQ(c.last_kind, Action::Kind::idle);
  EXPECT_EQ(c.engine.idle_poll(), "");
  c.store->add(kSimple);
  EXPECT_EQ(c.engine.idle_poll(), "* 1 EXISTS\r\n* 1 RECENT\r\n");
  EXPECT_EQ(c.send("DONE"), "a3 OK IDLE terminated\r\n");
  EXPECT_EQ(c.send("a4 IDLE"), "+ idling\r\n");
  EXPECT_EQ(c.send("nope"), "a4 BAD expected DONE\r\n");
}

TEST(Engine, SearchKeys) {
  Conversation c(plaintext());
  c.store->add(kSimple, kFlagged);
  c.store->add(kMultipart, kSeen | kAnswered);
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  struct Case {
    std::string query;
    std::string want;
  };
  const Case cases[] = {
      {"SEEN", " 2"},
      {"UNSEEN", " 1"},
      {"FLAGGED", " 1"},
      {"ANSWERED", " 2"},
      {"NEW", " 1"},
      {"FROM ANN@EXAMPLE", " 1 2"},
      {"TO carol", " 1"},
      {"SUBJECT \"hello  WORLD\"", " 1"},
      {"BODY \"inner body\"", " 2"},
      {"TEXT preamble", " 2"},
      {"HEADER Message-ID m1@", " 1"},
      {"NOT SEEN", " 1"},
      {"OR SEEN FLAGGED", " 1 2"},
      {"LARGER " + std::to_string(kSimple.size()), " 2"},
      {"SMALLER " + std::to_string(kSimple.size() + 1), " 1"},
      {"UID 2:*", " 2"},
      {"2", " 2"},
      {"SENTON 5-Mar-2024", " 1"},
      {"SENTBEFORE 5-Mar-2024", ""},
      {"ON 14-Nov-2023", " 1 2"},
      {"SINCE 15-Nov-2023", ""},
      {"BEFORE 15-Nov-2023", " 1 2"},
      {"CHARSET UTF-8 ALL", " 1 2"},
  };
  for (const auto& k : cases) {
    EXPECT_EQ(c.send("s SEARCH " + k.query), "* SEARCH" + k.want + "\r\ns OK SEARCH completed\r\n") << k.query;
  }
  EXPECT_TRUE(c.send("s SEARCH CHARSET KOI8-R ALL").starts_with("s NO [BADCHARSET"));
}

// Header keys match RFC 2047 encoded words decoded (what the reader sees),
// and as they are.
TEST(Engine, SearchDecodesEncodedWords) {
  Conversation c(plaintext());
  c.store->add(kSimple);
  c.store->add("From: =?UTF-8?Q?Ren=C3=A9?= <rene@example.org>\r\n"
               "Subject: =?UTF-8?Q?Invoice_March?=\r\nX-Note: =?ISO-8859-1?Q?caf=E9?=\r\n\r\nx\r\n");
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  const std::pair<std::string, std::string> cases[] = {
      {"SUBJECT \"invoice march\"", " 2"},
      {"SUBJECT Invoice_March", " 2"},
      {"CHARSET UTF-8 FROM {5+}\r\nRen\xC3\xA9", " 2"},
      {"FROM rene@example", " 2"},
      {"CHARSET UTF-8 HEADER X-Note {5+}\r\ncaf\xC3\xA9", " 2"},
      {"SUBJECT hello", " 1"},
  };
  for (const auto& [query, want] : cases) {
    EXPECT_EQ(c.send("s SEARCH " + query), "* SEARCH" + want + "\r\ns OK SEARCH completed\r\n") << query;
  }
}

// A selected folder that another session deletes: the next command (and
// the end of IDLE) gets an untagged BYE and the session ends, as Dovecot
// does, not a NO [SERVERBUG] for every command.
TEST(Engine, SelectedFolderDeletedElsewhereEndsTheSession) {
  const std::string bye = "* BYE the selected folder was deleted or renamed by another session\r\n";
  // A session with "box" selected (and, `idle`, in IDLE) whose folder
  // another session then deletes.
  auto box_deleted_under = [](Conversation& c, bool idle) {
    c.send("a1 LOGIN alice pw");
    c.send("a2 CREATE box");
    EXPECT_TRUE(c.send("a3 SELECT box").ends_with("a3 OK [READ-WRITE] SELECT completed\r\n"));
    if (idle) {
      EXPECT_EQ(c.send("a4 IDLE"), "+ idling\r\n");
    }
    ASSERT_TRUE(c.account->remove("box"));  // another session's DELETE
  };
  Conversation c(plaintext());
  box_deleted_under(c, false);
  EXPECT_EQ(c.send("a5 FETCH 1:* FLAGS"), bye);
  EXPECT_EQ(c.last_kind, Action::Kind::close);

  Conversation d(plaintext());
  box_deleted_under(d, true);
  EXPECT_EQ(d.send("DONE"), bye);
  EXPECT_EQ(d.last_kind, Action::Kind::close);

  Conversation e(plaintext());  // LOGOUT still says goodbye properly
  box_deleted_under(e, false);
  EXPECT_EQ(e.send("a5 LOGOUT"), "* BYE hikyaku logging out\r\na5 OK LOGOUT completed\r\n");
}

// The selected folder's UIDVALIDITY changes under the session (another
// program lost its uidlist; the rebuilt one numbers from 1 again): the view
// is not matched to the new numbers by UID, where UID 2 would now name
// another message, and the session ends with a BYE before a STORE or
// EXPUNGE can reach the wrong one (RFC 3501 §2.3.1.1).
TEST(Engine, UidvalidityChangedUnderTheSessionEndsIt) {
  const std::string bye = "* BYE the selected folder's UIDVALIDITY changed: select it again\r\n";
  auto renumbered_under = [](Conversation& c) {
    c.store->add(kSimple);
    c.store->add(kSimple);
    c.send("a1 LOGIN alice pw");
    EXPECT_TRUE(c.send("a2 SELECT INBOX").ends_with("a2 OK [READ-WRITE] SELECT completed\r\n"));
    c.store->uidvalidity += 1;  // a rebuilt list: the first message gone, the second is UID 1
    c.store->entries.erase(c.store->entries.begin());
    c.store->entries[0].meta.uid = 1;
  };
  Conversation c(plaintext());
  renumbered_under(c);
  EXPECT_EQ(c.send("a3 NOOP"), bye + "a3 OK NOOP completed\r\n");  // no EXPUNGE, no new UIDs
  EXPECT_EQ(c.last_kind, Action::Kind::close);
  EXPECT_EQ(c.store->entries[0].meta.flags, 0);  // untouched

  Conversation d(plaintext());  // an IDLE poll that sees it
  renumbered_under(d);
  EXPECT_EQ(d.send("a3 IDLE"), "+ idling\r\n");
  EXPECT_EQ(d.engine.idle_poll(), bye);
  EXPECT_EQ(d.engine.state(), State::logout);  // the session ends: the BYE is sent once
  EXPECT_EQ(d.store->entries[0].meta.flags, 0);
}

// RFC 6855 (UTF8=ACCEPT): once enabled, names come and go in UTF-8 and are
// kept in modified UTF-7 (one name on disk, whoever created it); SEARCH with
// CHARSET is BAD; APPEND takes UTF8 (~{n}) (and a plain literal inside
// the parentheses).
TEST(Engine, Utf8Accept_RFC6855) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.send("a0 CAPABILITY").find(" UTF8=ACCEPT"), std::string::npos);
  EXPECT_EQ(c.send("a2 CREATE \"Entw&APw-rfe\""), "a2 OK CREATE completed\r\n");  // before ENABLE: modified UTF-7
  EXPECT_EQ(c.send("a3 ENABLE UTF8=ACCEPT CONDSTORE"), "* ENABLED UTF8=ACCEPT CONDSTORE\r\na3 OK ENABLE completed\r\n");
  EXPECT_EQ(c.send("a4 ENABLE UTF8=ACCEPT"), "* ENABLED\r\na4 OK ENABLE completed\r\n");  // nothing new
  EXPECT_EQ(c.send("a5 CREATE \"\xC3\x9C" "bersicht/R&D\""), "a5 OK CREATE completed\r\n");
  EXPECT_EQ(c.send("b1 LIST \"\" *"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
            "* LIST (\\Noselect \\HasChildren) \"/\" \"\xC3\x9C" "bersicht\"\r\n"
            "* LIST (\\HasNoChildren) \"/\" \"\xC3\x9C" "bersicht/R&D\"\r\n"
            "* LIST (\\HasNoChildren) \"/\" \"Entw\xC3\xBCrfe\"\r\n"
            "b1 OK LIST completed\r\n");  // in the order of the names kept ("&ANw-..." first)
  EXPECT_EQ(c.send("b2 LIST \"\" \"Entw\xC3\xBC*\""),
            "* LIST (\\HasNoChildren) \"/\" \"Entw\xC3\xBCrfe\"\r\nb2 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b3 STATUS \"Entw\xC3\xBCrfe\" (MESSAGES)"),
            "* STATUS \"Entw\xC3\xBCrfe\" (MESSAGES 0)\r\nb3 OK STATUS completed\r\n");
  // Stored in modified UTF-7, as another session (or Dovecot) names it.
  EXPECT_TRUE(c.account->stores.count("&ANw-bersicht/R&-D"));
  EXPECT_TRUE(c.send("b4 CREATE \"\xC3\"").starts_with("b4 NO [CANNOT] the folder name is not UTF-8"));
  EXPECT_TRUE(c.send("c1 APPEND \"Entw\xC3\xBCrfe\" UTF8 (~{5+}\r\nx: y\r)").starts_with("c1 OK [APPENDUID"));
  EXPECT_TRUE(c.send("c2 APPEND INBOX UTF8 ({5+}\r\nx: y\r)").starts_with("c2 OK [APPENDUID"));
  EXPECT_TRUE(c.send("c3 APPEND INBOX UTF8 (~{5+}\r\nx: y\r").starts_with("c3 BAD"));
  c.send("d1 SELECT INBOX");
  EXPECT_TRUE(c.send("d2 SEARCH CHARSET UTF-8 ALL").starts_with("d2 BAD"));
  EXPECT_EQ(c.send("d3 SEARCH ALL"), "* SEARCH 1\r\nd3 OK SEARCH completed\r\n");
}

// RFC 6154 §3 (CREATE-SPECIAL-USE): a folder created with a use lists it;
// a use hikyaku cannot give fails the CREATE with USEATTR and creates
// nothing; another create parameter is a syntax error (RFC 4466 §2.2).
TEST(Engine, CreateSpecialUse_RFC6154_3) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.send("a0 CAPABILITY").find(" CREATE-SPECIAL-USE"), std::string::npos);
  EXPECT_EQ(c.send("a2 CREATE MySent (USE (\\sent))"), "a2 OK CREATE completed\r\n");
  EXPECT_EQ(c.send("a3 CREATE Plain (USE ())"), "a3 OK CREATE completed\r\n");
  EXPECT_EQ(c.send("a4 CREATE Every (USE (\\All))"),
            "a4 NO [USEATTR] \\All cannot be given to a folder here\r\n");
  EXPECT_EQ(c.send("a5 CREATE Two (USE (\\Sent \\Drafts))"),
            "a5 NO [USEATTR] a folder has at most one special use\r\n");
  EXPECT_TRUE(c.send("a6 CREATE Odd (COLOR (red))").starts_with("a6 BAD"));
  EXPECT_TRUE(c.send("a7 CREATE Odd (USE \\Sent)").starts_with("a7 BAD"));
  EXPECT_EQ(c.send("b1 LIST (SPECIAL-USE) \"\" *"),
            "* LIST (\\HasNoChildren \\Sent) \"/\" MySent\r\nb1 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b2 LIST \"\" *"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
            "* LIST (\\HasNoChildren \\Sent) \"/\" MySent\r\n"
            "* LIST (\\HasNoChildren) \"/\" Plain\r\n"
            "b2 OK LIST completed\r\n");
}

// RFC 3501 §6.3.3–§6.3.9, RFC 5258, RFC 6154, RFC 6851: folders.
TEST(Engine, FoldersCreateListRenameDeleteSubscribe) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.account->special_uses["Sent"] = "\\Sent";
  EXPECT_EQ(c.send("a2 CREATE Sent"), "a2 OK CREATE completed\r\n");
  EXPECT_EQ(c.send("a3 CREATE Sent"), "a3 NO [ALREADYEXISTS] the folder exists already\r\n");
  EXPECT_EQ(c.send("a4 CREATE work/2026/"), "a4 OK CREATE completed\r\n");  // trailing "/" dropped
  EXPECT_EQ(c.send("a5 CREATE \"Entw&APw-rfe\""), "a5 OK CREATE completed\r\n");
  EXPECT_TRUE(c.send("a6 CREATE \"Entw&AGE-rfe\"").starts_with("a6 NO [CANNOT] the folder name is not modified UTF-7"));
  EXPECT_TRUE(c.send("a7 CREATE a//b").starts_with("a7 NO [CANNOT] a level of the folder name is empty"));
  EXPECT_TRUE(c.send("a8 CREATE \"a*\"").starts_with("a8 NO [CANNOT] a folder name cannot hold the wildcards"));
  // Special use shown in a plain LIST; "work" exists only as a parent.
  EXPECT_EQ(c.send("b1 LIST \"\" *"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
            "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\n"
            "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
            "* LIST (\\Noselect \\HasChildren) \"/\" work\r\n"
            "* LIST (\\HasNoChildren) \"/\" work/2026\r\n"
            "b1 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b2 LIST \"\" %"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
            "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\n"
            "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
            "* LIST (\\Noselect \\HasChildren) \"/\" work\r\n"
            "b2 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b3 LIST (SPECIAL-USE) \"\" *"), "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\nb3 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b4 LIST \"work/\" %"), "* LIST (\\HasNoChildren) \"/\" work/2026\r\nb4 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b5 LIST \"\" sent"), "b5 OK LIST completed\r\n");  // names other than INBOX are case-sensitive
  // Many wildcards cost no more than one (found by fuzz_imap_command: the
  // backtracking matcher took minutes on "**...**SUBS").
  std::string wild;
  for (int i = 0; i < 3000; ++i) wild += i % 3 ? "*" : "%";
  EXPECT_EQ(c.send("b50 LIST \"\" \"" + wild + "2026\""), "* LIST (\\HasNoChildren) \"/\" work/2026\r\nb50 OK LIST completed\r\n");
  std::string many;
  for (int i = 0; i < 3000; ++i) many += "*x";
  EXPECT_EQ(c.send("b51 LIST \"\" \"" + many + "\""), "b51 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b6 LIST \"\" (inbox work) RETURN (STATUS (MESSAGES))"),
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* STATUS INBOX (MESSAGES 0)\r\n"
            "* LIST (\\NonExistent \\HasChildren) \"/\" work\r\nb6 OK LIST completed\r\n");
  // Subscriptions: names need not exist; RECURSIVEMATCH shows the parents.
  EXPECT_EQ(c.send("c1 SUBSCRIBE work/2026"), "c1 OK SUBSCRIBE completed\r\n");
  EXPECT_EQ(c.send("c2 SUBSCRIBE gone"), "c2 OK SUBSCRIBE completed\r\n");
  EXPECT_EQ(c.send("c3 LSUB \"\" *"),
            "* LSUB () \"/\" INBOX\r\n* LSUB () \"/\" gone\r\n* LSUB (\\Noselect) \"/\" work\r\n"
            "* LSUB () \"/\" work/2026\r\nc3 OK LSUB completed\r\n");
  EXPECT_EQ(c.send("c4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" work"),
            "* LIST (\\NonExistent) \"/\" work (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\nc4 OK LIST completed\r\n");
  // No CHILDINFO when the subscribed child is listed itself.
  EXPECT_EQ(c.send("c40 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (work work/2026)"),
            "* LIST (\\Subscribed) \"/\" work/2026\r\nc40 OK LIST completed\r\n");
  EXPECT_EQ(c.send("c5 LIST (SUBSCRIBED) \"\" g*"),
            "* LIST (\\NonExistent \\Subscribed) \"/\" gone\r\nc5 OK LIST completed\r\n");
  EXPECT_EQ(c.send("c6 UNSUBSCRIBE gone"), "c6 OK UNSUBSCRIBE completed\r\n");
  // RENAME takes the children along; DELETE leaves them.
  EXPECT_EQ(c.send("d1 RENAME work job"), "d1 OK RENAME completed\r\n");
  EXPECT_EQ(c.send("d2 RENAME job/2026 Sent"), "d2 NO [ALREADYEXISTS] the folder exists already\r\n");
  EXPECT_EQ(c.send("d3 RENAME nothing x"), "d3 NO [NONEXISTENT] no such folder\r\n");
  EXPECT_EQ(c.send("d4 STATUS job/2026 (MESSAGES)"), "* STATUS job/2026 (MESSAGES 0)\r\nd4 OK STATUS completed\r\n");
  EXPECT_EQ(c.send("d5 DELETE INBOX"), "d5 NO [CANNOT] INBOX cannot be deleted\r\n");
  EXPECT_EQ(c.send("d6 DELETE job/2026"), "d6 OK DELETE completed\r\n");
  EXPECT_EQ(c.send("d7 SELECT job/2026"), "d7 NO [NONEXISTENT] no such folder\r\n");
  // RENAME INBOX moves its messages and leaves it empty (RFC 3501 §6.3.5).
  c.store->add(std::string(kSimple));
  EXPECT_EQ(c.send("e1 RENAME inbox old"), "e1 OK RENAME completed\r\n");
  EXPECT_EQ(c.send("e2 STATUS old (MESSAGES)"), "* STATUS old (MESSAGES 1)\r\ne2 OK STATUS completed\r\n");
  EXPECT_EQ(c.send("e3 STATUS INBOX (MESSAGES)"), "* STATUS INBOX (MESSAGES 0)\r\ne3 OK STATUS completed\r\n");
  // The selected folder cannot be deleted or renamed under the session.
  EXPECT_TRUE(c.send("f1 SELECT old").ends_with("f1 OK [READ-WRITE] SELECT completed\r\n"));
  EXPECT_EQ(c.send("f2 DELETE old"), "f2 NO [INUSE] the folder is selected; close it first\r\n");
}

TEST(Engine, Rfc6851MoveAndCopyBetweenFolders) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.store->add(std::string(kSimple), kSeen);
  c.store->add(std::string(kSimple));
  c.send("a2 CREATE Trash");
  c.account->stores.at("Trash")->uidvalidity = 77;
  c.send("a3 SELECT INBOX");
  EXPECT_EQ(c.send("a4 COPY 1 Trash"), "a4 OK [COPYUID 77 1 1] COPY completed\r\n");
  EXPECT_EQ(c.send("a5 COPY 1 Nowhere"), "a5 NO [TRYCREATE] no such folder\r\n");
  EXPECT_EQ(c.send("a6 UID MOVE 2 Trash"),
            "* OK [COPYUID 77 2 2] moved\r\n* 2 EXPUNGE\r\n* 1 RECENT\r\na6 OK UID MOVE completed\r\n");
  EXPECT_EQ(c.send("a7 MOVE 1 Trash"), "* OK [COPYUID 77 1 3] moved\r\n* 1 EXPUNGE\r\n* 0 RECENT\r\na7 OK MOVE completed\r\n");
  EXPECT_EQ(c.store->entries.size(), 0u);
  auto& trash = *c.account->stores.at("Trash");
  ASSERT_EQ(trash.entries.size(), 3u);
  EXPECT_EQ(trash.entries[0].meta.flags, kSeen);
  EXPECT_EQ(trash.entries[2].meta.flags, kSeen);
  EXPECT_EQ(c.send("a8 EXAMINE Trash").find("* 3 EXISTS") != std::string::npos, true);
  EXPECT_EQ(c.send("a9 MOVE 1 INBOX"), "a9 NO [READ-ONLY] mailbox is read-only\r\n");
}

TEST(Engine, AppendCopyListStatus) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  EXPECT_EQ(c.send("a2 APPEND INBOX (\\Seen) {" + std::to_string(kSimple.size()) + "}\r\n" + kSimple),
            "a2 OK [APPENDUID 1234 1] APPEND completed\r\n");  // RFC 4315 §3: never 0, selected or not
  EXPECT_EQ(c.send("a3 APPEND Other {1}\r\nx"), "a3 NO [TRYCREATE] no such folder\r\n");
  EXPECT_EQ(c.send("a4 LIST \"\" *"), "* LIST (\\HasNoChildren) \"/\" INBOX\r\na4 OK LIST completed\r\n");
  EXPECT_EQ(c.send("a5 LIST \"\" \"\""), "* LIST (\\Noselect) \"/\" \"\"\r\na5 OK LIST completed\r\n");
  EXPECT_EQ(c.send("a6 LSUB \"\" \"*\""), "* LSUB () \"/\" INBOX\r\na6 OK LSUB completed\r\n");
  EXPECT_EQ(c.send("a7 STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"),
            "* STATUS INBOX (MESSAGES 1 UNSEEN 0 UIDNEXT 2 UIDVALIDITY 1234)\r\na7 OK STATUS completed\r\n");
  EXPECT_EQ(c.send("a8 CREATE INBOX"), "a8 NO [ALREADYEXISTS] INBOX always exists\r\n");
  c.send("a9 SELECT INBOX");
  std::string copy = c.send("b1 COPY 1 INBOX");
  EXPECT_EQ(copy, "* 2 EXISTS\r\n* 2 RECENT\r\nb1 OK [COPYUID 1234 1 2] COPY completed\r\n");
  EXPECT_EQ(c.store->entries[1].content, kSimple);
  EXPECT_EQ(c.store->entries[1].meta.flags, kSeen);
  EXPECT_EQ(c.send("b2 EXAMINE INBOX").find("[READ-ONLY]") != std::string::npos, true);
  EXPECT_EQ(c.send("b3 STORE 1 +FLAGS (\\Deleted)"), "b3 NO [READ-ONLY] mailbox is read-only\r\n");
  EXPECT_EQ(c.send("b4 CLOSE"), "b4 OK CLOSE completed\r\n");
  EXPECT_EQ(c.send("b5 FETCH 1 FLAGS"), "b5 BAD FETCH not valid in this state\r\n");
}

// A FETCH whose answer is larger than Engine::kFetchChunk comes in parts
// (Action::Kind::more), cut between attributes: the same bytes as one
// answer, and no part much larger than a chunk plus one literal.
TEST(Engine, ALongFetchIsAnsweredInParts) {
  Conversation c(plaintext());
  const std::string big = "Subject: big\r\n\r\n" + std::string(300 * 1024, 'x') + "\r\n";
  c.store->add(big);
  c.store->add(big);
  c.send("a1 LOGIN alice pw");
  c.send("a2 SELECT INBOX");
  std::string fetch = "a3 FETCH 1:2 (UID";
  for (int i = 0; i < 6; ++i) fetch += " BODY.PEEK[]";
  fetch += ")";
  Action a = c.engine.on_input(fetch);
  std::string whole;
  size_t parts = 0, largest = 0;
  while (a.kind == Action::Kind::more) {
    ++parts;
    largest = std::max(largest, a.reply.size());
    whole += a.reply;
    a = c.engine.resume();
  }
  whole += a.reply;
  EXPECT_EQ(a.kind, Action::Kind::none);
  EXPECT_GE(parts, 2u);  // 12 literals of 300 KiB: 3.6 MiB in 3 parts
  EXPECT_LE(largest, Engine::kFetchChunk + big.size() + 1024);
  const std::string lit = "BODY[] {" + std::to_string(big.size()) + "}\r\n" + big;
  std::string one = "* 1 FETCH (UID 1";
  for (int i = 0; i < 6; ++i) one += " " + lit;
  std::string two = one;
  two.replace(0, 16, "* 2 FETCH (UID 2");
  EXPECT_EQ(whole, one + ")\r\n" + two + ")\r\na3 OK FETCH completed\r\n");
  // The engine takes the next command once the answer is complete.
  EXPECT_EQ(c.send("a4 NOOP"), "a4 OK NOOP completed\r\n");
}

// RFC 5530 §3 EXPUNGEISSUED, RFC 2180 §4.1-4.4: another session (or a POP3
// client) removed message 1 after this session's view was taken.
TEST(Engine, Rfc5530ExpungedByAnotherSession) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.store->add(std::string(kSimple));
  c.store->add(std::string(kSimple));
  c.send("a2 SELECT INBOX");
  c.store->entries.erase(c.store->entries.begin());  // expunged elsewhere

  // Not a server bug; the rest of the set is answered.
  std::string f1 = c.send("f1 FETCH 1:2 (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
  EXPECT_TRUE(f1.starts_with("* 2 FETCH (RFC822.SIZE ")) << f1;
  EXPECT_TRUE(f1.ends_with("\r\nf1 NO [EXPUNGEISSUED] some of the requested messages no longer exist\r\n")) << f1;
  EXPECT_EQ(f1.find("* 1 FETCH"), std::string::npos) << f1;
  std::string f2 = c.send("f2 FETCH 1 BODY.PEEK[]");
  EXPECT_EQ(f2, "f2 NO [EXPUNGEISSUED] some of the requested messages no longer exist\r\n");
  // STORE: FETCH FLAGS for every message it answers OK for.
  EXPECT_EQ(c.send("s1 STORE 1 +FLAGS (\\Flagged)"), "s1 NO [EXPUNGEISSUED] some of the messages no longer exist\r\n");
  EXPECT_EQ(c.send("s2 STORE 2 +FLAGS (\\Flagged)"), "* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\ns2 OK STORE completed\r\n");
  // COPY is all or nothing (RFC 3501 §6.4.7).
  EXPECT_EQ(c.send("c1 COPY 1:2 INBOX"),
            "c1 NO [EXPUNGEISSUED] some of the messages no longer exist; nothing copied\r\n");
  EXPECT_EQ(c.store->entries.size(), 1u);
  // A UID command names UIDs: the gone one is not there, and its EXPUNGE
  // may be sent (RFC 3501 §7.4.1).
  EXPECT_EQ(c.send("u1 UID FETCH 1:2 (FLAGS)"),
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))\r\n* 1 EXPUNGE\r\n* 1 RECENT\r\nu1 OK UID FETCH completed\r\n");
  EXPECT_EQ(c.send("u2 UID COPY 1:2 INBOX"), "* 2 EXISTS\r\n* 2 RECENT\r\nu2 OK [COPYUID 1234 2 3] UID COPY completed\r\n");
}

// A COPY whose store fails part-way leaves the target as it was.
TEST(Engine, Rfc3501Section6_4_7FailedCopyLeavesNoCopies) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.store->add(std::string(kSimple));
  c.store->add(std::string(kSimple));
  c.send("a2 SELECT INBOX");
  c.send("a3 STORE 2 +FLAGS (k1 k2)");
  c.store->max_keywords = 1;  // the second copy cannot keep its keywords
  EXPECT_EQ(c.send("c1 COPY 1:2 INBOX"), "c1 NO [SERVERBUG] could not store a copy; nothing copied\r\n");
  EXPECT_EQ(c.store->entries.size(), 2u);
}

// RFC 5258 LIST-EXTENDED and RFC 5819 LIST-STATUS, as K-9 and Thunderbird
// send them; INBOX is the one mailbox and always subscribed.
TEST(Engine, Rfc5258ListExtendedAndRfc5819ListStatus) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.store->add(std::string(kSimple), kSeen);
  c.store->add(std::string(kSimple));
  const std::string inbox = "* LIST (\\HasNoChildren) \"/\" INBOX\r\n";
  const std::string subscribed = "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX\r\n";
  EXPECT_NE(c.send("a2 CAPABILITY").find(" LIST-EXTENDED LIST-STATUS "), std::string::npos);
  EXPECT_EQ(c.send("b1 LIST \"\" \"*\" RETURN (SPECIAL-USE)"), inbox + "b1 OK LIST completed\r\n");
  // RFC 5258 §4: a LIST of subscriptions has CHILDREN attributes only when asked.
  const std::string only_subscribed = "* LIST (\\Subscribed) \"/\" INBOX\r\n";
  EXPECT_EQ(c.send("b2 LIST (SUBSCRIBED) \"\" \"*\""), only_subscribed + "b2 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %"), only_subscribed + "b3 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b30 LIST (SUBSCRIBED) \"\" % RETURN (CHILDREN)"), subscribed + "b30 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b31 LIST (REMOTE RECURSIVEMATCH) \"\" %").substr(0, 8), "b31 BAD ");  // RFC 5258 §3.1
  EXPECT_EQ(c.send("b4 LIST \"\" (\"Sent\" inbox) RETURN (SUBSCRIBED CHILDREN)"),
            subscribed + "b4 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b5 LIST \"\" (Sent Trash)"), "b5 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b6 LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))"),
            inbox + "* STATUS INBOX (MESSAGES 2 UNSEEN 1 UIDNEXT 3)\r\nb6 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b7 LIST () \"\" \"*\" RETURN ()"), inbox + "b7 OK LIST completed\r\n");
  EXPECT_EQ(c.send("b8 LIST \"\" \"\""), "* LIST (\\Noselect) \"/\" \"\"\r\nb8 OK LIST completed\r\n");
  // RFC 5258 §3: RECURSIVEMATCH alone, unknown options: BAD.
  for (const char* bad : {"c1 LIST (RECURSIVEMATCH) \"\" *", "c1 LIST (FANCY) \"\" *", "c1 LIST \"\" * RETURN (FANCY)",
                          "c1 LIST \"\" * RETURN (STATUS (BOGUS))", "c1 LIST \"\" * RETURN (STATUS)",
                          "c1 LIST \"\" * RETURN", "c1 LIST \"\" (* RETURN ()"}) {
    EXPECT_EQ(c.send(bad).substr(0, 7), "c1 BAD ") << bad;
  }
}

// RFC 4978: COMPRESS DEFLATE once, after login; the session compresses.
TEST(Engine, Rfc4978Compress) {
  Conversation c(plaintext());
  EXPECT_EQ(c.send("a0 CAPABILITY").find("COMPRESS"), std::string::npos);
  EXPECT_EQ(c.send("a1 COMPRESS DEFLATE"), "a1 BAD COMPRESS not valid in this state\r\n");
  EXPECT_NE(c.send("a2 LOGIN alice pw").find(" COMPRESS=DEFLATE"), std::string::npos);
  EXPECT_EQ(c.send("a3 COMPRESS GZIP"), "a3 BAD unknown compression mechanism\r\n");
  EXPECT_EQ(c.send("a4 COMPRESS deflate"), "a4 OK DEFLATE active\r\n");
  EXPECT_EQ(c.last_kind, Action::Kind::compress);
  EXPECT_EQ(c.send("a5 COMPRESS DEFLATE"), "a5 NO [COMPRESSIONACTIVE] DEFLATE active already\r\n");
  EXPECT_EQ(c.last_kind, Action::Kind::none);
  EXPECT_EQ(c.send("a6 CAPABILITY").find("COMPRESS"), std::string::npos);
}

// RFC 4731: SEARCH RETURN (...) answers one * ESEARCH with the command's tag.
TEST(Engine, Rfc4731Esearch) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  for (int i = 0; i < 6; ++i) c.store->add(std::string(kSimple), i == 1 || i == 4 ? kSeen : 0);
  c.send("a2 SELECT INBOX");
  c.send("a3 STORE 3 +FLAGS.SILENT (\\Deleted)");
  c.send("a4 EXPUNGE");  // UIDs 1 2 4 5 6 remain
  EXPECT_NE(c.send("b0 CAPABILITY").find(" ESEARCH"), std::string::npos);
  EXPECT_EQ(c.send("b1 SEARCH RETURN () ALL"), "* ESEARCH (TAG \"b1\") ALL 1:5\r\nb1 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("b2 UID SEARCH RETURN (ALL) ALL"),
            "* ESEARCH (TAG \"b2\") UID ALL 1:2,4:6\r\nb2 OK UID SEARCH completed\r\n");
  EXPECT_EQ(c.send("b3 UID SEARCH RETURN (COUNT MAX MIN) SEEN"),
            "* ESEARCH (TAG \"b3\") UID MIN 2 MAX 5 COUNT 2\r\nb3 OK UID SEARCH completed\r\n");
  EXPECT_EQ(c.send("b4 SEARCH RETURN (MIN ALL) CHARSET UTF-8 UNSEEN"),
            "* ESEARCH (TAG \"b4\") MIN 1 ALL 1,3,5\r\nb4 OK SEARCH completed\r\n");
  // Nothing matched: MIN, MAX and ALL are left out, COUNT is 0.
  EXPECT_EQ(c.send("b5 SEARCH RETURN (MIN MAX ALL COUNT) 1000"),
            "* ESEARCH (TAG \"b5\") COUNT 0\r\nb5 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("b6 UID SEARCH RETURN (MIN) 1000"), "* ESEARCH (TAG \"b6\") UID\r\nb6 OK UID SEARCH completed\r\n");
  // Without RETURN: the RFC 3501 reply.
  EXPECT_EQ(c.send("b7 SEARCH SEEN"), "* SEARCH 2 4\r\nb7 OK SEARCH completed\r\n");
  // SAVE (RFC 5182) and unknown options are not offered.
  EXPECT_EQ(c.send("b8 SEARCH RETURN (SAVE) ALL").substr(0, 7), "b8 BAD ");
  EXPECT_EQ(c.send("b9 SEARCH RETURN (MIN ALL").substr(0, 7), "b9 BAD ");
  EXPECT_EQ(c.send("c1 SEARCH RETURN (MIN)").substr(0, 7), "c1 BAD ");
}

// RFC 5267 §4.2–§4.3 and §6: UPDATE and CONTEXT return options, CANCELUPDATE "tag" ...
TEST(Command, Rfc5267UpdateSyntax) {
  auto update = parse_command("a SEARCH RETURN (UPDATE) SEEN");
  ASSERT_TRUE(update.command) << update.error;
  EXPECT_TRUE(update.command->search_return.update);
  EXPECT_FALSE(update.command->search_return.all);  // UPDATE alone: no ALL now
  auto both = parse_command("a UID SEARCH RETURN (CONTEXT update ALL) SEEN");
  ASSERT_TRUE(both.command) << both.error;
  EXPECT_TRUE(both.command->search_return.update && both.command->search_return.context &&
              both.command->search_return.all);
  auto hint = parse_command("a SEARCH RETURN (CONTEXT) SEEN");  // a hint only: () is ALL
  ASSERT_TRUE(hint.command) << hint.error;
  EXPECT_TRUE(hint.command->search_return.all);
  auto cancel = parse_command("a CANCELUPDATE \"t1\" \"t 2\"");
  ASSERT_TRUE(cancel.command) << cancel.error;
  EXPECT_EQ(cancel.command->verb, Verb::cancelupdate);
  EXPECT_EQ(cancel.command->items, (std::vector<std::string>{"t1", "t 2"}));
  for (const char* bad : {"a CANCELUPDATE", "a CANCELUPDATE t1", "a CANCELUPDATE \"t1\" ", "a CANCELUPDATE {2}\r\nt1",
                          "a UID CANCELUPDATE \"t1\"", "a SEARCH RETURN (UPDATES) ALL"}) {
    EXPECT_FALSE(parse_command(bad).command) << bad;
  }
}

// RFC 5267 §4.2–§4.3: SEARCH RETURN (UPDATE): ADDTO and REMOVEFROM for the
// session's own STORE, another session's change, new messages and expunges
// (REMOVEFROM before the EXPUNGE); CANCELUPDATE; the limit; SORT refuses.
TEST(Engine, Rfc5267SearchUpdate) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  for (int i = 0; i < 5; ++i) c.store->add(std::string(kSimple));
  c.send("a2 SELECT INBOX");
  EXPECT_NE(c.send("a3 CAPABILITY").find(" CONTEXT=SEARCH CONTEXT=SORT"), std::string::npos);
  EXPECT_EQ(c.send("u1 SEARCH RETURN (UPDATE) SEEN"), "* ESEARCH (TAG \"u1\")\r\nu1 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("u2 UID SEARCH RETURN (UPDATE ALL) FLAGGED"),
            "* ESEARCH (TAG \"u2\") UID\r\nu2 OK UID SEARCH completed\r\n");
  // The session's own STORE: FETCH first, then the ADDTO.
  EXPECT_EQ(c.send("s1 STORE 1,2,4 +FLAGS (\\Seen)"),
            "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n* 2 FETCH (FLAGS (\\Seen \\Recent))\r\n"
            "* 4 FETCH (FLAGS (\\Seen \\Recent))\r\n* ESEARCH (TAG \"u1\") ADDTO (0 1:2,4)\r\ns1 OK STORE completed\r\n");
  EXPECT_EQ(c.send("s2 STORE 1 -FLAGS.SILENT (\\Seen)"),
            "* ESEARCH (TAG \"u1\") REMOVEFROM (0 1)\r\ns2 OK STORE completed\r\n");
  // A change that leaves the result as it is says nothing.
  EXPECT_EQ(c.send("s3 STORE 2 +FLAGS.SILENT (\\Answered)"), "s3 OK STORE completed\r\n");
  // Another session's change, seen at the next sync: UIDs for u2.
  ASSERT_TRUE(c.store->set_flags(c.store->entries[4].meta, kFlagged, {}));  // UID 5
  EXPECT_EQ(c.send("n1 NOOP"), "* 5 FETCH (FLAGS (\\Flagged \\Recent))\r\n* ESEARCH (TAG \"u2\") UID ADDTO (0 5)\r\n"
                               "n1 OK NOOP completed\r\n");
  // A new message that matches: after its EXISTS.
  c.store->add(std::string(kSimple), kSeen | kFlagged);  // UID 6
  EXPECT_EQ(c.send("n2 NOOP"), "* 6 EXISTS\r\n* 6 RECENT\r\n* ESEARCH (TAG \"u1\") ADDTO (0 6)\r\n"
                               "* ESEARCH (TAG \"u2\") UID ADDTO (0 6)\r\nn2 OK NOOP completed\r\n");
  // Expunges: REMOVEFROM while the numbers still name the messages, then
  // the EXPUNGEs (highest first).
  c.send("s4 STORE 4:6 +FLAGS.SILENT (\\Deleted)");
  EXPECT_EQ(c.send("x1 EXPUNGE"), "* ESEARCH (TAG \"u1\") REMOVEFROM (0 4,6)\r\n"
                                  "* ESEARCH (TAG \"u2\") UID REMOVEFROM (0 5:6)\r\n"
                                  "* 6 EXPUNGE\r\n* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 3 RECENT\r\nx1 OK EXPUNGE completed\r\n");
  // CANCELUPDATE: no more updates for u1; an unknown tag cancels nothing.
  EXPECT_TRUE(c.send("c1 CANCELUPDATE \"u1\" \"nope\"").starts_with("c1 NO "));
  EXPECT_EQ(c.send("c2 CANCELUPDATE \"u1\""), "c2 OK CANCELUPDATE completed\r\n");
  EXPECT_EQ(c.send("s5 STORE 3 +FLAGS.SILENT (\\Seen \\Flagged)"),
            "* ESEARCH (TAG \"u2\") UID ADDTO (0 3)\r\ns5 OK STORE completed\r\n");
  // A FETCH that sets \Seen changes the result too.
  EXPECT_EQ(c.send("u3 SEARCH RETURN (UPDATE COUNT) UNSEEN"),
            "* ESEARCH (TAG \"u3\") COUNT 1\r\nu3 OK SEARCH completed\r\n");  // 1 (2, 3 are \Seen)
  EXPECT_NE(c.send("f1 FETCH 1 BODY[TEXT]").find("* ESEARCH (TAG \"u3\") REMOVEFROM (0 1)\r\n"), std::string::npos);
  // Positional criteria are tested again after an expunge moves numbers.
  EXPECT_EQ(c.send("u4 SEARCH RETURN (UPDATE ALL) 3"), "* ESEARCH (TAG \"u4\") ALL 3\r\nu4 OK SEARCH completed\r\n");
  c.store->entries.erase(c.store->entries.begin());  // another session expunges seq 1
  EXPECT_EQ(c.send("n3 NOOP"), "* 1 EXPUNGE\r\n* 2 RECENT\r\n* ESEARCH (TAG \"u4\") REMOVEFROM (0 2)\r\nn3 OK NOOP completed\r\n");
  // SORT does not keep results: NOUPDATE, the result is still sent.
  EXPECT_EQ(c.send("o1 SORT RETURN (UPDATE COUNT) (ARRIVAL) UTF-8 ALL"),
            "* ESEARCH (TAG \"o1\") COUNT 2\r\n* NO [NOUPDATE \"o1\"] SORT results are not updated\r\n"
            "o1 OK SORT completed\r\n");
  // At most kMaxSearchUpdates; one more gets NOUPDATE. A searching command
  // with UPDATE and the tag of an updating search is BAD (§4.3: its updates
  // are named by the tag), SORT's too; without UPDATE the tag may be used.
  EXPECT_EQ(c.send("c3 CANCELUPDATE \"u2\" \"u3\" \"u4\""), "c3 OK CANCELUPDATE completed\r\n");
  for (int i = 0; i < 10; ++i) c.send("m" + std::to_string(i) + " SEARCH RETURN (UPDATE) ALL");
  EXPECT_EQ(c.send("m10 SEARCH RETURN (UPDATE COUNT) ALL"),
            "* ESEARCH (TAG \"m10\") COUNT 2\r\n* NO [NOUPDATE \"m10\"] too many updating searches\r\n"
            "m10 OK SEARCH completed\r\n");
  EXPECT_TRUE(c.send("m9 SEARCH RETURN (UPDATE COUNT) ALL").starts_with("m9 BAD Tag reuse"));
  EXPECT_TRUE(c.send("m8 UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL").starts_with("m8 BAD Tag reuse"));
  EXPECT_EQ(c.send("m7 SEARCH RETURN (COUNT) ALL"), "* ESEARCH (TAG \"m7\") COUNT 2\r\nm7 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("c4 CANCELUPDATE \"m9\""), "c4 OK CANCELUPDATE completed\r\n");
  EXPECT_EQ(c.send("m9 SEARCH RETURN (UPDATE COUNT) ALL"), "* ESEARCH (TAG \"m9\") COUNT 2\r\nm9 OK SEARCH completed\r\n");
  // Leaving the mailbox ends them all.
  c.send("z1 UNSELECT");
  c.send("z2 SELECT INBOX");
  EXPECT_TRUE(c.send("z3 CANCELUPDATE \"m9\"").starts_with("z3 NO "));
  EXPECT_EQ(c.send("z4 STORE 1 +FLAGS.SILENT (\\Deleted)"), "z4 OK STORE completed\r\n");
  c.send("z5 UNSELECT");
  EXPECT_TRUE(c.send("z6 CANCELUPDATE \"m9\"").starts_with("z6 BAD "));
}

// RFC 5267 §4.4: PARTIAL (low:high set) names the hits at those positions
// of the result; NIL past its end; UID SEARCH gives UIDs.
TEST(Engine, Rfc5267SearchPartial) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  for (int i = 0; i < 6; ++i) c.store->add(std::string(kSimple), i == 1 || i == 4 ? kSeen : 0);
  c.send("a2 SELECT INBOX");
  c.send("a3 STORE 3 +FLAGS.SILENT (\\Deleted)");
  c.send("a4 EXPUNGE");  // UIDs 1 2 4 5 6 remain, seq 1..5
  struct Case {
    std::string command;
    std::string want;  // after "* ESEARCH (TAG "p")"
  };
  const Case cases[] = {
      {"SEARCH RETURN (PARTIAL 1:1) ALL", " PARTIAL (1:1 1)"},
      {"SEARCH RETURN (PARTIAL 4:2) ALL", " PARTIAL (2:4 2:4)"},
      {"SEARCH RETURN (PARTIAL 1:6) ALL", " PARTIAL (1:6 1:5)"},
      {"SEARCH RETURN (PARTIAL 6:6) ALL", " PARTIAL (6:6 NIL)"},
      {"SEARCH RETURN (PARTIAL 2:3) 1:2,4:5", " PARTIAL (2:3 2,4)"},
      {"SEARCH RETURN (PARTIAL 2:3) 1000", " PARTIAL (2:3 NIL)"},  // nothing matched: still sent
      {"UID SEARCH RETURN (PARTIAL 2:4) ALL", " UID PARTIAL (2:4 2,4:5)"},
      {"UID SEARCH RETURN (COUNT PARTIAL 1:1 MIN) UNSEEN", " UID MIN 1 COUNT 3 PARTIAL (1:1 1)"},
  };
  for (const auto& k : cases) {
    EXPECT_EQ(c.send("p " + k.command), "* ESEARCH (TAG \"p\")" + k.want + "\r\np OK " +
                                            (k.command.starts_with("UID") ? "UID " : "") + "SEARCH completed\r\n")
        << k.command;
  }
  EXPECT_TRUE(c.send("q SEARCH RETURN (PARTIAL 1:*) ALL").starts_with("q BAD "));
  // RFC 7162 §3.1.5 / RFC 4731 §3.2: MODSEQ is that of the messages returned.
  const std::string partial_modseq = c.send("r SEARCH RETURN (PARTIAL 1:2) MODSEQ 1");
  EXPECT_TRUE(partial_modseq.starts_with("* OK [HIGHESTMODSEQ ") || partial_modseq.starts_with("* ESEARCH"))
      << partial_modseq;
  EXPECT_NE(partial_modseq.find("* ESEARCH (TAG \"r\") PARTIAL (1:2 1:2) MODSEQ "), std::string::npos)
      << partial_modseq;
  EXPECT_NE(c.send("r2 SEARCH RETURN (PARTIAL 9:9) MODSEQ 1").find("* ESEARCH (TAG \"r2\") PARTIAL (9:9 NIL)\r\n"),
            std::string::npos);
}

// RFC 5267 §4.4 and §6: RETURN (PARTIAL low:high), nz-numbers only; a
// reversed range is the same range.
TEST(Command, Rfc5267PartialSyntax) {
  struct Case {
    const char* text;
    uint32_t first;
    uint32_t last;
    bool all;  // ALL as well
  };
  const Case cases[] = {
      {"a SEARCH RETURN (PARTIAL 1:1) ALL", 1, 1, false},
      {"a SEARCH RETURN (PARTIAL 4:2) ALL", 2, 4, false},
      {"a UID SEARCH RETURN (partial 2:10 ALL) SEEN", 2, 10, true},
      {"a SEARCH RETURN (COUNT PARTIAL 4294967295:1) ALL", 1, 4294967295u, false},
      {"a SORT RETURN (PARTIAL 5:6) (ARRIVAL) UTF-8 ALL", 5, 6, false},
  };
  for (const auto& k : cases) {
    auto parsed = parse_command(k.text);
    ASSERT_TRUE(parsed.command) << k.text << ": " << parsed.error;
    const auto& r = parsed.command->search_return;
    ASSERT_TRUE(r.partial) << k.text;
    EXPECT_EQ(r.partial->first, k.first) << k.text;
    EXPECT_EQ(r.partial->last, k.last) << k.text;
    EXPECT_EQ(r.all, k.all) << k.text;  // PARTIAL alone is not "RETURN ()"
  }
  for (const char* bad : {
           "a SEARCH RETURN (PARTIAL 1) ALL", "a SEARCH RETURN (PARTIAL 1:*) ALL", "a SEARCH RETURN (PARTIAL *:1) ALL",
           "a SEARCH RETURN (PARTIAL 0:3) ALL", "a SEARCH RETURN (PARTIAL) ALL", "a SEARCH RETURN (PARTIAL 1:2",
           "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL", "a SEARCH RETURN (PARTIAL 1:4294967296) ALL",
           "a SEARCH RETURN (PARTIAL 1,2) ALL", "a SORT RETURN (PARTIAL 1:*) (ARRIVAL) UTF-8 ALL",
       }) {
    EXPECT_FALSE(parse_command(bad).command) << bad;
  }
}

// RFC 5256 §4 (SORT), RFC 5957 §3 (DISPLAYFROM, DISPLAYTO), RFC 5267
// §3.2 (SORT RETURN (...)).
TEST(Command, Rfc5256SortSyntax) {
  auto sort = parse_command("a SORT (REVERSE arrival cc Date FROM SIZE SUBJECT TO DISPLAYFROM reverse DISPLAYTO) "
                            "utf-8 SEEN NOT DELETED");
  ASSERT_TRUE(sort.command) << sort.error;
  const auto& c = *sort.command;
  EXPECT_EQ(c.verb, Verb::sort);
  EXPECT_FALSE(c.uid);
  using C = SortKey::Criterion;
  ASSERT_EQ(c.sort.size(), 9u);
  EXPECT_EQ(c.sort[0].criterion, C::arrival);
  EXPECT_TRUE(c.sort[0].reverse);
  EXPECT_EQ(c.sort[1].criterion, C::cc);
  EXPECT_FALSE(c.sort[1].reverse);
  EXPECT_EQ(c.sort[2].criterion, C::date);
  EXPECT_EQ(c.sort[3].criterion, C::from);
  EXPECT_EQ(c.sort[4].criterion, C::size);
  EXPECT_EQ(c.sort[5].criterion, C::subject);
  EXPECT_EQ(c.sort[6].criterion, C::to);
  EXPECT_EQ(c.sort[7].criterion, C::displayfrom);
  EXPECT_EQ(c.sort[8].criterion, C::displayto);
  EXPECT_TRUE(c.sort[8].reverse);
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0], "UTF-8");
  ASSERT_EQ(c.search.children.size(), 2u);
  EXPECT_EQ(c.search.children[1].kind, SearchKey::Kind::not_);
  EXPECT_FALSE(c.search_return.requested);

  auto uid = parse_command("a UID SORT (SUBJECT) US-ASCII 1:* UID 3:5");
  ASSERT_TRUE(uid.command) << uid.error;
  EXPECT_TRUE(uid.command->uid);
  EXPECT_EQ(uid.command->search.children.size(), 2u);

  auto esort = parse_command("a SORT RETURN (MIN MAX ALL COUNT) (DATE) \"UTF-8\" ALL");
  ASSERT_TRUE(esort.command) << esort.error;
  const auto& r = esort.command->search_return;
  EXPECT_TRUE(r.requested && r.min && r.max && r.all && r.count);
  auto all = parse_command("a SORT RETURN () (DATE) UTF-8 ALL");  // RFC 4731 §3.1: () is ALL
  ASSERT_TRUE(all.command) << all.error;
  EXPECT_TRUE(all.command->search_return.all);
  auto other = parse_command("a SORT (SIZE) KOI8-R ALL");  // the engine refuses the charset
  ASSERT_TRUE(other.command) << other.error;
  EXPECT_EQ(other.command->items[0], "KOI8-R");

  for (const char* bad : {
           "a SORT", "a SORT ALL", "a SORT () UTF-8 ALL", "a SORT (SIZE) ALL",  // no charset
           "a SORT (SIZE) UTF-8", "a SORT (SIZE UTF-8 ALL", "a SORT (REVERSE) UTF-8 ALL",
           "a SORT (REVERSE REVERSE SIZE) UTF-8 ALL", "a SORT (THREAD) UTF-8 ALL", "a SORT (SIZE)  UTF-8 ALL",
           "a SORT RETURN (PARTIAL 1) (SIZE) UTF-8 ALL", "a SORT RETURN (MIN) UTF-8 ALL",
           "a SORT (SIZE) UTF-8 ALL extra)", "a UID SORT", "a SORT (SIZE) CHARSET UTF-8 ALL",
       }) {
    EXPECT_FALSE(parse_command(bad).command) << bad;
  }
}

// RFC 5256 §2.1 base subject, the examples of the imaptest sort-subject
// script among them.
TEST(Message, Rfc5256Section2_1BaseSubject) {
  struct Case {
    const char* subject;
    const char* base;
  };
  const Case cases[] = {
      {"a", "a"},
      {"Re: hello", "hello"},
      {"RE:  Re:\thello  world ", "hello world"},
      {"Fw: x", "x"},
      {"Fwd: x", "x"},
      {"Re [list]: x", "x"},                      // subj-refwd with a blob before ":"
      {"[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b"},
      {"b (a)", "b (a)"},
      {"Re: [FWD: c]", "c"},                       // step (6)
      {"[xyz]", "[xyz]"},                          // step (4): not when nothing is left
      {"[list] topic", "topic"},
      {"", ""},
      {"=?iso-8859-1?q?_?=", ""},
      {"Re: =?utf-8?q?b?=", "b"},
      {"=?iso-8859-1?q?RE:_C?=", "C"},
      {"=?us-ascii?b?UmU6IGM=?=", "c"},
      {"Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x"},
      {"re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon"},
      {"Re: (fwd) x (fwd)", "(fwd) x"},
      {"Rex: y", "Rex: y"},
  };
  for (const auto& k : cases) EXPECT_EQ(base_subject(k.subject).text, k.base) << k.subject;
}

TEST(Message, Rfc2047EncodedWordsAndSortValues) {
  EXPECT_EQ(decode_encoded_words("=?iso-8859-1?q?caf=E9?="), "caf\xC3\xA9");
  EXPECT_EQ(decode_encoded_words("=?UTF-8?B?w6k=?= =?utf-8?q?x?=  y"), "\xC3\xA9x  y");  // RFC 2047 §6.2
  EXPECT_EQ(decode_encoded_words("a =?utf-8?q?b?= c"), "a b c");
  EXPECT_EQ(decode_encoded_words("=?utf-8?x?b?= =?broken"), "=?utf-8?x?b?= =?broken");  // left as they are
  EXPECT_EQ(decode_encoded_words("=?utf-8*en?q?hi?="), "hi");  // RFC 2231 §5 language

  // RFC 5256 §3: the addr-mailbox of the first address; a group's name.
  EXPECT_EQ(first_mailbox("Ann <ann@example.org>, bob@example.org"), "ann");
  EXPECT_EQ(first_mailbox("user2@domain2.org (foo bar)"), "user2");
  EXPECT_EQ(first_mailbox("user2: blah@domain1.org;"), "user2");
  EXPECT_EQ(first_mailbox(""), "");
  // RFC 5957 §3: the display-name, else the addr-spec.
  EXPECT_EQ(first_display_name("foo bar <a@b.c>"), "foo bar");
  EXPECT_EQ(first_display_name("\"Bar, Foo\" <a@b.c>"), "Bar, Foo");
  EXPECT_EQ(first_display_name("b@c.d"), "b@c.d");
  EXPECT_EQ(first_display_name("d"), "d");
  EXPECT_EQ(first_display_name("=?iso-8859-1?q?foo_aar?= <e@f.g>"), "foo aar");
  EXPECT_EQ(first_display_name("a: xx@xx.org, yy@yy.org;"), "a");
  EXPECT_EQ(first_display_name("empty:;"), "empty");
  EXPECT_EQ(first_display_name(""), "");

  // RFC 5322 §3.3 date-time in UTC.
  EXPECT_EQ(parse_rfc5322_date_time("Fri, 22 Feb 2008 02:00:00 +0200"), int64_t{1203638400});
  EXPECT_EQ(parse_rfc5322_date_time("22 Feb 2008 00:00 +0000"), int64_t{1203638400});
  EXPECT_EQ(parse_rfc5322_date_time("Thu, 21 Feb 2008 19:00:00 EST (Eastern)"), int64_t{1203638400});
  EXPECT_FALSE(parse_rfc5322_date_time("Fri, 22 Feb 2008"));
  EXPECT_FALSE(parse_rfc5322_date_time("22 Feb 2008 25:00:00 +0000"));
  EXPECT_FALSE(parse_rfc5322_date_time("yesterday"));
}

// RFC 5256 §3 SORT over a MemoryStore: each criterion, REVERSE, several
// criteria, ties in sequence order, UID SORT, the charset, ESORT.
TEST(Engine, Rfc5256Sort) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  // The bodies make the sizes: 1000, 5000, 3000, 4000, 2000 octets and a header.
  auto add = [&](int64_t arrival, const std::string& header, size_t body) {
    c.store->now = arrival;
    c.store->add(header + "\r\n" + std::string(body, 'x') + "\r\n");
  };
  // seq 1..5; arrival 300, 100, 200, 100, 500.
  add(300, "From: Zed <zed@example.org>\r\nTo: b@x\r\nCc: c@x\r\nSubject: Re: beta\r\n"
           "Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n", 1000);
  add(100, "From: amy@example.org\r\nTo: a@x\r\nSubject: alpha\r\nDate: Fri, 22 Feb 2008 01:00:00 +0000\r\n",
      5000);
  add(200, "From: =?utf-8?q?Bob?= <bob@example.org>\r\nTo: c@x\r\nCc: a@x\r\nSubject: [list] Beta (fwd)\r\n"
           "Date: not a date\r\n", 3000);
  add(100, "From: Carl <carl@example.org>\r\nSubject: Fwd: ALPHA\r\n", 4000);
  add(500, "To: group: z@x;\r\nSubject: gamma\r\nDate: Thu, 21 Feb 2008 23:00:00 +0000\r\n", 2000);
  c.send("a2 SELECT INBOX");
  EXPECT_NE(c.send("a3 CAPABILITY").find(" SORT SORT=DISPLAY ESORT"), std::string::npos);
  struct Case {
    std::string criteria;
    std::string want;
  };
  const Case cases[] = {
      {"ARRIVAL", " 2 4 3 1 5"},             // ties (2, 4) in sequence order
      {"REVERSE ARRIVAL", " 5 1 3 2 4"},     // REVERSE does not reverse the ties
      {"SIZE", " 1 5 3 4 2"},
      {"REVERSE SIZE", " 2 4 3 5 1"},
      // DATE: 1 = 00:00 UTC, 2 = 01:00, 5 = 23:00 the day before; 3 (not
      // parseable) and 4 (none) are at their INTERNALDATE, 1970.
      {"DATE", " 4 3 5 1 2"},
      {"SUBJECT", " 2 4 1 3 5"},             // alpha alpha beta beta gamma
      {"SUBJECT REVERSE ARRIVAL", " 2 4 1 3 5"},
      {"SUBJECT REVERSE SIZE", " 2 4 3 1 5"},
      {"FROM", " 5 2 3 4 1"},                // "" amy bob carl zed
      {"DISPLAYFROM", " 5 2 3 4 1"},         // "" amy@example.org Bob Carl Zed
      {"REVERSE FROM", " 1 4 3 2 5"},
      {"TO", " 4 2 1 3 5"},                  // "" a b c group
      {"DISPLAYTO", " 4 2 1 3 5"},
      {"CC", " 2 4 5 3 1"},                  // "" "" "" a c
      {"CC SIZE", " 5 4 2 3 1"},
  };
  for (const auto& k : cases) {
    EXPECT_EQ(c.send("s SORT (" + k.criteria + ") UTF-8 ALL"), "* SORT" + k.want + "\r\ns OK SORT completed\r\n")
        << k.criteria;
  }
  // The search keys choose the messages; nothing matched: an empty SORT.
  EXPECT_EQ(c.send("s1 SORT (SIZE) US-ASCII NOT 1 NOT 2"), "* SORT 5 3 4\r\ns1 OK SORT completed\r\n");
  EXPECT_EQ(c.send("s2 SORT (SIZE) US-ASCII SUBJECT nothing"), "* SORT\r\ns2 OK SORT completed\r\n");
  // Each message's text is read once per command, only when a criterion or
  // a search key needs it.
  c.store->reads = 0;
  c.send("s3 SORT (ARRIVAL SIZE) UTF-8 LARGER 1");
  EXPECT_EQ(c.store->reads, 0u);
  c.send("s4 SORT (SUBJECT FROM DATE) UTF-8 HEADER Subject a");
  EXPECT_EQ(c.store->reads, 5u);
  EXPECT_TRUE(c.send("s5 SORT (SIZE) KOI8-R ALL").starts_with("s5 NO [BADCHARSET (US-ASCII UTF-8)]"));
  EXPECT_TRUE(c.send("s6 SORT (SIZE) UTF-8 ALL extra)").starts_with("s6 BAD "));
  // UID SORT: UIDs in the same order (expunge seq 1: UIDs 2..5 are seq 1..4).
  c.send("s7 STORE 1 +FLAGS.SILENT (\\Deleted)");
  c.send("s8 EXPUNGE");
  EXPECT_EQ(c.send("s9 UID SORT (ARRIVAL) UTF-8 ALL"), "* SORT 2 4 3 5\r\ns9 OK UID SORT completed\r\n");
  EXPECT_EQ(c.send("t1 SORT (ARRIVAL) UTF-8 ALL"), "* SORT 1 3 2 4\r\nt1 OK SORT completed\r\n");
  // RFC 5267 §3.2 ESORT: MIN and MAX are the first and last in sort order,
  // ALL is in sort order (only runs going up as ranges), COUNT.
  EXPECT_EQ(c.send("e1 SORT RETURN (MIN MAX COUNT) (ARRIVAL) UTF-8 ALL"),
            "* ESEARCH (TAG \"e1\") MIN 1 MAX 4 COUNT 4\r\ne1 OK SORT completed\r\n");
  EXPECT_EQ(c.send("e2 SORT RETURN (ALL) (ARRIVAL) UTF-8 ALL"),
            "* ESEARCH (TAG \"e2\") ALL 1,3,2,4\r\ne2 OK SORT completed\r\n");
  EXPECT_EQ(c.send("e3 SORT RETURN () (CC) UTF-8 ALL"),
            "* ESEARCH (TAG \"e3\") ALL 1,3:4,2\r\ne3 OK SORT completed\r\n");
  EXPECT_EQ(c.send("e4 SORT RETURN (ALL) (SIZE) UTF-8 ALL"),
            "* ESEARCH (TAG \"e4\") ALL 4,2:3,1\r\ne4 OK SORT completed\r\n");
  EXPECT_EQ(c.send("e7 SORT RETURN (ALL) (ARRIVAL) UTF-8 2:4"),
            "* ESEARCH (TAG \"e7\") ALL 3,2,4\r\ne7 OK SORT completed\r\n");
  EXPECT_EQ(c.send("e5 UID SORT RETURN (MIN MAX ALL) (REVERSE ARRIVAL) UTF-8 ALL"),
            "* ESEARCH (TAG \"e5\") UID MIN 5 MAX 4 ALL 5,3,2,4\r\ne5 OK UID SORT completed\r\n");
  EXPECT_EQ(c.send("e6 SORT RETURN (MIN MAX ALL COUNT) (SIZE) UTF-8 1000"),
            "* ESEARCH (TAG \"e6\") COUNT 0\r\ne6 OK SORT completed\r\n");
  // RFC 5267 §4.4: PARTIAL positions are in sort order (sort 4,2,3,1 by size).
  EXPECT_EQ(c.send("p1 SORT RETURN (PARTIAL 3:2) (SIZE) UTF-8 ALL"),
            "* ESEARCH (TAG \"p1\") PARTIAL (2:3 2:3)\r\np1 OK SORT completed\r\n");
  EXPECT_EQ(c.send("p2 UID SORT RETURN (PARTIAL 1:3 MIN) (REVERSE ARRIVAL) UTF-8 ALL"),
            "* ESEARCH (TAG \"p2\") UID MIN 5 PARTIAL (1:3 5,3,2)\r\np2 OK UID SORT completed\r\n");
  EXPECT_EQ(c.send("p3 SORT RETURN (PARTIAL 5:100) (SIZE) UTF-8 ALL"),
            "* ESEARCH (TAG \"p3\") PARTIAL (5:100 NIL)\r\np3 OK SORT completed\r\n");
  c.send("u1 UNSELECT");
  EXPECT_TRUE(c.send("u2 SORT (SIZE) UTF-8 ALL").starts_with("u2 BAD "));
}

// RFC 5256 §3-4 THREAD over a MemoryStore: both algorithms, the search
// keys, UID THREAD, the charset, the syntax.
TEST(Engine, Rfc5256Thread) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  c.store->add("Message-ID: <a@x>\r\nSubject: hello\r\nDate: Fri, 22 Feb 2008 01:00:00 +0000\r\n\r\n1\r\n");
  c.store->add("Message-ID: <b@x>\r\nIn-Reply-To: <a@x> (the first)\r\nSubject: Re: hello\r\n"
               "Date: Fri, 22 Feb 2008 03:00:00 +0000\r\n\r\n2\r\n");
  c.store->add("Message-ID: <c@x>\r\nReferences: <a@x>\r\n <b@x>\r\nSubject: Re: hello\r\n"
               "Date: Fri, 22 Feb 2008 02:00:00 +0000\r\n\r\n3\r\n");
  c.store->add("Message-ID: <d@x>\r\nReferences: <a@x>\r\nSubject: other\r\n"
               "Date: Fri, 22 Feb 2008 02:30:00 +0000\r\n\r\n4\r\n");
  c.store->add("Subject: Hello\r\nDate: Thu, 21 Feb 2008 00:00:00 +0000\r\n\r\n5\r\n");
  c.send("a2 SELECT INBOX");
  EXPECT_NE(c.send("a3 CAPABILITY").find(" THREAD=ORDEREDSUBJECT THREAD=REFERENCES"), std::string::npos);
  EXPECT_EQ(c.send("t1 THREAD REFERENCES UTF-8 ALL"),
            "* THREAD ((5)(1 (4)(2 3)))\r\nt1 OK THREAD completed\r\n");
  EXPECT_EQ(c.send("t2 THREAD ORDEREDSUBJECT US-ASCII ALL"),
            "* THREAD (5 (1)(3)(2))(4)\r\nt2 OK THREAD completed\r\n");
  EXPECT_EQ(c.send("t3 THREAD REFERENCES UTF-8 NOT 2"), "* THREAD ((5)(1 (3)(4)))\r\nt3 OK THREAD completed\r\n");
  EXPECT_EQ(c.send("t4 THREAD references utf-8 SUBJECT nothing"), "* THREAD\r\nt4 OK THREAD completed\r\n");
  c.send("s1 STORE 1 +FLAGS.SILENT (\\Deleted)");
  c.send("s2 EXPUNGE");
  // UIDs 2..5 are now sequence numbers 1..4. 2 and 4 hang from a dummy
  // for <a@x>, which 5 joins by its subject.
  EXPECT_EQ(c.send("t5 UID THREAD REFERENCES UTF-8 ALL"),
            "* THREAD ((5)(4)(2 3))\r\nt5 OK UID THREAD completed\r\n");
  EXPECT_EQ(c.send("t6 THREAD REFERENCES UTF-8 ALL"), "* THREAD ((4)(3)(1 2))\r\nt6 OK THREAD completed\r\n");
  EXPECT_TRUE(c.send("t7 THREAD REFERENCES KOI8-R ALL").starts_with("t7 NO [BADCHARSET (US-ASCII UTF-8)]"));
  for (const char* bad : {"b1 THREAD", "b2 THREAD REFERENCES", "b3 THREAD REFERENCES UTF-8",
                          "b4 THREAD JWZ UTF-8 ALL", "b5 THREAD (REFERENCES) UTF-8 ALL"}) {
    EXPECT_TRUE(c.send(bad).find(" BAD ") != std::string::npos) << bad;
  }
  c.send("u1 UNSELECT");
  EXPECT_TRUE(c.send("u2 THREAD REFERENCES UTF-8 ALL").starts_with("u2 BAD "));
}

// RFC 7162 §3.1 CONDSTORE over a MemoryStore (modseqs 2, 3, 4 for the
// three messages added): enabling commands, MODSEQ in FETCH, CHANGEDSINCE,
// UNCHANGEDSINCE and MODIFIED, SEARCH MODSEQ, STATUS HIGHESTMODSEQ.
TEST(Engine, Rfc7162Condstore) {
  Conversation c(plaintext());
  for (int i = 0; i < 3; ++i) c.store->add(std::string(kSimple));
  EXPECT_NE(c.send("a0 CAPABILITY").find(" CONDSTORE"), std::string::npos);  // before login too
  c.send("a1 LOGIN alice pw");
  const std::string sel = c.send("a2 SELECT INBOX");
  EXPECT_NE(sel.find("* OK [HIGHESTMODSEQ 4] Highest\r\n"), std::string::npos) << sel;
  // FETCH MODSEQ enables CONDSTORE: the first time with HIGHESTMODSEQ.
  EXPECT_EQ(c.send("f1 FETCH 1:3 (MODSEQ)"),
            "* OK [HIGHESTMODSEQ 4] Highest\r\n* 1 FETCH (MODSEQ (2))\r\n* 2 FETCH (MODSEQ (3))\r\n"
            "* 3 FETCH (MODSEQ (4))\r\nf1 OK FETCH completed\r\n");
  EXPECT_EQ(c.send("f2 FETCH 1 MODSEQ"), "* 1 FETCH (MODSEQ (2))\r\nf2 OK FETCH completed\r\n");
  // §3.1.3: every FETCH after a flag change carries MODSEQ (and UID).
  EXPECT_EQ(c.send("s1 STORE 2 +FLAGS (\\Seen)"),
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (5))\r\ns1 OK STORE completed\r\n");
  // A STORE that changes nothing keeps the modseq.
  EXPECT_EQ(c.send("s10 STORE 2 +FLAGS (\\Seen)"),
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ (5))\r\ns10 OK STORE completed\r\n");
  // §3.1.4.1: CHANGEDSINCE returns only what changed, with MODSEQ.
  EXPECT_EQ(c.send("f3 FETCH 1:* (FLAGS) (CHANGEDSINCE 4)"),
            "* 2 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (5))\r\nf3 OK FETCH completed\r\n");
  EXPECT_EQ(c.send("f4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)"), "f4 OK UID FETCH completed\r\n");
  // Another session's change: an unsolicited FETCH with UID and MODSEQ.
  ASSERT_TRUE(c.store->set_flags(c.store->entries[0].meta, kFlagged, {}));
  EXPECT_EQ(c.send("n1 NOOP"),
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) MODSEQ (6))\r\nn1 OK NOOP completed\r\n");
  // §3.1.3: message 1 changed after 5: not stored, named in MODIFIED;
  // .SILENT still reports the new modseqs.
  EXPECT_EQ(c.send("s2 STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)"),
            "* 2 FETCH (UID 2 MODSEQ (7))\r\n* 3 FETCH (UID 3 MODSEQ (8))\r\n"
            "s2 OK [MODIFIED 1] Conditional STORE failed\r\n");
  EXPECT_EQ(c.store->entries[0].meta.flags, kFlagged);
  EXPECT_EQ(c.store->entries[1].meta.flags, kSeen | kDeleted);
  EXPECT_EQ(c.send("s3 UID STORE 1:2 (UNCHANGEDSINCE 0) -FLAGS (\\Flagged)"),
            "s3 OK [MODIFIED 1:2] Conditional STORE failed\r\n");
  // §3.1.5: SEARCH MODSEQ, with the highest modseq of what it returns.
  EXPECT_EQ(c.send("u1 UID SEARCH MODSEQ 7"), "* SEARCH 2 3 (MODSEQ 8)\r\nu1 OK UID SEARCH completed\r\n");
  EXPECT_EQ(c.send("u2 SEARCH MODSEQ \"/flags/\\\\deleted\" all 8"), "* SEARCH 3 (MODSEQ 8)\r\nu2 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e1 SEARCH RETURN (MIN) MODSEQ 7"), "* ESEARCH (TAG \"e1\") MIN 2 MODSEQ 7\r\ne1 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e2 SEARCH RETURN (MIN MAX) MODSEQ 1"),
            "* ESEARCH (TAG \"e2\") MIN 1 MAX 3 MODSEQ 8\r\ne2 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e3 SEARCH RETURN (COUNT) MODSEQ 1"),
            "* ESEARCH (TAG \"e3\") COUNT 3 MODSEQ 8\r\ne3 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e4 SEARCH MODSEQ 100"), "* SEARCH\r\ne4 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e5 SEARCH RETURN (ALL) MODSEQ 100"), "* ESEARCH (TAG \"e5\")\r\ne5 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("e6 SEARCH SEEN"), "* SEARCH 2\r\ne6 OK SEARCH completed\r\n");  // no MODSEQ key: as before
  // §3.1.6: STATUS HIGHESTMODSEQ; an expunge makes it grow.
  EXPECT_EQ(c.send("t1 STATUS INBOX (HIGHESTMODSEQ MESSAGES)"),
            "* STATUS INBOX (HIGHESTMODSEQ 8 MESSAGES 3)\r\nt1 OK STATUS completed\r\n");
  c.send("x1 EXPUNGE");
  EXPECT_EQ(c.send("t2 STATUS INBOX (HIGHESTMODSEQ)"), "* STATUS INBOX (HIGHESTMODSEQ 10)\r\nt2 OK STATUS completed\r\n");
  // Leaving the folder keeps CONDSTORE on; SELECT always reports HIGHESTMODSEQ.
  EXPECT_NE(c.send("x2 SELECT INBOX").find("* OK [HIGHESTMODSEQ 10] Highest\r\n"), std::string::npos);
  EXPECT_EQ(c.send("x3 STORE 1 -FLAGS (\\Flagged)"),
            "* 1 FETCH (UID 1 FLAGS () MODSEQ (11))\r\nx3 OK STORE completed\r\n");

  // ENABLE CONDSTORE: once; with a folder selected, HIGHESTMODSEQ.
  Conversation d(plaintext());
  d.store->add(std::string(kSimple));
  d.send("a1 LOGIN alice pw");
  EXPECT_EQ(d.send("a2 ENABLE CONDSTORE"), "* ENABLED CONDSTORE\r\na2 OK ENABLE completed\r\n");
  EXPECT_EQ(d.send("a3 ENABLE CONDSTORE"), "* ENABLED\r\na3 OK ENABLE completed\r\n");
  Conversation e(plaintext());
  e.store->add(std::string(kSimple));
  e.send("a1 LOGIN alice pw");
  e.send("a2 SELECT INBOX");
  EXPECT_EQ(e.send("a3 STORE 1 +FLAGS (\\Seen)"), "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\na3 OK STORE completed\r\n");
  EXPECT_EQ(e.send("a4 ENABLE CONDSTORE"),
            "* ENABLED CONDSTORE\r\n* OK [HIGHESTMODSEQ 3] Highest\r\na4 OK ENABLE completed\r\n");
  // SELECT (CONDSTORE) enables it too (RFC 7162 §3.1.8).
  Conversation f(plaintext());
  f.store->add(std::string(kSimple));
  f.send("a1 LOGIN alice pw");
  EXPECT_NE(f.send("a2 EXAMINE INBOX (CONDSTORE)").find("* OK [HIGHESTMODSEQ 2] Highest\r\n"), std::string::npos);
  EXPECT_TRUE(f.send("a3 SELECT INBOX (CONDSTORE)").ends_with("a3 OK [READ-WRITE] SELECT completed\r\n"));
  EXPECT_EQ(f.send("a4 STORE 1 +FLAGS (\\Seen)"),
            "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (3))\r\na4 OK STORE completed\r\n");
  EXPECT_TRUE(f.send("a5 SELECT INBOX (BOGUS)").starts_with("a5 BAD"));
}

// RFC 7162 §3.2 QRESYNC over a MemoryStore, as a client reconnecting after
// a day away sees it: six messages (UIDs 1-6, modseqs 2-7), then another
// session expunges 2 and 5 (modseqs 8, 9), flags 3 (10), and 7 is
// delivered (11).
TEST(Engine, Rfc7162Qresync) {
  Conversation c(plaintext());
  for (int i = 0; i < 6; ++i) c.store->add(std::string(kSimple));
  EXPECT_NE(c.send("a0 CAPABILITY").find(" CONDSTORE QRESYNC"), std::string::npos);
  c.send("a1 LOGIN alice pw");
  // §3.2.5: SELECT (QRESYNC) before ENABLE QRESYNC is BAD.
  EXPECT_EQ(c.send("q0 SELECT INBOX (QRESYNC (1234 7))"),
            "q0 BAD SELECT (QRESYNC ...) needs ENABLE QRESYNC first\r\n");
  EXPECT_EQ(c.engine.state(), State::authenticated);
  // §3.2.3: ENABLE QRESYNC lists QRESYNC and turns CONDSTORE on too.
  EXPECT_EQ(c.send("e1 ENABLE QRESYNC"), "* ENABLED QRESYNC\r\ne1 OK ENABLE completed\r\n");
  EXPECT_EQ(c.send("e2 ENABLE QRESYNC CONDSTORE"), "* ENABLED\r\ne2 OK ENABLE completed\r\n");

  ASSERT_TRUE(c.store->expunge(c.store->entries[4].meta));  // UID 5
  ASSERT_TRUE(c.store->expunge(c.store->entries[1].meta));  // UID 2
  ASSERT_TRUE(c.store->set_flags(c.store->entries[1].meta, kFlagged, {}));  // UID 3
  c.store->add(std::string(kSimple));  // UID 7

  // §3.2.5.1: no known UIDs: 1:UIDNEXT-1. VANISHED (EARLIER) after the
  // usual responses, then FETCH for what changed since modseq 7 — the
  // flagged message and the new one.
  const std::string s1 = c.send("s1 SELECT INBOX (QRESYNC (1234 7))");
  EXPECT_TRUE(s1.ends_with("* OK [HIGHESTMODSEQ 11] Highest\r\n* VANISHED (EARLIER) 2,5\r\n"
                           "* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent) MODSEQ (10))\r\n"
                           "* 5 FETCH (UID 7 FLAGS (\\Recent) MODSEQ (11))\r\n"
                           "s1 OK [READ-WRITE] SELECT completed\r\n"))
      << s1;
  EXPECT_NE(s1.find("* 5 EXISTS\r\n"), std::string::npos) << s1;
  // §3.2.11: a SELECT that closes the selected folder says so first; with
  // known UIDs, only those are reported.
  const std::string s2 = c.send("s2 SELECT INBOX (QRESYNC (1234 7 1:4))");
  EXPECT_TRUE(s2.starts_with("* OK [CLOSED] previous mailbox closed\r\n* FLAGS ")) << s2;
  EXPECT_TRUE(s2.ends_with("* VANISHED (EARLIER) 2\r\n* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (10))\r\n"
                           "s2 OK [READ-WRITE] SELECT completed\r\n"))
      << s2;
  // seq-match-data is taken and ignored; EXAMINE works the same.
  const std::string s3 = c.send("s3 EXAMINE INBOX (QRESYNC (1234 10 1:7 (1:3 1,3:4)))");
  EXPECT_TRUE(s3.ends_with("* VANISHED (EARLIER) 2,5\r\n* 5 FETCH (UID 7 FLAGS () MODSEQ (11))\r\n"
                           "s3 OK [READ-ONLY] EXAMINE completed\r\n"))
      << s3;
  // Another UIDVALIDITY: the client starts over; a plain SELECT.
  const std::string s4 = c.send("s4 SELECT INBOX (QRESYNC (99 1 1:7))");
  EXPECT_EQ(s4.find("VANISHED"), std::string::npos) << s4;
  EXPECT_EQ(s4.find("FETCH"), std::string::npos) << s4;
  EXPECT_TRUE(s4.ends_with("* OK [HIGHESTMODSEQ 11] Highest\r\ns4 OK [READ-WRITE] SELECT completed\r\n")) << s4;
  // A BAD SELECT closes nothing (§3.2.5: arguments are checked first).
  EXPECT_EQ(c.send("q1 SELECT INBOX (QRESYNC (1234 0))").substr(0, 7), "q1 BAD ");
  EXPECT_EQ(c.engine.state(), State::selected);

  // §3.2.10: VANISHED instead of EXPUNGE, for EXPUNGE ...
  EXPECT_EQ(c.send("x0 UID STORE 1,6 +FLAGS.SILENT (\\Deleted)"),
            "* 1 FETCH (UID 1 MODSEQ (12))\r\n* 4 FETCH (UID 6 MODSEQ (13))\r\nx0 OK UID STORE completed\r\n");
  EXPECT_EQ(c.send("x1 EXPUNGE"), "* VANISHED 1,6\r\nx1 OK EXPUNGE completed\r\n");
  // ... for another session's expunge, not during FETCH (RFC 3501 §7.4.1) ...
  ASSERT_TRUE(c.store->expunge(c.store->entries[1].meta));  // UID 4
  EXPECT_EQ(c.send("f0 FETCH 1 UID"), "* 1 FETCH (UID 3)\r\nf0 OK FETCH completed\r\n");
  EXPECT_EQ(c.send("n0 NOOP"), "* VANISHED 4\r\nn0 OK NOOP completed\r\n");

  // §3.2.6: UID FETCH (CHANGEDSINCE n VANISHED): the UIDs of the set that
  // are gone ("*": UIDNEXT-1), then the FETCHes.
  EXPECT_EQ(c.send("v1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 10 VANISHED)"),
            "* VANISHED (EARLIER) 1:2,4:6\r\n* 2 FETCH (UID 7 FLAGS () MODSEQ (11))\r\nv1 OK UID FETCH completed\r\n");
  EXPECT_EQ(c.send("v2 UID FETCH 3:5 (FLAGS) (CHANGEDSINCE 100 VANISHED)"),
            "* VANISHED (EARLIER) 4:5\r\nv2 OK UID FETCH completed\r\n");
  EXPECT_EQ(c.send("v3 UID FETCH 3,7:9 (FLAGS) (CHANGEDSINCE 100 VANISHED)"), "v3 OK UID FETCH completed\r\n");
  // A message expunged elsewhere and not yet known to be: still in the
  // view (RFC 2180 §4.1.2), so a plain VANISHED after the FETCHes.
  ASSERT_TRUE(c.store->expunge(c.store->entries[1].meta));  // UID 7
  EXPECT_EQ(c.send("v4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 9 VANISHED)"),
            "* VANISHED (EARLIER) 1:2,4:6\r\n* 1 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (10))\r\n"
            "* 2 FETCH (UID 7 FLAGS () MODSEQ (11))\r\n* VANISHED 7\r\nv4 OK UID FETCH completed\r\n");
  EXPECT_EQ(c.send("b1 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)").substr(0, 7), "b1 BAD ");
  EXPECT_EQ(c.send("b2 UID FETCH 1 (FLAGS) (VANISHED)").substr(0, 7), "b2 BAD ");

  // ... and for MOVE (RFC 6851 §4.3).
  c.send("m0 CREATE Trash");
  c.account->stores.at("Trash")->uidvalidity = 77;
  EXPECT_EQ(c.send("m1 UID MOVE 3 Trash"), "* OK [COPYUID 77 3 1] moved\r\n* VANISHED 3\r\nm1 OK UID MOVE completed\r\n");
  // CLOSE stays silent (RFC 3501 §6.4.2).
  EXPECT_EQ(c.send("m2 CLOSE"), "m2 OK CLOSE completed\r\n");

  // Without ENABLE QRESYNC: FETCH VANISHED is BAD, EXPUNGE stays EXPUNGE;
  // ENABLE with a folder selected reports its HIGHESTMODSEQ once, and
  // "ENABLE CONDSTORE QRESYNC" lists both.
  Conversation d(plaintext());
  d.store->add(std::string(kSimple), kDeleted);
  d.store->add(std::string(kSimple));
  d.send("a1 LOGIN alice pw");
  d.send("a2 SELECT INBOX");
  EXPECT_EQ(d.send("a3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"),
            "a3 BAD VANISHED needs ENABLE QRESYNC first\r\n");
  EXPECT_EQ(d.send("a4 ENABLE CONDSTORE QRESYNC"),
            "* ENABLED CONDSTORE QRESYNC\r\n* OK [HIGHESTMODSEQ 3] Highest\r\na4 OK ENABLE completed\r\n");
  EXPECT_EQ(d.send("a5 EXPUNGE"), "* VANISHED 1\r\n* 1 RECENT\r\na5 OK EXPUNGE completed\r\n");
  // A mailbox that never had a message: nothing to report.
  Conversation e(plaintext());
  e.send("a1 LOGIN alice pw");
  e.send("a2 ENABLE QRESYNC");
  EXPECT_TRUE(e.send("a3 SELECT INBOX (QRESYNC (1234 1))")
                  .ends_with("* OK [HIGHESTMODSEQ 1] Highest\r\na3 OK [READ-WRITE] SELECT completed\r\n"));
  // RFC 7162 §3.1: the implicit \Seen of a FETCH carries UID and MODSEQ.
  e.store->add(std::string(kSimple));
  EXPECT_EQ(e.send("a4 NOOP"), "* 1 EXISTS\r\n* 1 RECENT\r\na4 OK NOOP completed\r\n");
  EXPECT_EQ(e.send("a5 FETCH 1 BODY[TEXT]"),
            "* 1 FETCH (UID 1 BODY[TEXT] {20}\r\nline one\r\nline two\r\n FLAGS (\\Seen \\Recent) MODSEQ (3))\r\n"
            "a5 OK FETCH completed\r\n");

  // RFC 5267 §4.3.4 with QRESYNC: an updating search's REMOVEFROM still
  // comes first, then the VANISHED.
  EXPECT_EQ(e.send("w0 UID SEARCH RETURN (UPDATE ALL) ALL"),
            "* ESEARCH (TAG \"w0\") UID ALL 1\r\nw0 OK UID SEARCH completed\r\n");
  ASSERT_TRUE(e.store->expunge(e.store->entries[0].meta));  // UID 1, by another session
  EXPECT_EQ(e.send("w1 NOOP"),
            "* ESEARCH (TAG \"w0\") UID REMOVEFROM (0 1)\r\n* VANISHED 1\r\n* 0 RECENT\r\nw1 OK NOOP completed\r\n");
}

// RFC 9208: one quota root "" over the mailbox, STORAGE in KiB; APPEND and
// COPY over it get NO [OVERQUOTA] (RFC 5530) and change nothing.
TEST(Engine, Rfc9208QuotaAndOverquota) {
  Conversation c(plaintext());
  EXPECT_NE(c.send("a0 CAPABILITY").find(" QUOTA QUOTA=RES-STORAGE"), std::string::npos);
  EXPECT_EQ(c.send("a1 GETQUOTAROOT INBOX"), "a1 BAD GETQUOTAROOT not valid in this state\r\n");
  c.send("a2 LOGIN alice pw");
  // No quota configured: INBOX has no quota root.
  EXPECT_EQ(c.send("a3 GETQUOTAROOT INBOX"), "* QUOTAROOT INBOX\r\na3 OK GETQUOTAROOT completed\r\n");
  EXPECT_EQ(c.send("a4 GETQUOTA \"\""), "a4 NO [NONEXISTENT] no such quota root\r\n");

  c.account->quota_limit = 4096;
  c.store->add(std::string(2048, 'x'));
  EXPECT_EQ(c.send("b1 GETQUOTAROOT inbox"),
            "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 2 4)\r\nb1 OK GETQUOTAROOT completed\r\n");
  EXPECT_EQ(c.send("b2 GETQUOTA \"\""), "* QUOTA \"\" (STORAGE 2 4)\r\nb2 OK GETQUOTA completed\r\n");
  EXPECT_EQ(c.send("b3 GETQUOTA other"), "b3 NO [NONEXISTENT] no such quota root\r\n");
  EXPECT_EQ(c.send("b4 GETQUOTAROOT Trash"), "b4 NO [NONEXISTENT] no such folder\r\n");
  c.send("b40 CREATE Trash");
  EXPECT_EQ(c.send("b41 GETQUOTAROOT Trash"),
            "* QUOTAROOT Trash \"\"\r\n* QUOTA \"\" (STORAGE 2 4)\r\nb41 OK GETQUOTAROOT completed\r\n");
  EXPECT_EQ(c.send("b5 SETQUOTA \"\" (STORAGE 10)"), "b5 NO [NOPERM] quotas are set in the server's configuration\r\n");
  EXPECT_EQ(c.send("b6 SETQUOTA \"\" (STORAGE)").substr(0, 7), "b6 BAD ");

  // 2048 + 2049 > 4096: refused; 2048 fits exactly.
  EXPECT_EQ(c.send("c1 APPEND INBOX {2049+}\r\n" + std::string(2049, 'y')), "c1 NO [OVERQUOTA] the mailbox is full\r\n");
  EXPECT_EQ(c.store->entries.size(), 1u);
  EXPECT_EQ(c.send("c2 APPEND INBOX {2048+}\r\n" + std::string(2048, 'y')),
            "c2 OK [APPENDUID 1234 2] APPEND completed\r\n");
  c.send("c3 SELECT INBOX");
  EXPECT_EQ(c.send("c4 COPY 1 INBOX"), "c4 NO [OVERQUOTA] the mailbox is full; nothing copied\r\n");
  EXPECT_EQ(c.store->entries.size(), 2u);
  // Room again after an expunge; STATUS tells what an expunge would free.
  c.send("d1 STORE 2 +FLAGS.SILENT (\\Deleted)");
  EXPECT_EQ(c.send("d2 STATUS INBOX (DELETED DELETED-STORAGE)"),
            "* STATUS INBOX (DELETED 1 DELETED-STORAGE 2)\r\nd2 OK STATUS completed\r\n");
  c.send("d3 EXPUNGE");
  EXPECT_EQ(c.send("d4 COPY 1 INBOX"), "* 2 EXISTS\r\n* 2 RECENT\r\nd4 OK [COPYUID 1234 1 3] COPY completed\r\n");
}

TEST(Engine, Rfc3501Section2_3_2Keywords) {
  Conversation c(plaintext());
  c.store->add(kSimple);
  c.store->add(kSimple);
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.send("a2 SELECT INBOX").find("[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"),
            std::string::npos);
  EXPECT_EQ(c.send("a3 STORE 1 +FLAGS ($Forwarded \\Seen)"),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
            "* 1 FETCH (FLAGS (\\Seen $Forwarded \\Recent))\r\na3 OK STORE completed\r\n");
  EXPECT_EQ(c.store->entries[0].meta.keywords, Keywords{"$Forwarded"});
  EXPECT_EQ(c.send("a4 SEARCH KEYWORD $forwarded"), "* SEARCH 1\r\na4 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("a5 SEARCH UNKEYWORD $Forwarded"), "* SEARCH 2\r\na5 OK SEARCH completed\r\n");
  EXPECT_EQ(c.send("a6 STORE 1 -FLAGS.SILENT ($FORWARDED)"), "a6 OK STORE completed\r\n");
  EXPECT_TRUE(c.store->entries[0].meta.keywords.empty());
  c.store->max_keywords = 0;
  EXPECT_TRUE(c.send("a7 STORE 2 +FLAGS (Junk)").starts_with("a7 NO [LIMIT]"));
}

TEST(Engine, BadCommandsAreTaggedAndLimited) {
  Options o = plaintext();
  o.max_errors = 3;
  Conversation c(o);
  EXPECT_EQ(c.send("x1 FROB"), "x1 BAD unknown command\r\n");
  EXPECT_EQ(c.send("x2 SELECT INBOX"), "x2 BAD SELECT not valid in this state\r\n");
  std::string last = c.send("x3 FETCH");
  EXPECT_TRUE(last.starts_with("* BYE")) << last;
  EXPECT_EQ(c.last_kind, Action::Kind::close);
}

TEST(Engine, LogoutAndMisc) {
  Conversation c(plaintext());
  EXPECT_EQ(c.send("a ID NIL"), "* ID (\"name\" \"hikyaku\")\r\na OK ID completed\r\n");
  c.send("b LOGIN alice pw");
  EXPECT_EQ(c.send("c NAMESPACE"), "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nc OK NAMESPACE completed\r\n");
  EXPECT_EQ(c.send("d ENABLE CONDSTORE"), "* ENABLED CONDSTORE\r\nd OK ENABLE completed\r\n");
  EXPECT_EQ(c.send("d2 ENABLE CONDSTORE X-UNKNOWN"), "* ENABLED\r\nd2 OK ENABLE completed\r\n");
  EXPECT_EQ(c.send("e LOGOUT"), "* BYE hikyaku logging out\r\ne OK LOGOUT completed\r\n");
  EXPECT_EQ(c.last_kind, Action::Kind::close);
}


// ---------------------------------------------------------------- BINARY and MULTIAPPEND

const std::string kEncodedParts =
    "Subject: parts\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n"
    "\r\n"
    "--b\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Transfer-Encoding: BASE64 (comment)\r\n"
    "\r\n"
    "aGVs\r\nbG8=\r\n"
    "--b\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "a=00b=\r\nc\r\n"
    "--b\r\n"
    "Content-Transfer-Encoding: x-uuencode\r\n"
    "\r\n"
    "begin\r\n"
    "--b\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "Subject: inner\r\n\r\nbody\r\n"
    "--b--\r\n";

TEST(Message, Rfc3516Section4_2BinarySection) {
  using S = BinarySection::Status;
  auto b = binary_section(kEncodedParts, {1});
  EXPECT_EQ(b.status, S::ok);
  EXPECT_EQ(b.octets, "hello");
  b = binary_section(kEncodedParts, {2});
  EXPECT_EQ(b.octets, "a\0bc"s);  // the CRLF before a delimiter is the delimiter's
  EXPECT_EQ(binary_section(kEncodedParts, {3}).status, S::unknown_cte);
  // RFC 2045 §6.4: a message/rfc822 part is never encoded, whatever it says.
  b = binary_section(kEncodedParts, {4});
  EXPECT_EQ(b.status, S::ok);
  EXPECT_EQ(b.octets, "Subject: inner\r\n\r\nbody");
  EXPECT_EQ(binary_section(kEncodedParts, {4, 1}).octets, "body");
  EXPECT_EQ(binary_section(kEncodedParts, {9}).status, S::missing);
  EXPECT_EQ(binary_section(kEncodedParts, {}).octets, kEncodedParts);  // BINARY[]: unchanged
  // A single-part message: part 1 is its body, decoded by its header's CTE.
  b = binary_section("Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n", {1});
  EXPECT_EQ(b.octets, "hi");
}

TEST(Message, Rfc3516Section4_3BinaryPartsStoredAsBase64) {
  const std::string binary =
      "Subject: b\r\n"
      "Content-Type: multipart/mixed; boundary=b\r\n"
      "\r\n"
      "--b\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: binary\r\n"
      "\r\n"
      "\0\xff\r\n"
      "--b\r\n"
      "\r\n"
      "nul \0 without a CTE\r\n"
      "--b\r\n"
      "\r\n"
      "text stays\r\n"
      "--b--\r\n"s;
  const std::string stored = encode_binary_parts(binary);
  EXPECT_EQ(stored.find('\0'), std::string::npos) << stored;
  EXPECT_EQ(stored.find("binary"), std::string::npos) << stored;
  EXPECT_NE(stored.find("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAP8=\r\n"),
            std::string::npos)
      << stored;
  EXPECT_NE(stored.find("\r\n\r\ntext stays\r\n--b--\r\n"), std::string::npos) << stored;
  EXPECT_EQ(binary_section(stored, {1}).octets, "\0\xff"s);
  EXPECT_EQ(binary_section(stored, {2}).octets, "nul \0 without a CTE"s);
  EXPECT_EQ(binary_section(stored, {3}).octets, "text stays");
  // Nothing binary: the message is unchanged.
  EXPECT_EQ(encode_binary_parts(kMultipart), kMultipart);
  // Hostile input stays bounded and in range.
  EXPECT_EQ(encode_binary_parts(""), "");
  EXPECT_EQ(encode_binary_parts("\0"s), "\0"s);  // all header, no body to encode
}

TEST(Command, Rfc3516BinaryAndRfc3502MultiappendSyntax) {
  auto r = parse_command("t FETCH 1 (BINARY[1.2]<5.10> BINARY.PEEK[] BINARY.SIZE[3])");
  ASSERT_TRUE(r.command) << r.error;
  const auto& f = r.command->fetch;
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].kind, FetchAtt::Kind::binary);
  EXPECT_FALSE(f[0].peek);
  EXPECT_EQ(f[0].section.part, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(*f[0].partial_offset, 5u);
  EXPECT_EQ(f[0].partial_count, 10u);
  EXPECT_TRUE(f[1].peek);
  EXPECT_TRUE(f[1].section.part.empty());
  EXPECT_EQ(f[2].kind, FetchAtt::Kind::binary_size);
  // RFC 3516 section-binary: part numbers only; BINARY.SIZE takes no partial.
  EXPECT_FALSE(parse_command("t FETCH 1 BINARY[1.HEADER]").command);
  EXPECT_FALSE(parse_command("t FETCH 1 BINARY[TEXT]").command);
  EXPECT_FALSE(parse_command("t FETCH 1 BINARY.SIZE[1]<0.5>").command);
  EXPECT_FALSE(parse_command("t FETCH 1 BINARY").command);

  // RFC 3502: several messages, each with its own flags and date; literal8.
  r = parse_command("t APPEND box (\\Seen) {1}\r\na \"05-Mar-2024 10:00:00 +0000\" ~{3}\r\nb\0c {1}\r\nd"s);
  ASSERT_TRUE(r.command) << r.error;
  const auto& a = r.command->append;
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].flags, std::vector<std::string>{"\\Seen"});
  EXPECT_EQ(a[0].message, "a");
  EXPECT_FALSE(a[0].binary);
  EXPECT_TRUE(a[1].date.has_value());
  EXPECT_TRUE(a[1].flags.empty());
  EXPECT_EQ(a[1].message, "b\0c"s);
  EXPECT_TRUE(a[1].binary);
  EXPECT_EQ(a[2].message, "d");
  EXPECT_FALSE(parse_command("t APPEND box").command);
  EXPECT_FALSE(parse_command("t APPEND box {1}\r\na ").command);
  EXPECT_FALSE(parse_command("t APPEND box ~\"x\"").command);
}

TEST(Engine, Rfc3516FetchBinary) {
  Conversation c(plaintext());
  c.store->add(kEncodedParts);
  c.store->add("Content-Transfer-Encoding: base64\r\n\r\nAP8A\r\n");
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.engine.capabilities().find(" BINARY"), std::string::npos);
  c.send("a2 SELECT INBOX");
  EXPECT_EQ(c.send("b1 FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[1]<1.3>)"),
            "* 1 FETCH (BINARY.SIZE[1] 5 BINARY[1] {5}\r\nhello BINARY[1]<1> {3}\r\nell)\r\nb1 OK FETCH completed\r\n");
  EXPECT_EQ(c.store->entries[0].meta.flags, 0);  // .PEEK
  // RFC 3516 §4.2: a NUL needs literal8; a partial without one does not.
  EXPECT_EQ(c.send("b2 FETCH 1 (BINARY.PEEK[2] BINARY.PEEK[2]<2.10>)"),
            "* 1 FETCH (BINARY[2] ~{4}\r\na\0bc BINARY[2]<2> {2}\r\nbc)\r\nb2 OK FETCH completed\r\n"s);
  EXPECT_EQ(c.send("b3 FETCH 1 BINARY.PEEK[3]"),
            "b3 NO [UNKNOWN-CTE] a part has a Content-Transfer-Encoding hikyaku cannot decode\r\n");
  EXPECT_EQ(c.send("b4 FETCH 1 (BINARY.PEEK[7] BINARY.SIZE[7])"),
            "* 1 FETCH (BINARY[7] NIL BINARY.SIZE[7] 0)\r\nb4 OK FETCH completed\r\n");
  EXPECT_EQ(c.send("b5 FETCH 2 BINARY.SIZE[]"),
            "* 2 FETCH (BINARY.SIZE[] 43)\r\nb5 OK FETCH completed\r\n");
  // BINARY (not .PEEK) sets \Seen like BODY[].
  EXPECT_EQ(c.send("b6 FETCH 2 BINARY[1]"),
            "* 2 FETCH (BINARY[1] ~{3}\r\n\0\xff\0 FLAGS (\\Seen \\Recent))\r\nb6 OK FETCH completed\r\n"s);
}

TEST(Engine, Rfc3502MultiappendAllOrNothing) {
  Conversation c(plaintext());
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.engine.capabilities().find(" MULTIAPPEND"), std::string::npos);
  EXPECT_EQ(c.send("a2 APPEND INBOX (\\Seen) {3}\r\nm:1 (\\Flagged) {3}\r\nm:2 {3}\r\nm:3"),
            "a2 OK [APPENDUID 1234 1:3] APPEND completed\r\n");  // RFC 4315 §3 uid-set
  ASSERT_EQ(c.store->entries.size(), 3u);
  EXPECT_EQ(c.store->entries[0].meta.flags, kSeen);
  EXPECT_EQ(c.store->entries[1].meta.flags, kFlagged);
  EXPECT_EQ(c.store->entries[2].content, "m:3");
  // The third message cannot keep its keywords: none of the three is added.
  c.store->max_keywords = 1;
  EXPECT_EQ(c.send("a3 APPEND INBOX {1}\r\nx (k1) {1}\r\ny (k1 k2) {1}\r\nz"),
            "a3 NO [SERVERBUG] could not store the message\r\n");
  EXPECT_EQ(c.store->entries.size(), 3u);
  // RFC 3516 §4.3: a literal8 message's binary part is stored as base64.
  const std::string binary = "Content-Transfer-Encoding: binary\r\n\r\n\0\r\n"s;
  EXPECT_EQ(c.send("a4 APPEND INBOX ~{" + std::to_string(binary.size()) + "}\r\n" + binary),
            "a4 OK [APPENDUID 1234 6] APPEND completed\r\n");
  EXPECT_EQ(c.store->entries.back().content, "Content-Transfer-Encoding: base64\r\n\r\nAA0K\r\n");
}

TEST(Command, Rfc4469CatenateAndRfc5092UrlSyntax) {
  auto r = parse_command("t APPEND box (\\Seen) CATENATE (URL \"/box/;uid=3/;section=header\" TEXT {2}\r\nhi) {1}\r\nx"s);
  ASSERT_TRUE(r.command) << r.error;
  const auto& a = r.command->append;
  ASSERT_EQ(a.size(), 2u);  // with MULTIAPPEND
  ASSERT_EQ(a[0].catenate.size(), 2u);
  EXPECT_TRUE(a[0].catenate[0].url);
  EXPECT_EQ(a[0].catenate[0].data, "/box/;uid=3/;section=header");
  EXPECT_EQ(a[0].catenate[1].data, "hi");
  EXPECT_EQ(a[1].message, "x");
  EXPECT_FALSE(parse_command("t APPEND box CATENATE ()").command);
  EXPECT_FALSE(parse_command("t APPEND box CATENATE (FOO \"x\")").command);
  EXPECT_FALSE(parse_command("t APPEND box CATENATE (TEXT \"not a literal\")").command);

  auto u = parse_imap_url("/a%20b;UIDVALIDITY=7/;UID=3/;SECTION=1.MIME/;PARTIAL=5.10");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->mailbox, "a b");
  EXPECT_EQ(*u->uidvalidity, 7u);
  EXPECT_EQ(u->uid, 3u);
  EXPECT_EQ(u->section.part, std::vector<uint32_t>{1});
  EXPECT_EQ(u->section.text, Section::Text::mime);
  EXPECT_EQ(*u->partial_offset, 5u);
  EXPECT_EQ(*u->partial_length, 10u);
  u = parse_imap_url("/INBOX/;uid=1/;section=HEADER.FIELDS%20(From%20To)");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->section.fields, (std::vector<std::string>{"From", "To"}));
  u = parse_imap_url("/Sent/Old/;UID=9");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->mailbox, "Sent/Old");
  EXPECT_TRUE(u->section.part.empty());
  for (const char* bad : {"imap://u@h/INBOX/;UID=1", "INBOX/;UID=1", "/INBOX", "/INBOX/;UID=0", "/INBOX/;UID=x",
                          "/INBOX;UID=1", "/INBOX/;UIDVALIDITY=1/;UID=1", "/INBOX/;UID=1/;SECTION=BOGUS",
                          "/INBOX/;UID=1/;PARTIAL=1.0", "/INBOX/;UID=1/;URLAUTH=user", "/%zz/;UID=1",
                          "/INBOX/;UID=1;SECTION=1", "/;UID=1", "//h/INBOX/;UID=1"}) {
    EXPECT_FALSE(parse_imap_url(bad)) << bad;
  }
}

TEST(Engine, Rfc4469Catenate) {
  Conversation c(plaintext());
  c.store->add(kMultipart);
  c.send("a1 LOGIN alice pw");
  EXPECT_NE(c.engine.capabilities().find(" CATENATE"), std::string::npos);
  // A header from a URL, then text; the URL's UIDVALIDITY must match.
  EXPECT_EQ(c.send("a2 APPEND INBOX CATENATE (URL \"/INBOX;UIDVALIDITY=1234/;UID=1/;SECTION=1\" TEXT {4}\r\nmore)"),
            "a2 OK [APPENDUID 1234 2] APPEND completed\r\n");
  EXPECT_EQ(c.store->entries[1].content, "hellomore");
  EXPECT_EQ(c.send("a3 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.5\" URL \"/INBOX/;UID=2\")"),
            "a3 OK [APPENDUID 1234 3] APPEND completed\r\n");
  EXPECT_EQ(c.store->entries[2].content, "From:hellomore");
  // RFC 4469 §5: a URL that names nothing fails the APPEND (all of a
  // MULTIAPPEND), BADURL naming it; a missing folder is TRYCREATE first.
  EXPECT_EQ(c.send("a4 APPEND INBOX {1}\r\nx CATENATE (URL \"/INBOX;UIDVALIDITY=9/;UID=1\")"),
            "a4 NO [BADURL /INBOX;UIDVALIDITY=9/;UID=1] the URL names no message\r\n");
  EXPECT_EQ(c.send("a5 APPEND INBOX CATENATE (URL \"/INBOX/;UID=99\")"),
            "a5 NO [BADURL /INBOX/;UID=99] the URL names no message\r\n");
  EXPECT_EQ(c.send("a6 APPEND INBOX CATENATE (URL \"/Nope/;UID=1\")"),
            "a6 NO [BADURL /Nope/;UID=1] the URL names no message\r\n");
  EXPECT_EQ(c.send("a7 APPEND Nope CATENATE (URL \"/INBOX/;UID=99]\")"), "a7 NO [TRYCREATE] no such folder\r\n");
  EXPECT_EQ(c.send("a8 APPEND INBOX CATENATE (URL \"/INBOX/;UID=99]\")"),
            "a8 NO [BADURL /INBOX/;UID=99] the URL names no message\r\n");  // no "]" inside the code
  EXPECT_EQ(c.store->entries.size(), 3u);
}

}  // namespace
}  // namespace hikyaku::imap::protocol
