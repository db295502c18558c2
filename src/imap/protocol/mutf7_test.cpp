#include "imap/protocol/mutf7.hpp"

#include <gtest/gtest.h>

#include <string>

#include "base/strings.hpp"

namespace hikyaku::imap::protocol {
namespace {

// Both directions: `wire` decodes to `utf8` and `utf8` encodes to `wire`.
void expect_pair(const std::string& wire, const std::string& utf8) {
  EXPECT_EQ(mutf7_to_utf8(wire), utf8) << wire;
  EXPECT_EQ(utf8_to_mutf7(utf8), wire) << wire;
  EXPECT_TRUE(valid_mutf7(wire)) << wire;
  EXPECT_TRUE(base::valid_utf8(utf8)) << wire;
}

TEST(Mutf7, Rfc3501Example) {
  // RFC 3501 §5.1.3: the example mailbox name.
  expect_pair("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e");
}

TEST(Mutf7, Ampersand) {
  // RFC 3501 §5.1.3: "&" is represented by "&-".
  expect_pair("&-", "&");
  expect_pair("Tom &- Jerry", "Tom & Jerry");
  expect_pair("&-&-", "&&");
  // A literal "&" beside a run is not two runs back to back.
  expect_pair("&AOQ-&-&APY-", "\u00e4&\u00f6");
}

TEST(Mutf7, Latin) {
  expect_pair("Entw&APw-rfe", "Entw\u00fcrfe");
  expect_pair("&AMQA1gDc-", "\u00c4\u00d6\u00dc");  // one run for the three
  expect_pair("Gel&APY-scht", "Gel\u00f6scht");
}

TEST(Mutf7, PlainAscii) {
  expect_pair("", "");
  expect_pair("INBOX", "INBOX");
  expect_pair(" !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", " !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
}

TEST(Mutf7, ControlCharactersAreEncoded) {
  // RFC 3501 §5.1.3: 0x00-0x1f and 0x7f are not printable: BASE64.
  expect_pair("a&AAk-b", "a\tb");
  expect_pair("&AH8-", "\x7f");
  expect_pair("&AAA-", std::string(1, '\0'));
}

TEST(Mutf7, SurrogatePair) {
  // U+1F600 (UTF-16 D83D DE00) and U+10FFFF (DBFF DFFF).
  expect_pair("&2D3eAA-", "\U0001F600");
  expect_pair("Mail &2D3eAA- box", "Mail \U0001F600 box");
  expect_pair("&2D3eANg93gE-", "\U0001F600\U0001F601");
  expect_pair("&AOTYPd4A-", "\u00e4\U0001F600");
  expect_pair("&2,,f,w-", "\U0010FFFF");
}

TEST(Mutf7, RejectsBytesOutsidePrintableAscii) {
  EXPECT_EQ(mutf7_to_utf8("Entw\xc3\xbcrfe"), std::nullopt);  // raw UTF-8
  EXPECT_EQ(mutf7_to_utf8("a\tb"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8(std::string("a\0b", 3)), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("a\x7f"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&AOQ\x80-"), std::nullopt);
}

TEST(Mutf7, RejectsUnterminatedRun) {
  EXPECT_EQ(mutf7_to_utf8("&"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("a&"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("Entw&APw"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&U,BTFw/x"), std::nullopt);
}

TEST(Mutf7, RejectsCharactersOutsideModifiedBase64) {
  EXPECT_EQ(mutf7_to_utf8("&U/BTFw-"), std::nullopt);   // "/" is "," here
  EXPECT_EQ(mutf7_to_utf8("&APw=-"), std::nullopt);     // no "=" padding
  EXPECT_EQ(mutf7_to_utf8("&AP w-"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&AP&w-"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&AP.w-"), std::nullopt);
}

TEST(Mutf7, RejectsNonZeroPaddingBits) {
  // "APw" is 0x00 0xfc and two zero bits; "APx" sets one of them.
  EXPECT_EQ(mutf7_to_utf8("&APx-"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&APz-"), std::nullopt);
  // A character that completes no octet: six bits of padding.
  EXPECT_EQ(mutf7_to_utf8("&AOQA9gDk-"), "\u00e4\u00f6\u00e4");
  EXPECT_EQ(mutf7_to_utf8("&AOQA9gDkA-"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&A-"), std::nullopt);
}

TEST(Mutf7, RejectsPrintableAsciiInRun) {
  // RFC 3501 §5.1.3: printable characters represent themselves.
  EXPECT_EQ(mutf7_to_utf8("&AGE-"), std::nullopt);      // "a"
  EXPECT_EQ(mutf7_to_utf8("&ACY-"), std::nullopt);      // "&" is "&-"
  EXPECT_EQ(mutf7_to_utf8("&ACA-"), std::nullopt);      // " "
  EXPECT_EQ(mutf7_to_utf8("&AH4-"), std::nullopt);      // "~"
  EXPECT_EQ(mutf7_to_utf8("&AGEA5A-"), std::nullopt);   // "a" then U+00E4
}

TEST(Mutf7, RejectsOddUtf16Octets) {
  EXPECT_EQ(mutf7_to_utf8("&AOQA-"), std::nullopt);  // 3 octets: 00 E4 00
  EXPECT_EQ(mutf7_to_utf8("&AA-"), std::nullopt);    // 1 octet
}

TEST(Mutf7, RejectsUnpairedSurrogates) {
  EXPECT_EQ(mutf7_to_utf8("&2D0-"), std::nullopt);       // D83D alone
  EXPECT_EQ(mutf7_to_utf8("&3gA-"), std::nullopt);       // DE00 alone
  EXPECT_EQ(mutf7_to_utf8("&3gDYPQ-"), std::nullopt);    // DE00 D83D: reversed
  EXPECT_EQ(mutf7_to_utf8("&2D0A5A-"), std::nullopt);    // D83D 00E4
  EXPECT_EQ(mutf7_to_utf8("&2D0-&3gA-"), std::nullopt);  // split over two runs
  EXPECT_EQ(mutf7_to_utf8("&2D0-x&3gA-"), std::nullopt);
}

TEST(Mutf7, RejectsAdjacentRuns) {
  // "&AOQ-&APY-" is "&AOQA9g-" spelt as two runs.
  EXPECT_EQ(mutf7_to_utf8("&AOQ-&APY-"), std::nullopt);
  EXPECT_EQ(mutf7_to_utf8("&AOQA9g-"), "\u00e4\u00f6");
}

TEST(Mutf7, Utf8Validation) {
  EXPECT_TRUE(base::valid_utf8(""));
  EXPECT_TRUE(base::valid_utf8("\u00e4\u20ac\U0001F600\U0010FFFF"));
  EXPECT_TRUE(base::valid_utf8(std::string("\0", 1)));
  EXPECT_FALSE(base::valid_utf8("\xc0\xaf"));              // overlong "/"
  EXPECT_FALSE(base::valid_utf8("\xe0\x80\xaf"));          // overlong, 3 octets
  EXPECT_FALSE(base::valid_utf8("\xf0\x80\x80\xaf"));      // overlong, 4 octets
  EXPECT_FALSE(base::valid_utf8("\xed\xa0\xbd"));          // U+D83D: a surrogate
  EXPECT_FALSE(base::valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 pair
  EXPECT_FALSE(base::valid_utf8("\xf4\x90\x80\x80"));      // U+110000
  EXPECT_FALSE(base::valid_utf8("\xf8\x88\x80\x80\x80"));  // 5 octets
  EXPECT_FALSE(base::valid_utf8("\x80"));                  // a continuation first
  EXPECT_FALSE(base::valid_utf8("\xc3"));                  // truncated
  EXPECT_FALSE(base::valid_utf8("\xe2\x82"));
  EXPECT_FALSE(base::valid_utf8("\xc3\x28"));              // bad continuation
  EXPECT_FALSE(base::valid_utf8("\xff"));
}

TEST(Mutf7, EncodeRejectsInvalidUtf8) {
  EXPECT_EQ(utf8_to_mutf7("Entw\xfcrfe"), std::nullopt);  // Latin-1
  EXPECT_EQ(utf8_to_mutf7("\xed\xa0\xbd"), std::nullopt);
  EXPECT_EQ(utf8_to_mutf7("a\xc3"), std::nullopt);
}

TEST(Mutf7, RoundTrip) {
  for (const std::string utf8 :
       {"INBOX", "Entw\u00fcrfe", "Gesendete Objekte", "\u0412\u0445\u043e\u0434\u044f\u0449\u0438\u0435",
        "\u53d7\u4fe1\u30c8\u30ec\u30a4/\u91cd\u8981", "A&B/&&/\u00e4&\u00f6", "\U0001F4E7 Mail \U0001F4E8\U0001F4E9",
        "x\u00e4y\u00f6z\u00fc", "\u00e4", "\u00e4\u00e4", "\u00e4\u00e4\u00e4", "\u00e4\u00e4\u00e4\u00e4",
        "\U0001F600\u00e4", "tab\there", "\uffff\ufffe\ufeff"}) {
    const auto wire = utf8_to_mutf7(utf8);
    ASSERT_TRUE(wire.has_value()) << utf8;
    for (const char c : *wire) {
      EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << *wire;
    }
    EXPECT_EQ(mutf7_to_utf8(*wire), utf8) << *wire;
  }
}

}  // namespace
}  // namespace hikyaku::imap::protocol
