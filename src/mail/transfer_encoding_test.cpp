// Unit tests for the MIME Content-Transfer-Encoding codecs (RFC 2045 §6.7,
// §6.8), shared by IMAP BINARY and [scan] clamd_scope = "attachments".
#include "mail/transfer_encoding.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/strings.hpp"

namespace hikyaku::mail {
namespace {

using namespace std::string_literals;

TEST(TransferEncoding, Rfc2045Section6_8Base64) {
  struct Case {
    const char* name;
    std::string input;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"plain", "aGVsbG8gd29ybGQ=", "hello world"},
      {"lines and blanks are ignored", " aGVs \r\n\tbG8g d29y\r\nbGQ=\r\n", "hello world"},
      {"junk outside the alphabet is skipped", "aG!V*s@bG8=", "hello"},
      {"padding ends the data", "aGk=aGVsbG8=", "hi"},
      {"an incomplete quantum gives what it holds", "aGVsbA", "hell"},
      {"a lone sextet gives nothing", "a", ""},
      {"binary octets", "AC3kCg0KCg==", "\0-\xe4\n\r\n\n"s},
      {"empty", "", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(decode_base64_body(c.input), c.want) << c.name;
  }
}

TEST(TransferEncoding, Rfc2045Section6_7QuotedPrintable) {
  struct Case {
    const char* name;
    std::string input;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"escapes", "a=3Db=0D=0Ac", "a=b\r\nc"},
      {"lower-case hex is read", "=3d", "="},
      {"soft line break", "foo=\r\nbar\r\n", "foobar\r\n"},
      {"soft line break with padding after it", "foo\t = \t\r\nbar", "foo\t bar"},
      {"trailing blanks of a line are padding (rule 3)", "hello  \r\nx", "hello\r\nx"},
      {"bare LF is a line break", "a\nb\n", "a\r\nb\r\n"},
      {"a bad escape stays (note 2)", "a=ZZb=4", "a=ZZb=4"},
      {"a final soft break at the very end", "abc=", "abc"},
      {"8-bit octets pass", "\xe4=E4", "\xe4\xe4"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(decode_quoted_printable_body(c.input), c.want) << c.name;
  }
}

TEST(TransferEncoding, Base64RoundTripAndLineLength) {
  std::string octets;
  for (int i = 0; i < 300; ++i) octets += static_cast<char>(i * 7);
  const std::string encoded = encode_base64_body(octets);
  EXPECT_EQ(decode_base64_body(encoded), octets);
  for (auto line : base::split(encoded, '\n')) EXPECT_LE(line.size(), 77u);  // 76 + CR
  EXPECT_TRUE(encoded.ends_with("\r\n"));
  EXPECT_EQ(encode_base64_body(""), "");
  EXPECT_EQ(encode_base64_body("hi"), "aGk=\r\n");
  EXPECT_EQ(encode_base64_body("hel"), "aGVs\r\n");
}

}  // namespace
}  // namespace hikyaku::mail
