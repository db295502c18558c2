#include "mail/dsn.hpp"

#include <gtest/gtest.h>

namespace hikyaku::mail {
namespace {

DsnInput sample() {
  DsnInput in;
  in.reporting_mta = "mx.example.test";
  in.to = "someone@sender.test";
  in.queue_id = "0abc";
  in.arrival = std::chrono::system_clock::from_time_t(1700000000);
  in.now = in.arrival + std::chrono::seconds(5);
  in.recipients.push_back({"ituki@example.test", "5.7.1", "550 5.7.1 <secret@gmail.test> refused", in.now, false});
  in.original_headers = "From: a@sender.test\r\nSubject: hi\r\n--boundary-like\r\nX-8bit: caf\xc3\xa9\r\n";
  in.hidden = {"secret@gmail.test"};
  in.boundary_seed = "0abc.1";
  return in;
}

TEST(Dsn, Rfc3464Structure) {
  std::string d = build_dsn(sample());
  EXPECT_TRUE(d.starts_with("From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"));
  EXPECT_NE(d.find("To: <someone@sender.test>\r\n"), std::string::npos);
  EXPECT_NE(d.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos);
  EXPECT_NE(d.find("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n"),
            std::string::npos);
  EXPECT_NE(d.find("Final-Recipient: rfc822; ituki@example.test\r\nAction: failed\r\nStatus: 5.7.1\r\n"),
            std::string::npos);
  EXPECT_NE(d.find("Diagnostic-Code: smtp; 550 5.7.1 <<hidden>> refused\r\n"), std::string::npos);
  EXPECT_NE(d.find("Content-Type: text/rfc822-headers"), std::string::npos);
  EXPECT_NE(d.find("Subject: hi\r\n"), std::string::npos);
  EXPECT_TRUE(d.ends_with("--hikyaku-dsn-0abc.1--\r\n"));
}

TEST(Dsn, NoHiddenAddressNoBareLfNoEightBit) {
  auto in = sample();
  in.original_headers += "Cc: SECRET@gmail.test\r\n";
  std::string d = build_dsn(in);
  EXPECT_EQ(d.find("secret@gmail.test"), std::string::npos);
  EXPECT_EQ(d.find("SECRET@gmail.test"), std::string::npos);
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_LT(static_cast<unsigned char>(d[i]), 0x80u);
    if (d[i] == '\n') {
      EXPECT_TRUE(i > 0 && d[i - 1] == '\r');
    }
  }
  // An embedded header line starting with "--" cannot end a MIME part.
  EXPECT_EQ(d.find("\r\n--boundary-like"), std::string::npos);
}

TEST(Dsn, TemporaryStatusReportedAsFailedClass) {
  auto in = sample();
  in.recipients[0].status = "4.4.1";
  in.recipients[0].diagnostic = "connect to 127.0.0.2:25: Connection refused";
  in.recipients[0].expired = true;
  std::string d = build_dsn(in);
  EXPECT_NE(d.find("Status: 5.4.1\r\n"), std::string::npos);
  EXPECT_NE(d.find("Diagnostic-Code: X-Hikyaku; connect to"), std::string::npos);
}

TEST(Header, ValuesAreUnfolded) {
  std::string h = "Subject: one\r\n two\r\nsubject: again\r\nFrom:x@y\r\n";
  EXPECT_EQ(header_value(h, "SUBJECT"), "one two");
  EXPECT_EQ(header_values(h, "subject").size(), 2u);
  EXPECT_EQ(header_value(h, "from"), "x@y");
  EXPECT_FALSE(header_value(h, "Date"));
  EXPECT_EQ(header_section("A: b\r\n\r\nbody: no\r\n"), "A: b\r\n");
}

TEST(Text, OneLineAndQuotedString) {
  EXPECT_EQ(one_line("  a\r\n\tb  "), "a b");
  EXPECT_EQ(one_line("a\x01\xe2z"), "a??z");
  EXPECT_EQ(quoted_string("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  EXPECT_EQ(redact("x A@B.c y a@b.C", {"a@b.c"}), "x <hidden> y <hidden>");
  // The whole address a hidden one is part of; punctuation around it stays.
  EXPECT_EQ(redact("open@b.c, pen@b.com; <x.pen@b.c>. ...pen@b.c.", {"pen@b.c"}),
            "<hidden>, <hidden>; <<hidden>>. ...<hidden>.");
  EXPECT_EQ(redact("to=<pen@b.c> forward:pen@b.c (pen@b.c)", {"pen@b.c"}),
            "to=<<hidden>> forward:<hidden> (<hidden>)");
  // Every character a local part may have (RFC 5322 atext, RFC 6531 UTF-8).
  EXPECT_EQ(redact("o'pen@b.c o=pen@b.c o/pen@b.c \xc3\xb3pen@b.c pen@b.c\xc3\xa9", {"pen@b.c"}),
            "<hidden> <hidden> <hidden> <hidden> <hidden>");
  EXPECT_EQ(rfc5322_date(std::chrono::system_clock::from_time_t(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
}

}  // namespace
}  // namespace hikyaku::mail
