// The forwarder's From rewrite (auth/dmarc/from_rewrite.hpp): where the new
// fields go, how the display name is written (RFC 5322 §3.2.4, RFC 2047
// §5(3), RFC 6532 §3.2), and that nothing else of the message changes.
#include "auth/dmarc/from_rewrite.hpp"

#include <gtest/gtest.h>

namespace hikyaku::auth::dmarc {
namespace {

TEST(RewriteFrom, EncodedWordsStayOutsideQuotes_RFC2047_5) {
  common::Author a{"=?UTF-8?B?5bGx55Sw?=", "y@author.test", "author.test"};
  std::string out = rewrite_from("From: =?UTF-8?B?5bGx55Sw?= <y@author.test>\r\nReply-To: r@x.test\r\n\r\nb\r\n", a,
                                 "example.test");
  EXPECT_EQ(out,
            "From: =?UTF-8?B?5bGx55Sw?= \"via example.test\" <noreply@example.test>\r\n"
            "X-Original-From: =?UTF-8?B?5bGx55Sw?= <y@author.test>\r\nReply-To: r@x.test\r\n\r\nb\r\n");
}

// A UTF-8 name with a comma, unquoted, would be two addresses; a CR would
// break the field (RFC 5322 §3.2.4, RFC 6532 §3.2). An "encoded-word" with
// specials around it is not one (RFC 2047 §5(3)): quoted too.
TEST(RewriteFrom, OtherNamesAreQuotedWithoutControls_RFC5322_3_2_4) {
  common::Author utf8{"M\xc3\xbcller, Hans", "h@author.test", "author.test"};
  std::string out = rewrite_from("From: h@author.test\r\n\r\nb\r\n", utf8, "example.test");
  EXPECT_EQ(out.substr(0, out.find("\r\n")),
            "From: \"M\xc3\xbcller, Hans via example.test\" <noreply@example.test>");
  common::Author fake{"=?x?q?a?=, b\r", "a@author.test", "author.test"};
  out = rewrite_from("From: a@author.test\r\n\r\nb\r\n", fake, "example.test");
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "From: \"=?x?q?a?=, b  via example.test\" <noreply@example.test>");
}

// The new fields take the place of the From; the other fields and the body
// are kept byte for byte, and a missing Reply-To is added (RFC 5322 §3.6.2).
TEST(RewriteFrom, ReplacesFromInPlaceAndKeepsTheRest_RFC5322_3_6_2) {
  common::Author a{"Ann Author", "ann@author.test", "author.test"};
  std::string in = "Received: x\r\nFrom: Ann Author\r\n <ann@author.test>\r\nSubject: s\r\n\r\nbody\r\n.\r\n";
  EXPECT_EQ(rewrite_from(in, a, "example.test"),
            "Received: x\r\nFrom: \"Ann Author via example.test\" <noreply@example.test>\r\n"
            "Reply-To: Ann Author <ann@author.test>\r\nX-Original-From: Ann Author <ann@author.test>\r\n"
            "Subject: s\r\n\r\nbody\r\n.\r\n");
}

}  // namespace
}  // namespace hikyaku::auth::dmarc
