// HMAC test vectors: RFC 4231 §4.2, §4.3 (HMAC-SHA256) and RFC 2202 §3
// (HMAC-SHA1).
#include <gtest/gtest.h>

#include <string>

#include "crypto/hmac.hpp"

namespace hikyaku::crypto {
namespace {

std::string hex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

struct Case {
  const char* name;
  HashAlgorithm algorithm;
  std::string key;
  std::string data;
  const char* want_hex;
};

TEST(Hmac, Rfc4231AndRfc2202Vectors) {
  const Case cases[] = {
      {"RFC4231 §4.2 case 1", HashAlgorithm::sha256, std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"RFC4231 §4.3 case 2", HashAlgorithm::sha256, "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"RFC2202 §3 case 1", HashAlgorithm::sha1, std::string(20, '\x0b'), "Hi There",
       "b617318655057264e28bc0b6fb378c8ef146be00"},
      {"RFC2202 §3 case 2", HashAlgorithm::sha1, "Jefe", "what do ya want for nothing?",
       "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(hex(hmac(c.algorithm, c.key, c.data)), c.want_hex) << c.name;
}

TEST(Hmac, EmptyKeyAndData) {
  // HMAC-SHA256("", "") is well defined (RFC 2104 pads the key with zeros).
  EXPECT_EQ(hex(hmac_sha256("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Hmac, Md5Rfc2202AndRfc2195) {
  // RFC 2202 §2 test case 2, and the CRAM-MD5 example of RFC 2195 §2.
  EXPECT_EQ(hex(hmac_md5("Jefe", "what do ya want for nothing?")), "750c783e6ab0b503eaa86e310a5db738");
  EXPECT_EQ(hex(hmac_md5("tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>")),
            "b913a602c7eda7a495b4e6e7334d3890");
}

TEST(Hmac, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace hikyaku::crypto
