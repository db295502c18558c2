// Unit tests for the sans-I/O SMTP protocol: command parsing, DATA framing
// (including every SMTP smuggling sequence of ../shared/testdata/smtp-smuggling),
// replies and the Received field. Case names carry the RFC section (STYLE R13).
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "mail/message.hpp"
#include "smtp/protocol/command.hpp"
#include "smtp/protocol/data_reader.hpp"
#include "smtp/protocol/received.hpp"
#include "smtp/protocol/replies.hpp"

namespace hikyaku::smtp::protocol {
namespace {

// ---------------------------------------------------------------- commands

struct CommandCase {
  std::string name;
  std::string line;
  Verb verb;          // expected verb when ok
  int code;           // 0 when the parse must succeed, else the error code
  std::string status; // expected enhanced status on error
};

TEST(ParseCommand, Table) {
  const std::vector<CommandCase> cases = {
      {"RFC5321_4_1_1_1_ehlo", "EHLO client.example", Verb::ehlo, 0, ""},
      {"RFC5321_4_1_1_1_ehlo_lowercase", "ehlo client.example", Verb::ehlo, 0, ""},
      {"RFC5321_4_1_1_1_ehlo_literal", "EHLO [192.0.2.1]", Verb::ehlo, 0, ""},
      {"RFC5321_4_1_1_1_ehlo_missing_domain", "EHLO", Verb::ehlo, 501, "5.5.4"},
      {"RFC5321_4_1_1_1_helo", "HELO client", Verb::helo, 0, ""},
      {"RFC5321_4_1_1_1_helo_missing", "HELO   ", Verb::helo, 501, "5.5.4"},
      {"RFC5321_4_1_1_2_mail", "MAIL FROM:<a@b.example>", Verb::mail, 0, ""},
      {"RFC5321_4_1_1_2_mail_null_path", "MAIL FROM:<>", Verb::mail, 0, ""},
      {"RFC5321_4_1_1_2_mail_space_after_colon", "MAIL FROM: <a@b.example>", Verb::mail, 0, ""},
      {"RFC5321_4_1_1_2_mail_case", "mail from:<a@b.example>", Verb::mail, 0, ""},
      {"RFC5321_4_1_1_2_mail_no_from", "MAIL <a@b.example>", Verb::mail, 501, "5.5.4"},
      {"RFC5321_4_1_1_2_mail_no_brackets", "MAIL FROM:a@b.example", Verb::mail, 501, "5.1.7"},
      {"RFC5321_4_1_1_2_mail_bad_address", "MAIL FROM:<a@@b>", Verb::mail, 501, "5.1.7"},
      {"RFC5321_4_1_1_2_mail_junk_after_path", "MAIL FROM:<a@b.example>x", Verb::mail, 501, "5.5.4"},
      {"RFC1870_6_size", "MAIL FROM:<a@b.example> SIZE=1000", Verb::mail, 0, ""},
      {"RFC1870_6_size_bad", "MAIL FROM:<a@b.example> SIZE=abc", Verb::mail, 501, "5.5.4"},
      {"RFC1870_6_size_no_value", "MAIL FROM:<a@b.example> SIZE", Verb::mail, 501, "5.5.4"},
      {"RFC6152_2_body_8bitmime", "MAIL FROM:<a@b.example> BODY=8BITMIME", Verb::mail, 0, ""},
      {"RFC6152_2_body_7bit", "MAIL FROM:<a@b.example> BODY=7bit", Verb::mail, 0, ""},
      {"RFC3030_binarymime_not_offered", "MAIL FROM:<a@b.example> BODY=BINARYMIME", Verb::mail, 555, "5.5.4"},
      {"RFC6531_3_4_smtputf8", "MAIL FROM:<δοκιμή@παράδειγμα.example> SMTPUTF8", Verb::mail, 0, ""},
      {"RFC6531_3_4_smtputf8_with_value", "MAIL FROM:<a@b.example> SMTPUTF8=yes", Verb::mail, 501, "5.5.4"},
      {"RFC5321_4_1_1_11_unknown_param", "MAIL FROM:<a@b.example> RET=FULL", Verb::mail, 555, "5.5.4"},
      {"RFC4954_5_auth_param", "MAIL FROM:<a@b.example> AUTH=<>", Verb::mail, 0, ""},
      {"RFC4954_5_auth_param_xtext", "MAIL FROM:<a@b.example> AUTH=a+2Bb@b.example", Verb::mail, 0, ""},
      {"RFC4954_5_auth_param_empty", "MAIL FROM:<a@b.example> AUTH=", Verb::mail, 501, "5.5.4"},
      {"RFC4954_5_auth_param_twice", "MAIL FROM:<a@b.example> AUTH=<> AUTH=<>", Verb::mail, 501, "5.5.4"},
      {"RFC5321_4_1_1_3_rcpt", "RCPT TO:<alice@example.test>", Verb::rcpt, 0, ""},
      {"RFC5321_4_1_1_3_rcpt_postmaster", "RCPT TO:<Postmaster>", Verb::rcpt, 0, ""},
      {"RFC5321_4_1_1_3_rcpt_null_refused", "RCPT TO:<>", Verb::rcpt, 501, "5.1.3"},
      {"RFC5321_4_1_1_3_rcpt_no_to", "RCPT alice@example.test", Verb::rcpt, 501, "5.5.4"},
      {"RFC5321_4_1_1_3_rcpt_param", "RCPT TO:<alice@example.test> NOTIFY=NEVER", Verb::rcpt, 555, "5.5.4"},
      {"RFC5321_4_1_1_3_source_route_ignored", "RCPT TO:<@relay.example:alice@example.test>", Verb::rcpt, 0, ""},
      {"RFC5321_4_1_1_4_data", "DATA", Verb::data, 0, ""},
      {"RFC5321_4_1_1_4_data_args", "DATA now", Verb::data, 501, "5.5.4"},
      {"RFC5321_4_1_1_5_rset", "RSET", Verb::rset, 0, ""},
      {"RFC5321_4_1_1_9_noop_with_arg", "NOOP hello", Verb::noop, 0, ""},
      {"RFC5321_4_1_1_10_quit", "QUIT", Verb::quit, 0, ""},
      {"RFC5321_4_1_1_6_vrfy", "VRFY alice", Verb::vrfy, 0, ""},
      {"RFC5321_4_1_1_6_vrfy_missing", "VRFY", Verb::vrfy, 501, "5.5.4"},
      {"RFC5321_4_1_1_8_help", "HELP", Verb::help, 0, ""},
      {"RFC3207_4_starttls", "STARTTLS", Verb::starttls, 0, ""},
      {"RFC3207_4_starttls_args", "STARTTLS now", Verb::starttls, 501, "5.5.4"},
      {"RFC5321_4_2_4_unknown_verb", "XYZZY", Verb::unknown, 500, "5.5.2"},
      {"RFC5321_4_2_4_empty_line", "", Verb::unknown, 500, "5.5.2"},
      {"RFC5321_4_2_4_http_post", "POST / HTTP/1.1", Verb::unknown, 500, "5.5.2"},
      {"RFC5321_2_3_8_control_char", std::string("MAIL FROM:<a@b>\x01", 16), Verb::mail, 501, "5.5.2"},
      {"RFC5321_2_3_8_nul", std::string("NOOP \0", 6), Verb::noop, 501, "5.5.2"},
  };
  for (const auto& c : cases) {
    auto got = parse_command(c.line);
    if (c.code == 0) {
      ASSERT_TRUE(got.ok()) << c.name << ": got " << got.error.summary() << ", want success";
      EXPECT_EQ(got.command->verb, c.verb) << c.name;
    } else {
      ASSERT_FALSE(got.ok()) << c.name << ": got success, want " << c.code;
      EXPECT_EQ(got.error.code, c.code) << c.name << ": got " << got.error.summary();
      EXPECT_EQ(got.error.status, c.status) << c.name << ": got " << got.error.summary();
    }
  }
}

TEST(ParseCommand, MailParametersAreParsed_RFC1870_RFC6152_RFC6531) {
  auto got = parse_command("MAIL FROM:<Joe@B.Example> SIZE=12345 BODY=8BITMIME SMTPUTF8");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got.command->path.has_value());
  EXPECT_EQ(got.command->path->local, "Joe");       // RFC 5321 §2.4: local part case kept
  EXPECT_EQ(got.command->path->domain, "b.example");
  EXPECT_EQ(got.command->params.size, 12345u);
  EXPECT_EQ(got.command->params.body, BodyType::eight_bit_mime);
  EXPECT_TRUE(got.command->params.smtputf8);
}

TEST(ParseCommand, NullReversePath_RFC5321_4_5_5) {
  auto got = parse_command("MAIL FROM:<>");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got.command->path.has_value());
}

TEST(ParseCommand, DuplicateParameterRefused_RFC5321_4_1_2) {
  auto got = parse_command("MAIL FROM:<a@b.example> SIZE=1 SIZE=2");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error.code, 501);
}

TEST(ParseCommand, Utf8PathIsMarked_RFC6531_3_4) {
  auto got = parse_command("RCPT TO:<пользователь@example.test>");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got.command->path->has_utf8());
}

TEST(ParseCommand, EhloArgumentIsFirstWord_RFC5321_4_1_1_1) {
  auto got = parse_command("EHLO   client.example   extra");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.command->argument, "client.example");
}

// ---------------------------------------------------------------- DATA

struct DataCase {
  std::string name;
  std::string input;         // bytes after the 354
  bool done;
  DataReader::Outcome outcome;
  std::string message;       // expected message when ok
  std::string rest;          // bytes left for the next commands
};

TEST(DataReader, Table) {
  using O = DataReader::Outcome;
  const std::vector<DataCase> cases = {
      {"RFC5321_4_1_1_4_simple", "Subject: x\r\n\r\nbody\r\n.\r\n", true, O::ok, "Subject: x\r\n\r\nbody\r\n", ""},
      {"RFC5321_4_1_1_4_empty_message", ".\r\n", true, O::ok, "", ""},
      {"RFC5321_4_1_1_4_no_end_yet", "a\r\nb\r\n", false, O::ok, "", ""},
      {"RFC5321_4_1_1_4_dot_needs_crlf", "a\r\n.", false, O::ok, "", ""},
      {"RFC5321_4_5_2_dot_unstuffing", "..a\r\n..\r\n.b\r\n.\r\n", true, O::ok, ".a\r\n.\r\nb\r\n", ""},
      {"RFC2920_3_1_pipelined_after_end", "x\r\n.\r\nMAIL FROM:<>\r\nRCPT", true, O::ok, "x\r\n",
       "MAIL FROM:<>\r\nRCPT"},
      {"RFC5321_2_3_8_bare_lf_refused", "a\nb\r\n.\r\n", true, O::bare_lf, "", ""},
      {"RFC5321_2_3_8_bare_cr_refused", "a\rb\r\n.\r\n", true, O::bare_cr, "", ""},
      {"RFC5321_2_3_8_lf_dot_lf_is_not_end", "a\n.\nQUIT\r\n.\r\nNOOP\r\n", true, O::bare_lf, "", "NOOP\r\n"},
      {"RFC5321_2_3_8_trailing_bare_lf_at_end", "a\r\n.\n\r\n.\r\n", true, O::bare_lf, "", ""},
      {"RFC5321_6_3_received_within_limit", "Received: a\r\nReceived: b\r\n\r\nx\r\n.\r\n", true, O::ok,
       "Received: a\r\nReceived: b\r\n\r\nx\r\n", ""},
      {"RFC5321_6_3_received_in_body_not_counted",
       "Subject: x\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n.\r\n", true, O::ok,
       "Subject: x\r\n\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n", ""},
      {"RFC5321_6_3_received_over_limit",
       "Received: a\r\nreceived : b\r\nRECEIVED: c\r\n\r\nx\r\n.\r\n", true, O::too_many_hops, "", ""},
      {"RFC1870_size_over_limit", std::string(100, 'x') + "\r\n.\r\nQUIT\r\n", true, O::too_big, "", "QUIT\r\n"},
      {"RFC6152_8bit_data_ok", "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n\xff\xfe\r\n.\r\n", true, O::ok,
       "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n\xff\xfe\r\n", ""},
  };
  for (const auto& c : cases) {
    DataReader r({.max_size = 80, .max_received = 2});
    size_t used = r.feed(c.input);
    EXPECT_EQ(r.done(), c.done) << c.name;
    if (!c.done) continue;
    EXPECT_EQ(r.outcome(), c.outcome) << c.name << ": got " << DataReader::outcome_name(r.outcome());
    EXPECT_EQ(c.input.substr(used), c.rest) << c.name;
    if (c.outcome == O::ok) {
      EXPECT_EQ(r.take_message(), c.message) << c.name;
    }
  }
}

TEST(DataReader, OurReceivedPrefixIsNotTheClients_RFC5321_4_4) {
  // The session's own Received field starts the buffer: it counts toward
  // neither the size limit nor the hop count, and the client's header
  // is still checked as if it came first.
  const std::string ours = "Received: from c by mx; Thu, 1 Jan 2026 00:00:00 +0000\r\n";
  const std::string theirs = "Received: from a by b\r\nReceived: from d by e\r\n\r\nbody\r\n";
  DataReader r({.max_size = theirs.size(), .max_received = 2, .size_hint = theirs.size()}, ours);
  r.feed(theirs + ".\r\n");
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.outcome(), DataReader::Outcome::ok) << DataReader::outcome_name(r.outcome());
  EXPECT_EQ(r.size(), theirs.size());
  std::string message = r.take_message();
  EXPECT_EQ(message, ours + theirs);
  // The declared size was reserved, with room for fields inserted later.
  EXPECT_GE(message.capacity(), ours.size() + theirs.size() + DataReader::kHeadroom);
}

TEST(DataReader, DeclaredSizeIsReservedOnlyUpToTheLimit_RFC1870) {
  DataReader r({.max_size = 1000, .max_received = 2, .size_hint = uint64_t{1} << 40});
  r.feed("a: b\r\n\r\n.\r\n");
  ASSERT_TRUE(r.done());
  EXPECT_LT(r.take_message().capacity(), 1000u + DataReader::kHeadroom + 64);
}

TEST(DataReader, ByteAtATimeGivesSameResult_RFC5321_4_1_1_4) {
  std::string input = "A: b\r\n\r\n..x\r\nline\r\n.\r\nQUIT\r\n";
  DataReader whole({.max_size = 1000, .max_received = 5});
  size_t used = whole.feed(input);
  DataReader bytes({.max_size = 1000, .max_received = 5});
  size_t i = 0;
  while (!bytes.done() && i < input.size()) i += bytes.feed(std::string_view(input).substr(i, 1));
  EXPECT_EQ(i, used);
  EXPECT_EQ(bytes.take_message(), whole.take_message());
}

TEST(DataReader, ErrorReplies_RFC3463) {
  struct C { std::string input; int code; std::string status; };
  for (const auto& c : std::vector<C>{{"a\nb\r\n.\r\n", 550, "5.5.2"},
                                      {"a\rb\r\n.\r\n", 550, "5.5.2"},
                                      {std::string(100, 'x') + "\r\n.\r\n", 552, "5.3.4"},
                                      {"Received: a\r\nReceived: a\r\nReceived: a\r\n\r\n.\r\n", 554, "5.4.6"}}) {
    DataReader r({.max_size = 64, .max_received = 2});
    r.feed(c.input);
    ASSERT_TRUE(r.done());
    EXPECT_EQ(r.reply().code, c.code) << c.input;
    EXPECT_EQ(r.reply().status, c.status) << c.input;
  }
}

TEST(DataReader, OversizeKeepsMemoryBounded_RFC5321_4_5_3_1_7) {
  DataReader r({.max_size = 1024, .max_received = 50});
  std::string chunk(4096, 'y');
  chunk += "\r\n";
  for (int i = 0; i < 100; ++i) r.feed(chunk);
  EXPECT_FALSE(r.done());
  r.feed(".\r\n");
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.outcome(), DataReader::Outcome::too_big);
  EXPECT_TRUE(r.take_message().empty());
}

// Every malformed end-of-data sequence of the shared smuggling suite, placed
// as the suite's injection template describes, must leave ONE message that
// ends at the real <CRLF>.<CRLF>: it is refused (bare CR/LF) or, for the
// sequences that are valid CRLF text, kept inside the message; the bytes of
// the smuggled transaction are never left over as commands.
struct SmuggleVector {
  std::string id;
  std::string eod;
};

std::vector<SmuggleVector> load_smuggling_vectors() {
  std::ifstream in(std::string(HIKYAKU_TESTDATA_DIR) + "/smtp-smuggling/eod-sequences.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<SmuggleVector> out;
  std::regex re(R"re("id":\s*"([^"]+)",\s*"eod":\s*"[^"]*",\s*"hex":\s*"([0-9a-f]+)")re");
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    std::string hex = (*it)[2].str(), bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    out.push_back({(*it)[1].str(), bytes});
  }
  return out;
}

TEST(DataReader, SmugglingSequencesNeverEndData_RFC5321_4_1_1_4_SmtpSmuggling) {
  auto vectors = load_smuggling_vectors();
  ASSERT_EQ(vectors.size(), 11u) << "eod-sequences.json not found or changed";
  const std::string before = "From: test@sender.example\r\nTo: alice@example.test\r\nSubject: outer\r\n\r\nouter body";
  const std::string after =
      "MAIL FROM:<smuggled@sender.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
      "From: smuggled@sender.example\r\nTo: alice@example.test\r\nSubject: SMUGGLED\r\n\r\nsmuggled body\r\n.\r\n";
  for (const auto& v : vectors) {
    std::string input = before + v.eod + after + "QUIT\r\n";
    // Whole buffer and byte by byte (sequences split across reads).
    for (bool bytewise : {false, true}) {
      DataReader r({.max_size = 1 << 20, .max_received = 50});
      size_t used = 0;
      if (bytewise) {
        while (!r.done() && used < input.size()) used += r.feed(std::string_view(input).substr(used, 1));
      } else {
        used = r.feed(input);
      }
      ASSERT_TRUE(r.done()) << v.id;
      // The data ends at the real end: only QUIT is left for the command loop.
      EXPECT_EQ(input.substr(used), "QUIT\r\n") << v.id << (bytewise ? " bytewise" : "");
      if (r.outcome() == DataReader::Outcome::ok) {
        // Only a CRLF-clean sequence may be accepted, and then as one message
        // that contains the smuggled text as body.
        std::string msg = r.take_message();
        EXPECT_NE(msg.find("Subject: SMUGGLED"), std::string::npos) << v.id;
        EXPECT_EQ(v.id, "crlf-nul-dot-crlf") << "only the NUL variant is CRLF-clean";
      } else {
        EXPECT_EQ(r.reply().code, 550) << v.id;
        EXPECT_EQ(r.reply().status, "5.5.2") << v.id;
      }
    }
  }
}

// ---------------------------------------------------------------- replies

TEST(Replies, WireForms_RFC5321_4_2_RFC2034) {
  EXPECT_EQ(reply::greeting("mx.example.test").wire(), "220 mx.example.test ESMTP hikyaku\r\n");
  EXPECT_EQ(reply::unknown_user().wire(), "550 5.1.1 Recipient address rejected: User unknown\r\n");
  EXPECT_EQ(reply::unknown_user().wire(false), "550 Recipient address rejected: User unknown\r\n");
  EXPECT_EQ(reply::ehlo("mx", {"PIPELINING", "8BITMIME"}).wire(), "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
  EXPECT_EQ(reply::queued("Q1").wire(), "250 2.0.0 Ok: queued as Q1\r\n");
  EXPECT_EQ(reply::timeout().code, 421);
  EXPECT_EQ(reply::timeout().status, "4.4.2");
  EXPECT_EQ(reply::too_many_recipients().status, "4.5.3");
  EXPECT_EQ(reply::relay_denied().code, 554);
  EXPECT_EQ(reply::relay_denied().status, "5.7.1");
}

// ---------------------------------------------------------------- Received

TEST(Received, Format_RFC5321_4_4) {
  ReceivedInfo info;
  info.helo = "client.example";
  info.client_ip = "192.0.2.1";
  info.hostname = "mx.example.test";
  info.id = "S1.1";
  info.for_recipient = "alice@example.test";
  info.when = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));  // 2026-01-01
  EXPECT_EQ(received_header(info),
            "Received: from client.example ([192.0.2.1])\r\n"
            "\tby mx.example.test (hikyaku) with ESMTP id S1.1\r\n"
            "\tfor <alice@example.test>; Thu, 01 Jan 2026 00:00:00 +0000\r\n");
}

// The TLS clause as Postfix writes it (issue 13 item 6): version, cipher and
// bits, on a folded line of its own, inside one comment.
TEST(Received, TlsVersionAndCipher_RFC3848) {
  ReceivedInfo info;
  info.helo = "client.example";
  info.client_ip = "192.0.2.1";
  info.hostname = "mx.example.test";
  info.id = "S1.1";
  info.tls = true;
  info.tls_version = "TLSv1.3";
  info.tls_cipher = "TLS_AES_256_GCM_SHA384";
  info.tls_secret_bits = 256;
  info.tls_algorithm_bits = 256;
  info.for_recipient = "alice@example.test";
  info.when = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));
  EXPECT_EQ(received_header(info),
            "Received: from client.example ([192.0.2.1])\r\n"
            "\tby mx.example.test (hikyaku)\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) with ESMTPS id S1.1\r\n"
            "\tfor <alice@example.test>; Thu, 01 Jan 2026 00:00:00 +0000\r\n");
  // Unknown bits: no "(0/0 bits)".
  info.tls_secret_bits = 0;
  EXPECT_NE(received_header(info).find("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384) with ESMTPS"),
            std::string::npos)
      << received_header(info);
}

// Whatever the names hold, the clause stays one comment of printable ASCII
// (RFC 5322 §3.2.2: "(", ")" and "\\" would end or escape it).
TEST(Received, TlsNamesAreSanitised_RFC5322_3_2_2) {
  ReceivedInfo info;
  info.client_ip = "192.0.2.1";
  info.hostname = "mx";
  info.id = "x";
  info.tls = true;
  info.tls_version = "TLS)\r\nX-Injected: 1";
  info.tls_cipher = "A(B\\C;D";
  const auto h = received_header(info);
  EXPECT_EQ(h.find("X-Injected: 1\r\n"), std::string::npos) << h;
  EXPECT_NE(h.find("(using TLS???X-Injected:?1 with cipher A?B?C?D) with ESMTPS"), std::string::npos) << h;
  for (char c : h) EXPECT_TRUE(c == '\r' || c == '\n' || c == '\t' || (c >= 32 && c < 127)) << int(c);
}

// Submitted mail: no "from" clause, so neither the client's address nor
// its HELO reaches the recipient (issue 13: [auth] reveal_client = false).
TEST(Received, SubmittedMailHidesTheClient_RFC3848) {
  ReceivedInfo info;
  info.helo = "laptop.home";
  info.client_ip = "192.0.2.1";
  info.hostname = "mx.example.test";
  info.id = "S1.1";
  info.tls = true;
  info.authenticated = true;
  info.hide_client = true;
  info.when = std::chrono::system_clock::time_point(std::chrono::seconds(1767225600));
  EXPECT_EQ(received_header(info),
            "Received: by mx.example.test (hikyaku) with ESMTPSA id S1.1\r\n"
            "\t; Thu, 01 Jan 2026 00:00:00 +0000\r\n");
}

TEST(Received, ProtocolNames_RFC3848_RFC6531_3_7_3) {
  ReceivedInfo i;
  EXPECT_EQ(with_protocol(i), "ESMTP");
  i.tls = true;
  EXPECT_EQ(with_protocol(i), "ESMTPS");
  i.authenticated = true;
  EXPECT_EQ(with_protocol(i), "ESMTPSA");
  i.smtputf8 = true;
  EXPECT_EQ(with_protocol(i), "UTF8SMTPSA");
  i.esmtp = false;
  EXPECT_EQ(with_protocol(i), "SMTP");
}

TEST(Received, HeloIsSanitised_RFC5322_3_2_2) {
  ReceivedInfo info;
  info.helo = "evil)\r\nX-Injected: 1";
  info.client_ip = "2001:db8::1";
  info.hostname = "mx";
  info.id = "x";
  auto h = received_header(info);
  EXPECT_EQ(h.find("X-Injected: 1\r\n"), std::string::npos);
  EXPECT_NE(h.find("[IPv6:2001:db8::1]"), std::string::npos);
}

// Issue 12 item 6: with spilling, the body leaves the reader in pieces as
// it arrives; what stays is the header section. Fed byte by byte or in one
// piece, the header section plus every piece handed out is the message.
TEST(DataReader, SpillingHandsOutTheBodyAndKeepsTheHeaderSection) {
  std::string body;
  for (int i = 0; body.size() < 5000; ++i) body += (i % 7 == 0 ? ".." : "") + std::string("line ") + std::to_string(i) + "\r\n";
  std::string unstuffed;
  for (size_t pos = 0; pos < body.size();) {
    size_t end = body.find("\r\n", pos) + 2;
    std::string_view line = std::string_view(body).substr(pos, end - pos);
    unstuffed += line.starts_with("..") ? line.substr(1) : line;
    pos = end;
  }
  const std::string head = "Subject: big\r\nFrom: a@b.test\r\n\r\n";
  const std::string input = head + body + ".\r\n";
  for (size_t step : {size_t{1}, size_t{13}, input.size()}) {
    DataReader r({.max_size = 100000, .max_received = 2, .spill_at = 100}, "Received: ours\r\n");
    std::string spilled;
    size_t max_held = 0;
    for (size_t at = 0; at < input.size() && !r.done(); at += step) {
      r.feed(std::string_view(input).substr(at, step));
      max_held = std::max(max_held, r.body_held().size());
      if (r.spill_due()) {
        spilled += r.body_held();
        r.forget_body_held();
      }
    }
    ASSERT_TRUE(r.done());
    EXPECT_EQ(r.outcome(), DataReader::Outcome::ok);
    spilled += r.body_held();
    r.forget_body_held();
    EXPECT_TRUE(r.spilled());
    EXPECT_LE(max_held, 100 + step + 16) << "at most spill_at octets of body are held, plus one piece";
    EXPECT_EQ(r.take_message(), "Received: ours\r\n" + head) << "step " << step;
    EXPECT_EQ(spilled, unstuffed) << "step " << step;
  }
}

// A message that never spills keeps working as before, and a header section
// past mail::kMaxHeaderSection is refused when spilling (552 5.3.4).
TEST(DataReader, SpillingLimitsTheHeaderSection_RFC5321_4_5_3_1_7) {
  DataReader small({.max_size = 100000, .max_received = 2, .spill_at = 1000});
  small.feed("Subject: x\r\n\r\nbody\r\n.\r\n");
  EXPECT_FALSE(small.spilled());
  EXPECT_EQ(small.take_message(), "Subject: x\r\n\r\nbody\r\n");

  DataReader r({.max_size = 10 * mail::kMaxHeaderSection, .max_received = 2, .spill_at = 1000});
  const std::string field = "X-Filler: " + std::string(990, 'f') + "\r\n";
  for (uint64_t n = 0; n <= mail::kMaxHeaderSection / field.size() + 1; ++n) r.feed(field);
  r.feed("\r\nbody\r\n.\r\nQUIT\r\n");
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.outcome(), DataReader::Outcome::header_too_big);
  EXPECT_EQ(r.reply().code, 552);
  EXPECT_EQ(r.reply().status, "5.3.4");
  EXPECT_TRUE(r.body_held().empty()) << "nothing is kept once refused";
}

}  // namespace
}  // namespace hikyaku::smtp::protocol
