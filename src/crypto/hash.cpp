#include "crypto/hash.hpp"

#include <openssl/evp.h>

#include "base/result.hpp"

namespace hikyaku::crypto {

struct Hasher::Impl {
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

namespace {
const EVP_MD* md_for(HashAlgorithm a) { return a == HashAlgorithm::sha1 ? EVP_sha1() : EVP_sha256(); }
}  // namespace

std::string_view hash_name(HashAlgorithm algorithm) {
  return algorithm == HashAlgorithm::sha1 ? "sha1" : "sha256";
}

Hasher::Hasher(HashAlgorithm algorithm) : impl_(std::make_unique<Impl>()), algorithm_(algorithm) {
  impl_->ctx = EVP_MD_CTX_new();
  HIKYAKU_CHECK(impl_->ctx != nullptr);
  HIKYAKU_CHECK(EVP_DigestInit_ex(impl_->ctx, md_for(algorithm), nullptr) == 1);
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(std::string_view data) {
  if (data.empty()) return;
  HIKYAKU_CHECK(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()) == 1);
}

std::string Hasher::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HIKYAKU_CHECK(EVP_DigestFinal_ex(impl_->ctx, out, &len) == 1);
  HIKYAKU_CHECK(EVP_DigestInit_ex(impl_->ctx, md_for(algorithm_), nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string digest(HashAlgorithm algorithm, std::string_view data) {
  Hasher h(algorithm);
  h.update(data);
  return h.finish();
}

}  // namespace hikyaku::crypto
