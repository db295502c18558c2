// Table-driven tests of the SMTP client's reply parser (RFC 5321 §4.2,
// RFC 3463 enhanced status), EHLO capabilities (RFC 5321 §4.1.1.1) and the
// DATA payload helpers (RFC 5321 §4.5.2 dot-stuffing, RFC 6152 8-bit).
// RFC sections are named in the case names.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::smtp::protocol {
namespace {

ServerReply parse_all(const std::vector<std::string>& lines, ReplyParser::Status* last = nullptr) {
  ReplyParser p;
  ReplyParser::Status st = ReplyParser::Status::need_more;
  for (const auto& l : lines) {
    st = p.feed(l);
    if (st != ReplyParser::Status::need_more) break;
  }
  if (last) *last = st;
  return st == ReplyParser::Status::complete ? p.take() : ServerReply{};
}

TEST(ReplyParser, Table) {
  struct Case {
    std::string name;
    std::vector<std::string> lines;
    ReplyParser::Status want_status;
    int want_code;
    std::string want_enhanced;
    std::string want_text;
  };
  using S = ReplyParser::Status;
  const std::vector<Case> cases = {
      {"rfc5321_4.2_single_line", {"250 OK"}, S::complete, 250, "", "250 OK"},
      {"rfc2034_enhanced", {"550 5.7.1 Rejected"}, S::complete, 550, "5.7.1", "550 5.7.1 Rejected"},
      {"rfc5321_4.2.1_multiline",
       {"550-5.7.1 The user you are", "550-5.7.1 trying to reach", "550 5.7.1 is over quota"},
       S::complete, 550, "5.7.1", "550-5.7.1 The user you are 550-5.7.1 trying to reach 550 5.7.1 is over quota"},
      {"code_only", {"250"}, S::complete, 250, "", "250"},
      {"rfc3463_class_mismatch_ignored", {"550 4.7.1 odd"}, S::complete, 550, "", "550 4.7.1 odd"},
      {"rfc3463_three_digit_parts", {"421 4.7.28 rate"}, S::complete, 421, "4.7.28", "421 4.7.28 rate"},
      {"not_enhanced_version_number", {"220 mx ESMTP 1.2.3x"}, S::complete, 220, "", "220 mx ESMTP 1.2.3x"},
      {"malformed_letters", {"2x0 hi"}, S::error, 0, "", ""},
      {"malformed_short", {"25"}, S::error, 0, "", ""},
      {"malformed_separator", {"250_hi"}, S::error, 0, "", ""},
      {"malformed_first_digit", {"650 hi"}, S::error, 0, "", ""},
      {"code_changes_in_multiline", {"250-a", "251 b"}, S::error, 0, "", ""},
      {"incomplete_multiline", {"250-a"}, S::need_more, 0, "", ""},
  };
  for (const auto& c : cases) {
    ReplyParser::Status st;
    auto r = parse_all(c.lines, &st);
    EXPECT_EQ(st, c.want_status) << c.name;
    if (st != S::complete) continue;
    EXPECT_EQ(r.code, c.want_code) << c.name;
    EXPECT_EQ(r.status, c.want_enhanced) << c.name << ": got " << r.status << ", want " << c.want_enhanced;
    EXPECT_EQ(r.text(), c.want_text) << c.name;
  }
}

TEST(ReplyParser, TooManyLines) {
  ReplyParser p;
  ReplyParser::Status st = ReplyParser::Status::need_more;
  for (size_t i = 0; i <= ReplyParser::kMaxReplyLines && st == ReplyParser::Status::need_more; ++i)
    st = p.feed("250-x");
  EXPECT_EQ(st, ReplyParser::Status::error);
}

TEST(Capabilities, Rfc5321_4_1_1_1_Ehlo) {
  auto r = parse_all({"250-mx.gmail.test at your service", "250-SIZE 35882577", "250-8BITMIME", "250-STARTTLS",
                      "250-ENHANCEDSTATUSCODES", "250-pipelining", "250-AUTH LOGIN PLAIN", "250-CHUNKING",
                      "250 SMTPUTF8"});
  auto c = Capabilities::parse(r);
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.size_limit, 35882577u);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.pipelining);  // keywords are case-insensitive
  EXPECT_TRUE(c.chunking);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_EQ(c.auth, (std::vector<std::string>{"LOGIN", "PLAIN"}));

  auto bare = Capabilities::parse(parse_all({"250-x", "250 SIZE"}));
  EXPECT_TRUE(bare.size);
  EXPECT_EQ(bare.size_limit, 0u);  // RFC 1870: no announced limit
  auto none = Capabilities::parse(parse_all({"250 x STARTTLS"}));  // the greeting line is not a keyword
  EXPECT_FALSE(none.starttls);
}

TEST(DotStuff, Rfc5321_4_5_2) {
  struct Case {
    std::string name, in, want;
  };
  const std::vector<Case> cases = {
      {"plain", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
      {"leading_dot", ".a\r\n", "..a\r\n.\r\n"},
      {"lone_dot_line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
      {"dot_not_at_start", "a.b\r\n", "a.b\r\n.\r\n"},
      {"no_final_crlf", "a", "a\r\n.\r\n"},
      {"bare_lf_made_crlf", "a\nb\n", "a\r\nb\r\n.\r\n"},
      {"empty", "", ".\r\n"},
      {"two_dots", "..x\r\n", "...x\r\n.\r\n"},
  };
  for (const auto& c : cases) EXPECT_EQ(dot_stuff(c.in), c.want) << c.name;
  EXPECT_TRUE(has_8bit("caf\xc3\xa9"));
}

TEST(WireEncoder, PiecesOfAnySizeMakeTheWholeEncoding_RFC5321_4_5_2) {
  // Split points fall between CR and LF, before a leading dot, and inside
  // long lines: the pieces must still join into dot_stuff()/crlf_lines().
  const std::vector<std::string> messages = {
      "", "a", ".", "\n", "\r", ".a\r\n.\r\nb\nc\r", "x\r\n..y\n.z",
      std::string(200, 'q') + "\r\n." + std::string(70, 'w') + "\n",
      std::string(2500, 'L') + "\r\n." + std::string(997, 'd') + "\r\n" + std::string(998, 'e') + "\r\n",
      std::string(998, 'r') + "\rb\r\n" + std::string(997, 'c') + "\r",  // bare CRs: text, wherever cut
  };
  using M = WireEncoder::Mode;
  for (const auto& m : messages) {
    for (M mode : {M::dot_stuffed, M::crlf_lines}) {
      const std::string whole = mode == M::dot_stuffed ? dot_stuff(m) : crlf_lines(m);
      EXPECT_EQ(WireEncoder::size(m, mode), whole.size()) << m;
      for (size_t max : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}}) {
        WireEncoder encoder(mode);
        WireEncoder counter(mode);
        std::string joined;
        for (size_t at = 0; at < m.size(); at += max) {
          const std::string_view piece = std::string_view(m).substr(at, max);
          std::string out;
          encoder.add(piece, out);
          EXPECT_LE(out.size(), 2 * piece.size() + 4) << "a piece's encoding is at most twice the piece (+ a held CR and a break)";
          joined += out;
          counter.count(piece);
        }
        encoder.finish(joined);
        EXPECT_EQ(joined, whole) << "max=" << max << " message=" << m;
        EXPECT_EQ(counter.counted_total(), whole.size()) << "max=" << max << " message=" << m;
      }
    }
  }
}

// RFC 5321 §4.5.3.1.6: at most 998 octets and the CRLF on a line. Longer
// ones are broken with CRLF SPACE every 998 octets, as Postfix does
// (smtp_line_length_limit); a stuffed dot counts, a CRLF's CR does not.
TEST(WireEncoder, LinesOver998OctetsAreBrokenWithCrlfSpace_RFC5321_4_5_3_1_6) {
  const std::string a998(998, 'a');
  EXPECT_EQ(crlf_lines(a998 + "\r\n"), a998 + "\r\n") << "998 octets fit";
  EXPECT_EQ(crlf_lines(a998 + "b\r\n"), a998 + "\r\n b\r\n");
  EXPECT_EQ(crlf_lines(std::string(2500, 'x') + "\r\n"),
            std::string(998, 'x') + "\r\n " + std::string(997, 'x') + "\r\n " + std::string(505, 'x') + "\r\n");
  EXPECT_EQ(dot_stuff("." + std::string(997, 'd') + "\r\n"), ".." + std::string(996, 'd') + "\r\n d\r\n.\r\n")
      << "the stuffed dot is on the wire: it counts";
  EXPECT_EQ(crlf_lines("Subject: " + std::string(1200, 's') + "\r\n\r\nbody\r\n"),
            "Subject: " + std::string(989, 's') + "\r\n " + std::string(211, 's') + "\r\n\r\nbody\r\n")
      << "a long header line becomes a folded one";
  WireEncoder e(WireEncoder::Mode::crlf_lines);
  std::string out;
  e.add(std::string(3000, 'z'), out);
  EXPECT_EQ(e.lines_broken(), 3u);
  // Every line on the wire has at most 998 octets before its CRLF.
  const std::string wire = dot_stuff(std::string(5000, 'w') + "\n" + std::string(1500, '.') + std::string("\r\n\0\0nul\r\n", 9));
  size_t start = 0;
  for (size_t crlf = wire.find("\r\n"); crlf != std::string::npos; crlf = wire.find("\r\n", start)) {
    EXPECT_LE(crlf - start, 998u);
    start = crlf + 2;
  }
}

TEST(CrlfLines, BdatChunkIsTheMessageWithCrlfLines_RFC3030_2) {
  EXPECT_EQ(crlf_lines(""), "");
  EXPECT_EQ(crlf_lines("a\r\n.b\r\n"), "a\r\n.b\r\n");     // no dot-stuffing, no terminator
  EXPECT_EQ(crlf_lines("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");  // bare LF → CRLF
  EXPECT_EQ(crlf_lines("last line"), "last line\r\n");      // the last line is ended
  EXPECT_EQ(crlf_lines("\n"), "\r\n");
  EXPECT_FALSE(has_8bit("plain ascii\r\n"));
}

}  // namespace
}  // namespace hikyaku::smtp::protocol
