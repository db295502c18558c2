#include "crypto/key.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "base/strings.hpp"

namespace hikyaku::crypto {

struct KeyHandle {
  EVP_PKEY* pkey = nullptr;
  explicit KeyHandle(EVP_PKEY* p) : pkey(p) {}
  ~KeyHandle() { EVP_PKEY_free(pkey); }
  KeyHandle(const KeyHandle&) = delete;
  KeyHandle& operator=(const KeyHandle&) = delete;
};

namespace {

std::string openssl_error(std::string_view what) {
  std::string msg(what);
  unsigned long e = ERR_get_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  return msg;
}

const EVP_MD* md_for(HashAlgorithm a) { return a == HashAlgorithm::sha1 ? EVP_sha1() : EVP_sha256(); }

std::string strip_space(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') out += c;
  return out;
}

// Wrap a freshly made EVP_PKEY; refuse key types DKIM does not use.
template <class K>
base::Result<K> wrap(EVP_PKEY* pkey) {
  if (pkey == nullptr) return base::make_error(openssl_error("no key"));
  auto handle = std::make_shared<const KeyHandle>(pkey);
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA) return K(handle, KeyType::rsa, unsigned(EVP_PKEY_get_bits(pkey)));
  if (id == EVP_PKEY_ED25519) return K(handle, KeyType::ed25519, 256);
  return base::make_error("unsupported key type (want RSA or Ed25519)");
}

}  // namespace

std::string_view key_type_name(KeyType type) { return type == KeyType::rsa ? "rsa" : "ed25519"; }

std::string PublicKey::dkim_p() const {
  if (type_ == KeyType::ed25519) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    HIKYAKU_CHECK(EVP_PKEY_get_raw_public_key(handle_->pkey, raw, &len) == 1);
    return base::base64_encode(std::string_view(reinterpret_cast<const char*>(raw), len));
  }
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(handle_->pkey, &der);
  HIKYAKU_CHECK(len > 0);
  std::string out = base::base64_encode(std::string_view(reinterpret_cast<const char*>(der), size_t(len)));
  OPENSSL_free(der);
  return out;
}

std::string PrivateKey::to_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  HIKYAKU_CHECK(bio != nullptr);
  HIKYAKU_CHECK(PEM_write_bio_PrivateKey(bio, handle_->pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, size_t(len));
  BIO_free(bio);
  return out;
}

base::Result<PrivateKey> load_private_key_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  if (bio == nullptr) return base::make_error("out of memory");
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) return base::make_error(openssl_error("cannot parse PEM private key"));
  return wrap<PrivateKey>(pkey);
}

base::Result<PrivateKey> load_ed25519_seed(std::string_view base64_seed) {
  auto seed = base::base64_decode(strip_space(base64_seed));
  if (!seed) return base::make_error("Ed25519 seed is not valid base64");
  const std::string& raw = *seed;
  if (raw.size() != 32) return base::make_error("Ed25519 seed must be 32 bytes");
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (pkey == nullptr) return base::make_error(openssl_error("cannot load Ed25519 seed"));
  return wrap<PrivateKey>(pkey);
}

base::Result<PrivateKey> load_private_key(std::string_view text) {
  if (text.find("-----BEGIN") != std::string_view::npos) return load_private_key_pem(text);
  return load_ed25519_seed(text);
}

base::Result<PublicKey> parse_dkim_public_key(KeyType type, std::string_view p_base64) {
  auto der = base::base64_decode(strip_space(p_base64));
  if (!der) return base::make_error("p= is not valid base64");
  const std::string& raw = *der;
  if (raw.empty()) return base::make_error("p= is empty (key revoked)");
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  EVP_PKEY* pkey = nullptr;
  if (type == KeyType::ed25519 && raw.size() == 32) {
    // RFC 8463 §4: the bare 32-byte public key.
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes, raw.size());
  } else {
    // RFC 6376 §3.6.1: SubjectPublicKeyInfo; many publishers use the bare
    // PKCS#1 RSAPublicKey instead, which verifiers accept.
    const unsigned char* p = bytes;
    pkey = d2i_PUBKEY(nullptr, &p, long(raw.size()));
    if (pkey == nullptr && type == KeyType::rsa) {
      ERR_clear_error();
      p = bytes;
      pkey = d2i_PublicKey(EVP_PKEY_RSA, nullptr, &p, long(raw.size()));
    }
  }
  if (pkey == nullptr) return base::make_error(openssl_error("cannot parse public key"));
  auto key = wrap<PublicKey>(pkey);
  if (key && key->type() != type) return base::make_error("key type does not match k=");
  return key;
}

base::Result<PrivateKey> generate_key(KeyType type, unsigned rsa_bits) {
  EVP_PKEY* pkey = nullptr;
  if (type == KeyType::rsa) {
    if (rsa_bits < 1024 || rsa_bits > 8192) return base::make_error("RSA key size out of range");
    pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(rsa_bits));
  } else {
    pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  if (pkey == nullptr) return base::make_error(openssl_error("key generation failed"));
  return wrap<PrivateKey>(pkey);
}

base::Result<std::string> sign_digest(const PrivateKey& key, HashAlgorithm hash, std::string_view digest) {
  EVP_PKEY* pkey = key.handle().pkey;
  std::string sig;
  if (key.type() == KeyType::ed25519) {
    // RFC 8463 §3: PureEdDSA over the hash output.
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) return base::make_error("out of memory");
    size_t len = 64;
    sig.resize(len);
    bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
              EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                             reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return base::make_error(openssl_error("Ed25519 signing failed"));
    sig.resize(len);
    return sig;
  }
  // RFC 6376 §3.3.1: RSASSA-PKCS1-v1_5 over the digest.
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey, nullptr);
  if (ctx == nullptr) return base::make_error("out of memory");
  size_t len = 0;
  bool ok = EVP_PKEY_sign_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ctx, md_for(hash)) == 1 &&
            EVP_PKEY_sign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(digest.data()),
                          digest.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_PKEY_sign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(digest.data()), digest.size()) == 1;
    sig.resize(len);
  }
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return base::make_error(openssl_error("RSA signing failed"));
  return sig;
}

bool verify_digest(const PublicKey& key, HashAlgorithm hash, std::string_view digest,
                   std::string_view signature) {
  EVP_PKEY* pkey = key.handle().pkey;
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  const auto* dig = reinterpret_cast<const unsigned char*>(digest.data());
  bool ok = false;
  if (key.type() == KeyType::ed25519) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (ctx == nullptr) return false;
    ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
         EVP_DigestVerify(ctx, sig, signature.size(), dig, digest.size()) == 1;
    EVP_MD_CTX_free(ctx);
  } else {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pkey, nullptr);
    if (ctx == nullptr) return false;
    ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
         EVP_PKEY_CTX_set_signature_md(ctx, md_for(hash)) == 1 &&
         EVP_PKEY_verify(ctx, sig, signature.size(), dig, digest.size()) == 1;
    EVP_PKEY_CTX_free(ctx);
  }
  ERR_clear_error();
  return ok;
}

}  // namespace hikyaku::crypto
