// Purpose:   RSA and Ed25519 keys for DKIM and ARC: load private keys (PEM
//            PKCS#1 / PKCS#8, raw base64 Ed25519 seed), parse the public key
//            of a DKIM key record (p=), sign and verify a precomputed digest,
//            generate keys and print the DKIM p= text. The only place (with
//            hash.cpp) that calls OpenSSL: its headers stay private here.
// Standards: RFC 6376 §3.3.1 (RSA PKCS#1 v1.5 over SHA-256/SHA-1), §3.6.1 (p=:
//            SubjectPublicKeyInfo, bare RSAPublicKey accepted too), RFC 8301
//            (key sizes), RFC 8463 §3 (Ed25519 "pure" over the SHA-256 digest,
//            p= is the raw 32-byte public key), RFC 8032 (Ed25519).
// Trust:     private keys are secrets: never logged, never copied out except
//            by to_pem(). Public keys and signatures are untrusted DNS/mail data.
// Concurrency: keys are immutable after loading; share them across threads.
// Errors:    base::Result with a log-fit message; a bad signature is `false`.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "crypto/hash.hpp"

namespace hikyaku::crypto {

enum class KeyType { rsa, ed25519 };

// "rsa" / "ed25519" as in the k= tag.
std::string_view key_type_name(KeyType type);

struct KeyHandle;  // owns an OpenSSL EVP_PKEY; defined in key.cpp

class PublicKey {
 public:
  KeyType type() const { return type_; }
  unsigned bits() const { return bits_; }
  // The DKIM p= value (base64): SubjectPublicKeyInfo DER for RSA, the raw
  // 32-byte key for Ed25519 (RFC 8463 §4).
  std::string dkim_p() const;
  const KeyHandle& handle() const { return *handle_; }

  PublicKey(std::shared_ptr<const KeyHandle> h, KeyType t, unsigned bits)
      : handle_(std::move(h)), type_(t), bits_(bits) {}

 private:
  std::shared_ptr<const KeyHandle> handle_;
  KeyType type_;
  unsigned bits_;
};

class PrivateKey {
 public:
  KeyType type() const { return type_; }
  unsigned bits() const { return bits_; }
  PublicKey public_key() const { return PublicKey(handle_, type_, bits_); }
  // PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----").
  std::string to_pem() const;
  const KeyHandle& handle() const { return *handle_; }

  PrivateKey(std::shared_ptr<const KeyHandle> h, KeyType t, unsigned bits)
      : handle_(std::move(h)), type_(t), bits_(bits) {}

 private:
  std::shared_ptr<const KeyHandle> handle_;
  KeyType type_;
  unsigned bits_;
};

// PEM: "RSA PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8, RSA or Ed25519).
base::Result<PrivateKey> load_private_key_pem(std::string_view pem);
// A raw Ed25519 seed, base64 of 32 bytes (RFC 8463 A.1, dkimpy key files).
base::Result<PrivateKey> load_ed25519_seed(std::string_view base64_seed);
// Either of the above, detected from the text.
base::Result<PrivateKey> load_private_key(std::string_view text);

// The p= value of a DKIM key record (whitespace allowed, RFC 6376 §3.6.1).
base::Result<PublicKey> parse_dkim_public_key(KeyType type, std::string_view p_base64);

// RSA (bits ≥ 1024; 2048 recommended, RFC 8301 §3.2) or Ed25519.
base::Result<PrivateKey> generate_key(KeyType type, unsigned rsa_bits = 2048);

// Sign a digest computed with `hash`: RSA PKCS#1 v1.5 (DigestInfo of `hash`);
// Ed25519 "pure" over the digest bytes (RFC 8463 §3).
base::Result<std::string> sign_digest(const PrivateKey& key, HashAlgorithm hash, std::string_view digest);
// True only when `signature` is valid for `digest`.
bool verify_digest(const PublicKey& key, HashAlgorithm hash, std::string_view digest,
                   std::string_view signature);

}  // namespace hikyaku::crypto
