// Unit tests for the sans-I/O POP3 protocol: parser, message rendering and
// the state machine, driven through scripted conversations with a fake
// backend (credentials, lock, maildrop) that answers the actions at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/strings.hpp"
#include "pop3/protocol/command.hpp"
#include "pop3/protocol/message.hpp"
#include "pop3/protocol/state_machine.hpp"

namespace hikyaku::pop3::protocol {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------- parser

TEST(Command, Rfc1939Section3KeywordsCaseInsensitive) {
  struct Case {
    std::string line;
    Verb verb;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"USER alice", Verb::user, {"alice"}},
      {"user alice", Verb::user, {"alice"}},
      {"PaSs secret with spaces", Verb::pass, {"secret", "with", "spaces"}},
      {"STAT", Verb::stat, {}},
      {"LIST 2", Verb::list, {"2"}},
      {"TOP 1 99999999", Verb::top, {"1", "99999999"}},
      {"uidl", Verb::uidl, {}},
      {"CAPA", Verb::capa, {}},
      {"STLS", Verb::stls, {}},
      {"AUTH PLAIN AGFsaWNlAHB3", Verb::auth, {"PLAIN", "AGFsaWNlAHB3"}},
      {"QUIT ", Verb::quit, {}},
      {"XYZZY", Verb::unknown, {}},
      {"", Verb::unknown, {}},
      {"LI", Verb::unknown, {}},
      {"LISTS", Verb::unknown, {}},
      {" LIST", Verb::unknown, {"LIST"}},
      {"RETR\0001"s, Verb::unknown, {}},
  };
  for (const auto& c : cases) {
    auto cmd = parse_command(c.line);
    EXPECT_EQ(cmd.verb, c.verb) << "line: " << c.line;
    EXPECT_EQ(cmd.args, c.args) << "line: " << c.line;
  }
  EXPECT_EQ(parse_command("PASS  two  spaces ").rest, " two  spaces ");
}

TEST(Command, Rfc1939Section3MessageNumbers) {
  EXPECT_EQ(parse_message_number("1"), 1u);
  EXPECT_EQ(parse_message_number("0042"), 42u);
  EXPECT_FALSE(parse_message_number("0"));
  EXPECT_FALSE(parse_message_number("-1"));
  EXPECT_FALSE(parse_message_number("+1"));
  EXPECT_FALSE(parse_message_number("1a"));
  EXPECT_FALSE(parse_message_number(""));
  EXPECT_FALSE(parse_message_number("99999999999999999999999"));
}

TEST(Command, Rfc1939Section7TopLineCountSaturates) {
  EXPECT_EQ(parse_line_count("0"), 0u);
  EXPECT_EQ(parse_line_count("99999999"), 99999999u);
  EXPECT_EQ(parse_line_count("999999999999999999999999999999"), UINT64_MAX);
  EXPECT_FALSE(parse_line_count("-5"));
  EXPECT_FALSE(parse_line_count("x"));
}

// ------------------------------------------------------------- rendering

TEST(Message, Rfc1939Section3ByteStuffingAndCrlf) {
  struct Case {
    std::string name;
    std::string content;
    std::optional<uint64_t> top;
    std::string want;
  };
  const Case cases[] = {
      {"crlf_passthrough", "A: 1\r\n\r\nbody\r\n", std::nullopt, "A: 1\r\n\r\nbody\r\n.\r\n"},
      {"lf_to_crlf", "A: 1\n\nbody\n", std::nullopt, "A: 1\r\n\r\nbody\r\n.\r\n"},
      {"dot_stuffed", "A: 1\r\n\r\n.\r\n..x\r\n.y\r\n", std::nullopt,
       "A: 1\r\n\r\n..\r\n...x\r\n..y\r\n.\r\n"},
      {"no_final_newline", "A: 1\r\n\r\nend", std::nullopt, "A: 1\r\n\r\nend\r\n.\r\n"},
      {"empty", "", std::nullopt, ".\r\n"},
      {"inner_cr_kept", "A: 1\r\n\r\na\rb\r\n", std::nullopt, "A: 1\r\n\r\na\rb\r\n.\r\n"},
      {"top0", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0, "A: 1\r\nB: 2\r\n\r\n.\r\n"},
      {"top1", "A: 1\r\n\r\nl1\r\nl2\r\n", 1, "A: 1\r\n\r\nl1\r\n.\r\n"},
      {"top_huge", "A: 1\r\n\r\nl1\r\n.l2\r\n", 99999999, "A: 1\r\n\r\nl1\r\n..l2\r\n.\r\n"},
      {"top_no_body", "A: 1\r\nB: 2\r\n", 5, "A: 1\r\nB: 2\r\n.\r\n"},
      {"top_empty_lines_in_body", "A: 1\r\n\r\n\r\n\r\nx\r\n", 2, "A: 1\r\n\r\n\r\n\r\n.\r\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(render_message(c.content, c.top), c.want) << c.name;
  }
}

TEST(Message, Rfc1939Section5SizeIsCrlfFormWithoutStuffing) {
  EXPECT_EQ(wire_size("A: 1\r\n\r\nbody\r\n"), 14u);
  EXPECT_EQ(wire_size("A: 1\n\nbody\n"), 14u);
  EXPECT_EQ(wire_size(".\r\n"), 3u);
  EXPECT_EQ(wire_size("x"), 3u);
  EXPECT_EQ(wire_size(""), 0u);
  // RETR's payload minus the terminator and stuffing is exactly wire_size.
  std::string msg = "Subject: x\n\n.dot\nline\n";
  auto rendered = render_message(msg, std::nullopt);
  EXPECT_EQ(rendered.size() - 3 - 1, wire_size(msg));
}

// --------------------------------------------------------- state machine

struct Fake {
  std::map<std::string, std::string> passwords{{"alice", "wonderland"}, {"bob", "builder"}};
  std::set<std::string> locked;
  std::vector<std::pair<std::string, std::string>> mailbox{
      {"1700000000.M1P1.host", "Subject: one\r\n\r\nfirst\r\n"},
      {"1700000001.M2P1.host", "Subject: two\n\n.hidden\nsecond\n"},
      {"1700000002.M3P1.host", "Subject: three\r\n\r\nthird\r\n"},
  };
  std::vector<size_t> removed;
  bool remove_fails = false;
  bool unreadable = false;
  bool gone = false;  // removed by another program after login
  std::vector<std::string> log;  // actions seen, without secrets
  bool tls_started = false;
};

// Feed one line and resolve every action synchronously; returns all bytes
// the server would write for that line.
std::string send(StateMachine& sm, Fake& fake, std::string_view line) {
  Action a = sm.on_line(line);
  std::string out;
  for (;;) {
    out += a.reply;
    switch (a.kind) {
      case Action::Kind::none:
      case Action::Kind::close:
        return out;
      case Action::Kind::start_tls:
        fake.tls_started = true;
        sm.tls_started();
        return out;
      case Action::Kind::authenticate: {
        fake.log.push_back("auth " + a.mechanism + " " + a.user);
        auto it = fake.passwords.find(a.user);
        if (a.refused || it == fake.passwords.end() || it->second != a.password) {
          a = sm.login_result(LoginOutcome::bad_credentials);
        } else if (fake.locked.count(a.user)) {
          a = sm.login_result(LoginOutcome::in_use);
        } else {
          std::vector<MessageEntry> entries;
          for (const auto& [uid, content] : fake.mailbox) entries.push_back({uid, wire_size(content)});
          a = sm.login_result(LoginOutcome::ok, std::move(entries));
        }
        continue;
      }
      case Action::Kind::retrieve:
        if (fake.gone) {
          a = sm.message_gone();
        } else if (fake.unreadable) {
          a = sm.message_loaded(std::nullopt);
        } else {
          a = sm.message_loaded(fake.mailbox.at(a.message).second);
        }
        continue;
      case Action::Kind::update:
        fake.removed = a.deletions;
        a = sm.update_done(!fake.remove_fails);
        continue;
    }
  }
}

Options tls_options() {
  Options o;
  o.tls_available = true;
  o.tls_active = true;
  return o;
}

struct Step {
  std::string send;
  std::string want;  // exact reply, or a prefix when it ends with '*'
};

struct Script {
  std::string name;
  Options options;
  std::vector<Step> steps;
};

void run_script(const Script& s, Fake& fake) {
  StateMachine sm(s.options);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const auto& step = s.steps[i];
    auto got = send(sm, fake, step.send);
    if (!step.want.empty() && step.want.back() == '*') {
      auto prefix = step.want.substr(0, step.want.size() - 1);
      EXPECT_EQ(got.substr(0, prefix.size()), prefix)
          << s.name << " step " << i << " (" << step.send << "): got " << got;
    } else {
      EXPECT_EQ(got, step.want) << s.name << " step " << i << " (" << step.send << ")";
    }
  }
}

std::string b64(std::string_view s) { return base::base64_encode(s); }

// RFC 1939 §7: a name that is no valid unique-id (another program's:
// longer than 70 characters, or not ASCII) gets a stable substitute.
TEST(StateMachine, UniqueIdOfANameThatIsNoValidOne_RFC1939s7) {
  EXPECT_EQ(unique_id("1700000000.M1P1.host,S=10,W=11"), "1700000000.M1P1.host,S=10,W=11");
  const std::string names[] = {std::string(71, 'a'), "1700000000.M1P1.h\xC3\xB6st", "", "a b"};
  std::set<std::string> seen;
  for (const auto& name : names) {
    const std::string id = unique_id(name);
    EXPECT_EQ(id.size(), 33u) << id;
    EXPECT_EQ(id[0], 'x');
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x21 && c <= 0x7e; })) << id;
    EXPECT_EQ(unique_id(name), id);  // the same in every session
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), std::size(names));
  EXPECT_EQ(unique_id(std::string(70, 'a')), std::string(70, 'a'));
}

TEST(StateMachine, Rfc1939ConversationTable) {
  const Script scripts[] = {
      {"rfc1939_s4_greeting_then_quit", tls_options(),
       {{"QUIT", "+OK hikyaku POP3 server signing off\r\n"}}},
      {"rfc1939_s7_user_pass_stat_list_uidl", tls_options(),
       {{"USER alice", "+OK send PASS\r\n"},
        {"PASS wonderland", "+OK maildrop has 3 messages (81 octets)\r\n"},
        {"STAT", "+OK 3 81\r\n"},
        {"LIST", "+OK scan listing follows\r\n1 23\r\n2 33\r\n3 25\r\n.\r\n"},
        {"LIST 2", "+OK 2 33\r\n"},
        {"LIST 4", "-ERR no such message\r\n"},
        {"LIST 0", "-ERR invalid message number\r\n"},
        {"UIDL", "+OK unique-id listing follows\r\n1 1700000000.M1P1.host\r\n"
                 "2 1700000001.M2P1.host\r\n3 1700000002.M3P1.host\r\n.\r\n"},
        {"UIDL 3", "+OK 3 1700000002.M3P1.host\r\n"},
        {"NOOP", "+OK\r\n"}}},
      {"rfc1939_s5_retr_lf_file_crlf_and_stuffed", tls_options(),
       {{"USER alice", "+OK*"},
        {"PASS wonderland", "+OK*"},
        {"RETR 2", "+OK 33 octets\r\nSubject: two\r\n\r\n..hidden\r\nsecond\r\n.\r\n"},
        {"RETR 1", "+OK 23 octets\r\nSubject: one\r\n\r\nfirst\r\n.\r\n"},
        {"RETR", "-ERR syntax: RETR msg\r\n"}}},
      {"rfc1939_s7_top_huge_count_fetchmail", tls_options(),
       {{"USER alice", "+OK*"},
        {"PASS wonderland", "+OK*"},
        {"TOP 1 99999999", "+OK top of message follows\r\nSubject: one\r\n\r\nfirst\r\n.\r\n"},
        {"TOP 1 0", "+OK top of message follows\r\nSubject: one\r\n\r\n.\r\n"},
        {"TOP 1", "-ERR syntax: TOP msg n\r\n"},
        {"TOP 1 -1", "-ERR invalid line count\r\n"}}},
      {"rfc1939_s5_dele_rset", tls_options(),
       {{"USER alice", "+OK*"},
        {"PASS wonderland", "+OK*"},
        {"DELE 1", "+OK message 1 deleted\r\n"},
        {"DELE 1", "-ERR message 1 already deleted\r\n"},
        {"RETR 1", "-ERR message 1 already deleted\r\n"},
        {"STAT", "+OK 2 58\r\n"},
        {"LIST", "+OK scan listing follows\r\n2 33\r\n3 25\r\n.\r\n"},
        {"RSET", "+OK maildrop has 3 messages (81 octets)\r\n"},
        {"STAT", "+OK 3 81\r\n"}}},
      {"rfc1939_s4_transaction_commands_need_login", tls_options(),
       {{"STAT", "-ERR not logged in\r\n"},
        {"PASS x", "-ERR send USER first\r\n"},
        {"APOP alice 0123", "-ERR APOP is not supported\r\n"}}},
      {"rfc1939_s4_auth_commands_invalid_after_login", tls_options(),
       {{"USER alice", "+OK*"},
        {"PASS wonderland", "+OK*"},
        {"USER bob", "-ERR command not valid in this state\r\n"},
        {"STLS", "-ERR command not valid in this state\r\n"}}},
      {"rfc3206_s4_bad_password_auth_code", tls_options(),
       {{"USER alice", "+OK*"},
        {"PASS nope", "-ERR [AUTH] authentication failed\r\n"},
        {"USER nobody", "+OK*"},
        {"PASS wonderland", "-ERR [AUTH] authentication failed\r\n"},
        {"USER alice", "+OK*"},
        {"PASS wrong", "-ERR [AUTH] authentication failed, closing connection\r\n"}}},
      {"rfc1939_s7_pass_keeps_spaces", tls_options(),
       {{"USER bob", "+OK*"}, {"PASS builder", "+OK maildrop*"}}},
      {"rfc2595_s2_plaintext_refused_without_tls", Options{.tls_available = true},
       {{"USER alice", "-ERR [AUTH] Plaintext authentication disallowed on a non-TLS connection, use STLS\r\n"},
        {"PASS wonderland", "-ERR send USER first\r\n"},
        {"AUTH PLAIN " + b64("\0alice\0wonderland"s), "-ERR [AUTH] Plaintext*"}}},
      {"rfc2449_capa_without_tls_hides_user", Options{.tls_available = true},
       {{"CAPA", "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                 "PIPELINING\r\nSTLS\r\nIMPLEMENTATION hikyaku\r\n.\r\n"}}},
      {"rfc2449_capa_with_tls", tls_options(),
       {{"CAPA", "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                 "PIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION hikyaku\r\n.\r\n"}}},
      {"rfc2449_capa_plaintext_allowed_no_tls", Options{.allow_plaintext = true},
       {{"CAPA", "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                 "PIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION hikyaku\r\n.\r\n"},
        {"STLS", "-ERR STLS is not available\r\n"},
        {"USER alice", "+OK send PASS\r\n"},
        {"PASS wonderland", "+OK*"},
        {"CAPA", "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                 "PIPELINING\r\nIMPLEMENTATION hikyaku\r\n.\r\n"}}},
      {"rfc5034_s4_auth_plain_initial_response", tls_options(),
       {{"AUTH PLAIN " + b64("\0alice\0wonderland"s), "+OK maildrop has 3*"}}},
      {"rfc5034_s4_auth_plain_continuation", tls_options(),
       {{"AUTH PLAIN", "+ \r\n"}, {b64("alice\0alice\0wonderland"s), "+OK maildrop*"}}},
      {"rfc5034_s4_auth_plain_cancel", tls_options(),
       {{"AUTH PLAIN", "+ \r\n"}, {"*", "-ERR authentication cancelled\r\n"},
        {"NOOP", "-ERR not logged in\r\n"}}},
      {"rfc5034_s4_auth_plain_bad_base64", tls_options(),
       {{"AUTH PLAIN", "+ \r\n"}, {"@@@", "-ERR [AUTH] malformed PLAIN response\r\n"}}},
      {"rfc4616_s2_authzid_other_user_refused", tls_options(),
       {{"AUTH PLAIN " + b64("bob\0alice\0wonderland"s), "-ERR [AUTH] authentication failed\r\n"}}},
      {"rfc5034_auth_plain_wrong_password", tls_options(),
       {{"AUTH PLAIN " + b64("\0alice\0nope"s), "-ERR [AUTH] authentication failed\r\n"}}},
      {"rfc5034_auth_login", tls_options(),
       {{"AUTH LOGIN", "+ VXNlcm5hbWU6\r\n"},
        {b64("alice"), "+ UGFzc3dvcmQ6\r\n"},
        {b64("wonderland"), "+OK maildrop*"}}},
      {"rfc5034_auth_unknown_mechanism", tls_options(),
       {{"AUTH CRAM-MD5", "-ERR unsupported authentication mechanism\r\n"},
        {"AUTH", "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"}}},
      {"rfc2595_s4_stls", Options{.tls_available = true},
       {{"USER alice", "-ERR [AUTH]*"},
        {"STLS", "+OK begin TLS negotiation\r\n"},
        {"STLS", "-ERR TLS is already active\r\n"},
        {"CAPA", "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                 "PIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION hikyaku\r\n.\r\n"},
        {"USER alice", "+OK send PASS\r\n"},
        {"PASS wonderland", "+OK*"}}},
      {"rfc2595_s4_stls_unavailable", Options{},
       {{"STLS", "-ERR STLS is not available\r\n"}}},
      {"rfc1939_s3_unknown_commands_hang_up", Options{.max_errors = 3},
       {{"FOO", "-ERR unknown command\r\n"},
        {"BAR", "-ERR unknown command\r\n"},
        {"BAZ", "-ERR too many errors, closing connection\r\n"}}},
  };
  for (const auto& s : scripts) {
    Fake fake;
    run_script(s, fake);
  }
}

TEST(StateMachine, Rfc1939Section6DeletionsOnlyInUpdate) {
  Fake fake;
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  send(sm, fake, "PASS wonderland");
  send(sm, fake, "DELE 1");
  send(sm, fake, "DELE 3");
  EXPECT_TRUE(fake.removed.empty());
  EXPECT_EQ(sm.state(), State::transaction);
  auto a = sm.on_line("QUIT");
  ASSERT_EQ(a.kind, Action::Kind::update);
  EXPECT_EQ(a.deletions, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(sm.state(), State::update);
  a = sm.update_done(true);
  EXPECT_EQ(a.kind, Action::Kind::close);
  EXPECT_EQ(a.reply, "+OK hikyaku POP3 server signing off (1 messages left)\r\n");
  EXPECT_EQ(sm.state(), State::closed);
}

TEST(StateMachine, Rfc1939Section6UpdateFailureIsErr) {
  Fake fake;
  fake.remove_fails = true;
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  send(sm, fake, "PASS wonderland");
  send(sm, fake, "DELE 2");
  EXPECT_EQ(send(sm, fake, "QUIT"), "-ERR [SYS/TEMP] some deleted messages not removed\r\n");
}

TEST(StateMachine, Rfc1939Section6QuitWithoutDeletionsSkipsUpdate) {
  Fake fake;
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  send(sm, fake, "PASS wonderland");
  send(sm, fake, "DELE 2");
  send(sm, fake, "RSET");
  auto a = sm.on_line("QUIT");
  EXPECT_EQ(a.kind, Action::Kind::close);
  EXPECT_EQ(a.reply, "+OK hikyaku POP3 server signing off (3 messages left)\r\n");
}

TEST(StateMachine, Rfc2449Section8InUseAndSysTemp) {
  Fake fake;
  fake.locked.insert("alice");
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  EXPECT_EQ(send(sm, fake, "PASS wonderland"),
            "-ERR [IN-USE] maildrop is locked by another session\r\n");
  EXPECT_EQ(sm.state(), State::authorization);

  StateMachine sm2(tls_options());
  sm2.on_line("USER bob");
  auto a = sm2.on_line("PASS builder");
  ASSERT_EQ(a.kind, Action::Kind::authenticate);
  EXPECT_EQ(sm2.login_result(LoginOutcome::unavailable).reply,
            "-ERR [SYS/TEMP] maildrop is unavailable, try again later\r\n");
}

TEST(StateMachine, AuthenticateActionCarriesCredentialsNotReplies) {
  StateMachine sm(tls_options());
  sm.on_line("USER alice");
  auto a = sm.on_line("PASS secret with  spaces");
  ASSERT_EQ(a.kind, Action::Kind::authenticate);
  EXPECT_EQ(a.user, "alice");
  EXPECT_EQ(a.password, "secret with  spaces");  // RFC 1939 §7
  EXPECT_EQ(a.mechanism, "USER");
  EXPECT_TRUE(a.reply.empty());
  auto done = sm.login_result(LoginOutcome::ok, {});
  EXPECT_EQ(done.reply, "+OK maildrop has 0 messages (0 octets)\r\n");
  EXPECT_EQ(sm.user(), "alice");
}

TEST(StateMachine, UnreadableMessageIsSysTemp) {
  Fake fake;
  fake.unreadable = true;
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  send(sm, fake, "PASS wonderland");
  EXPECT_EQ(send(sm, fake, "RETR 1"), "-ERR [SYS/TEMP] message could not be read\r\n");
}

// A message removed by another program after login: a plain -ERR, not
// [SYS/TEMP] (a retry cannot find it); the session goes on.
TEST(StateMachine, AMessageRemovedSinceLoginIsNoTemporaryFailure) {
  Fake fake;
  fake.gone = true;
  StateMachine sm(tls_options());
  send(sm, fake, "USER alice");
  send(sm, fake, "PASS wonderland");
  EXPECT_EQ(send(sm, fake, "RETR 1"), "-ERR message was removed by another program since login\r\n");
  EXPECT_EQ(send(sm, fake, "NOOP"), "+OK\r\n");
}

TEST(StateMachine, LineTooLongCountsAsErrorAndCancelsSasl) {
  StateMachine sm(tls_options());
  auto a = sm.on_line("AUTH PLAIN");
  EXPECT_EQ(a.reply, "+ \r\n");
  EXPECT_EQ(sm.line_too_long().reply, "-ERR line too long\r\n");
  EXPECT_EQ(sm.on_line("NOOP").reply, "-ERR not logged in\r\n");
}

}  // namespace
}  // namespace hikyaku::pop3::protocol
