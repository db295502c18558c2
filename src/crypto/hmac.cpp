#include "crypto/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/result.hpp"

namespace hikyaku::crypto {

namespace {

std::string hmac_with(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // HMAC() (one-shot) is not deprecated in OpenSSL 3; an empty key is legal
  // in RFC 2104 but OpenSSL wants a non-null pointer.
  static constexpr unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : static_cast<const void*>(key.data());
  const unsigned char* d =
      data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  unsigned char* r = HMAC(md, k, static_cast<int>(key.size()), d, data.size(), out, &len);
  HIKYAKU_CHECK(r != nullptr);
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace

std::string hmac(HashAlgorithm algorithm, std::string_view key, std::string_view data) {
  return hmac_with(algorithm == HashAlgorithm::sha1 ? EVP_sha1() : EVP_sha256(), key, data);
}

std::string hmac_md5(std::string_view key, std::string_view data) { return hmac_with(EVP_md5(), key, data); }

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace hikyaku::crypto
