// Unit tests of the sans-I/O scanning protocols: the JSON reader (RFC 8259),
// clamd INSTREAM framing and replies, rspamd's request and reply, and the
// verdict → SMTP decision (issue 17 item 1). Table-driven where it fits.
#include <gtest/gtest.h>

#include "scan/protocol/clamd.hpp"
#include "scan/protocol/json.hpp"
#include "scan/protocol/rspamd.hpp"
#include "scan/protocol/verdict.hpp"

namespace hikyaku::scan {
namespace {

TEST(Json, ParsesValuesRfc8259) {
  auto v = json::parse(R"( {"a": [1, -2.5e1, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "o": {}} )");
  ASSERT_TRUE(v.ok()) << v.error().message;
  const json::Array* a = v->get("a")->array();
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->size(), 5u);
  EXPECT_EQ(*(*a)[0].number(), 1);
  EXPECT_EQ(*(*a)[1].number(), -25);
  EXPECT_TRUE(*(*a)[2].boolean());
  EXPECT_FALSE(*(*a)[3].boolean());
  EXPECT_TRUE((*a)[4].is_null());
  EXPECT_EQ(*v->get("s")->string(), "x\"\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_NE(v->get("o")->object(), nullptr);
  EXPECT_EQ(v->get("missing"), nullptr);
}

TEST(Json, RefusesInvalidText) {
  struct Case {
    const char* name;
    std::string in;
  };
  const Case cases[] = {
      {"empty", ""},
      {"trailing data", "{} x"},
      {"unterminated string", "\"abc"},
      {"control character §7", "\"a\x01\""},
      {"bad escape", R"("\q")"},
      {"leading zero is one value then garbage §6", "01"},
      {"missing value", "{\"a\":}"},
      {"trailing comma", "[1,]"},
      {"bare word", "nope"},
      {"deep nesting", std::string(json::kMaxDepth + 2, '[') + std::string(json::kMaxDepth + 2, ']')},
  };
  for (const auto& c : cases) EXPECT_FALSE(json::parse(c.in).ok()) << c.name;
}

TEST(Json, LoneSurrogateBecomesReplacementCharacter) {
  auto v = json::parse(R"("\ud800x")");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v->string(), "\xEF\xBF\xBDx");
}

TEST(Clamd, ChunkHeaderIsBigEndianLength) {
  EXPECT_EQ(clamd::chunk_header(0), std::string(4, '\0'));
  EXPECT_EQ(clamd::chunk_header(0x01020304), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(clamd::kInstream.size(), 10u);
  EXPECT_EQ(clamd::kInstream.back(), '\0');
}

TEST(Clamd, Replies) {
  struct Case {
    const char* in;
    clamd::Reply::Kind kind;
    const char* detail;
  };
  const Case cases[] = {
      {"stream: OK\0", clamd::Reply::Kind::clean, ""},
      {"stream: OK\n", clamd::Reply::Kind::clean, ""},
      {"stream: Eicar-Signature FOUND", clamd::Reply::Kind::found, "Eicar-Signature"},
      {"stream: Hikyaku.Test.Malware.UNOFFICIAL FOUND\0", clamd::Reply::Kind::found,
       "Hikyaku.Test.Malware.UNOFFICIAL"},
      {"INSTREAM size limit exceeded. ERROR", clamd::Reply::Kind::error, "INSTREAM size limit exceeded. ERROR"},
      {"", clamd::Reply::Kind::error, "empty reply"},
      {"stream: something else", clamd::Reply::Kind::error, "stream: something else"},
  };
  for (const auto& c : cases) {
    auto r = clamd::parse_reply(c.in);
    EXPECT_EQ(r.kind, c.kind) << c.in;
    EXPECT_EQ(r.detail, c.detail) << c.in;
  }
}

TEST(Rspamd, RequestHeadCarriesTheEnvelopeWithoutControlCharacters) {
  rspamd::Request r;
  r.host = "127.0.0.1:11333";
  r.from = "a@example.org";
  r.rcpt = {"b@example.test", "c@example.test"};
  r.ip = "192.0.2.1";
  r.helo = "evil\r\nX-Injected: 1";
  r.content_length = 42;
  EXPECT_EQ(rspamd::request_head(r),
            "POST /checkv2 HTTP/1.1\r\nHost: 127.0.0.1:11333\r\nContent-Length: 42\r\nConnection: close\r\n"
            "From: a@example.org\r\nRcpt: b@example.test\r\nRcpt: c@example.test\r\nIP: 192.0.2.1\r\n"
            "Helo: evilX-Injected: 1\r\n\r\n");
}

TEST(Rspamd, ResponseByLengthChunkedAndToTheEnd) {
  auto a = rspamd::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xx");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->status, 200u);
  EXPECT_EQ(a->body, "{}");
  auto b = rspamd::parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3;x=y\r\na\":\r\n1\r\n1\r\n0\r\n\r\n");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->body, "{\"a\":1");
  auto c = rspamd::parse_response("HTTP/1.0 500 Oops\r\nServer: x\r\n\r\nbody");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, 500u);
  EXPECT_EQ(c->body, "body");
  EXPECT_FALSE(rspamd::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").ok());
  EXPECT_FALSE(rspamd::parse_response("SMTP 220 hello\r\n\r\n").ok());
  EXPECT_FALSE(rspamd::parse_response("HTTP/1.1 000 tK\r\n\r\n{").ok()) << "found by fuzz_scan_reply";
  EXPECT_FALSE(rspamd::parse_response("HTTP/1.1 200 OK\r\n").ok());
}

TEST(Rspamd, ReplyFromRspamd34) {
  // As rspamd 3.4 answers /checkv2 (tests/integration/test_scan.py's rules).
  auto r = rspamd::parse_reply(
      R"({"is_skipped":false,"score":8.0,"required_score":15.0,"action":"add header","symbols":{"HIKYAKU_TEST_SPAM":{"name":"HIKYAKU_TEST_SPAM","score":8.0,"metric_score":8.0}},"messages":{},"message-id":"undef","time_real":0.245326})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->action, rspamd::Action::add_header);
  EXPECT_EQ(r->score, 8.0);
  EXPECT_EQ(r->required_score, 15.0);
  ASSERT_EQ(r->symbols.size(), 1u);
  EXPECT_EQ(r->symbols[0].first, "HIKYAKU_TEST_SPAM");
  EXPECT_FALSE(rspamd::parse_reply(R"({"error":"bad request"})").ok());
  EXPECT_FALSE(rspamd::parse_reply(R"({"action":""})").ok());
  EXPECT_FALSE(rspamd::parse_reply(R"({"action":"\r\n"})").ok());
  EXPECT_FALSE(rspamd::parse_reply("[1]").ok());
}

// rspamd 1.9+ also answers "discard" and "quarantine", and an operator may
// define actions of their own: valid verdicts, not scanner failures.
TEST(Rspamd, DiscardQuarantineAndCustomActions) {
  auto discard = rspamd::parse_reply(R"({"action":"discard","score":30})");
  ASSERT_TRUE(discard.ok()) << discard.error().message;
  EXPECT_EQ(discard->action, rspamd::Action::discard);
  EXPECT_EQ(rspamd::action_label(*discard), "discard");
  auto quarantine = rspamd::parse_reply(R"({"action":"quarantine"})");
  ASSERT_TRUE(quarantine.ok());
  EXPECT_EQ(quarantine->action, rspamd::Action::quarantine);
  auto custom = rspamd::parse_reply(R"({"action":"my \"own\"\r\n action"})");
  ASSERT_TRUE(custom.ok()) << custom.error().message;
  EXPECT_EQ(custom->action, rspamd::Action::custom);
  EXPECT_EQ(rspamd::action_label(*custom), "my own action") << "quotes and controls dropped";
  auto long_name = rspamd::parse_reply(R"({"action":")" + std::string(100, 'x') + R"("})");
  ASSERT_TRUE(long_name.ok());
  EXPECT_EQ(long_name->custom.size(), 32u);
}

Report rspamd_said(rspamd::Action action, double score = 1) {
  Report r;
  r.rspamd_asked = true;
  rspamd::Reply reply;
  reply.action = action;
  reply.score = score;
  reply.required_score = 15;
  reply.symbols = {{"A", 1}, {"B", score - 1}};
  r.rspamd = reply;
  return r;
}

TEST(Verdict, EachAnswerItsReply) {
  using K = Decision::Kind;
  struct Case {
    const char* name;
    Report report;
    OnFailure on_failure;
    K kind;
    int code;
    std::string status;
  };
  Report malware;
  malware.clamd_asked = true;
  malware.clamd = {clamd::Reply::Kind::found, "Eicar"};
  Report malware_and_ham = rspamd_said(rspamd::Action::no_action);
  malware_and_ham.clamd_asked = true;
  malware_and_ham.clamd = malware.clamd;
  Report clamd_down;
  clamd_down.clamd_asked = true;
  clamd_down.clamd = {clamd::Reply::Kind::error, "connect: refused"};
  Report rspamd_down;
  rspamd_down.rspamd_asked = true;
  rspamd_down.rspamd_error = "timed out";
  const Case cases[] = {
      {"nothing asked", Report{}, OnFailure::tempfail, K::deliver, 0, ""},
      {"malware: 554 5.7.0", malware, OnFailure::tempfail, K::refuse, 554, "5.7.0"},
      {"malware wins over ham", malware_and_ham, OnFailure::accept, K::refuse, 554, "5.7.0"},
      {"reject: 550 5.7.1", rspamd_said(rspamd::Action::reject, 20), OnFailure::tempfail, K::refuse, 550, "5.7.1"},
      {"soft reject: 451 4.7.1", rspamd_said(rspamd::Action::soft_reject), OnFailure::accept, K::refuse, 451, "4.7.1"},
      {"greylist: 451 4.7.1", rspamd_said(rspamd::Action::greylist), OnFailure::accept, K::refuse, 451, "4.7.1"},
      {"add header: spam", rspamd_said(rspamd::Action::add_header, 8), OnFailure::tempfail, K::spam, 0, ""},
      {"rewrite subject: spam", rspamd_said(rspamd::Action::rewrite_subject, 8), OnFailure::tempfail, K::spam, 0, ""},
      {"discard: spam, kept", rspamd_said(rspamd::Action::discard, 30), OnFailure::accept, K::spam, 0, ""},
      {"quarantine: spam, kept", rspamd_said(rspamd::Action::quarantine, 30), OnFailure::accept, K::spam, 0, ""},
      {"custom action: spam, kept", rspamd_said(rspamd::Action::custom, 9), OnFailure::accept, K::spam, 0, ""},
      {"no action: deliver", rspamd_said(rspamd::Action::no_action), OnFailure::tempfail, K::deliver, 0, ""},
      {"clamd down, tempfail", clamd_down, OnFailure::tempfail, K::refuse, 451, "4.7.1"},
      {"clamd down, accept", clamd_down, OnFailure::accept, K::deliver, 0, ""},
      {"rspamd down, tempfail", rspamd_down, OnFailure::tempfail, K::refuse, 451, "4.7.1"},
      {"rspamd down, accept", rspamd_down, OnFailure::accept, K::deliver, 0, ""},
  };
  for (const auto& c : cases) {
    const Decision d = decide(c.report, c.on_failure);
    EXPECT_EQ(d.kind, c.kind) << c.name;
    if (c.code != 0) {
      ASSERT_TRUE(d.refusal) << c.name;
      EXPECT_EQ(d.refusal->code, c.code) << c.name;
      EXPECT_EQ(d.refusal->status, c.status) << c.name;
      EXPECT_EQ(d.refusal->lines.front().find("Eicar"), std::string::npos) << c.name << ": the name stays in the log";
    } else {
      EXPECT_FALSE(d.refusal) << c.name;
    }
  }
}

// clamd_scope = "attachments": what was sent is said in the log summary.
TEST(Verdict, CleanSummarySaysWhatClamdWasSent) {
  Report whole;
  whole.clamd_asked = true;
  whole.clamd = {clamd::Reply::Kind::clean, ""};
  EXPECT_EQ(decide(whole, OnFailure::tempfail).summary, "clamd: clean");
  Report none = whole;
  none.clamd.detail = "no attachment: clamd not asked";
  const Decision d = decide(none, OnFailure::tempfail);
  EXPECT_EQ(d.kind, Decision::Kind::deliver);
  EXPECT_EQ(d.summary, "clamd: clean (no attachment: clamd not asked)");
}

TEST(Verdict, SpamFieldsFirstAndStrippedForForwarding) {
  const Decision d = decide(rspamd_said(rspamd::Action::add_header, 8), OnFailure::tempfail);
  EXPECT_EQ(d.fields,
            "X-Spam-Status: Yes, score=8.00 required=15.00 action=\"add header\"\r\n\ttests=A(1.00),B(7.00)\r\n"
            "X-Spam-Score: 8.00\r\nX-Spam-Flag: YES\r\n");
  const std::string stored = d.fields + "Received: from x\r\nX-Spam-Status: theirs\r\n\r\nbody\r\n";
  EXPECT_EQ(strip_spam_fields(stored), "Received: from x\r\nX-Spam-Status: theirs\r\n\r\nbody\r\n");
  EXPECT_EQ(strip_spam_fields("Received: x\r\n\r\n"), "Received: x\r\n\r\n");
}

TEST(Verdict, LongSymbolListsAreFoldedAndPrintable) {
  rspamd::Reply r;
  r.action = rspamd::Action::no_action;
  for (int i = 0; i < 20; ++i) r.symbols.emplace_back("SYMBOL_NUMBER_" + std::to_string(i) + "\r\n(x)", 0.5);
  const std::string fields = spam_fields(r);
  size_t start = 0;
  for (size_t crlf = fields.find("\r\n"); crlf != std::string::npos; crlf = fields.find("\r\n", start)) {
    EXPECT_LE(crlf - start, 78u) << fields;
    start = crlf + 2;
  }
  EXPECT_EQ(fields.find("(x)"), std::string::npos);
  EXPECT_NE(fields.find(",\r\n\tSYMBOL_NUMBER_"), std::string::npos);
  EXPECT_EQ(strip_spam_fields(fields + "Received: y\r\n"), "Received: y\r\n");
}

}  // namespace
}  // namespace hikyaku::scan
