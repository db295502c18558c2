// Purpose:   The DKIM-Signature field as a value (also the ARC-Message-
//            Signature, which has the same tags with i= as instance), header
//            selection for h=, the header hash, and the field formatter used
//            by the DKIM and ARC signers.
// Standards: RFC 6376 §3.5 (tags, required tags, syntax), §3.7 (hash input:
//            the h= fields bottom-up then the signature field with b= empty),
//            §5.4.2 (repeated and missing header names), RFC 8301 (rsa-sha1),
//            RFC 8463 (ed25519-sha256), RFC 8617 §4.1.2 (AMS).
// Trust:     parses untrusted header text; every error is a value.
// Errors:    base::Result with the reason (the verifier maps it to permerror).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/common/canonicalization.hpp"
#include "auth/common/message.hpp"
#include "base/result.hpp"
#include "crypto/hash.hpp"
#include "crypto/key.hpp"

namespace hikyaku::auth::dkim {

enum class Algorithm { rsa_sha256, rsa_sha1, ed25519_sha256 };

std::optional<Algorithm> parse_algorithm(std::string_view a);
std::string_view algorithm_name(Algorithm a);
crypto::HashAlgorithm hash_of(Algorithm a);
crypto::KeyType key_type_of(Algorithm a);

enum class SignatureKind { dkim, arc_message };

struct Signature {
  std::string v;                        // version ("1"; absent in AMS)
  Algorithm a = Algorithm::rsa_sha256;  // signing algorithm
  std::string a_text;                   // a= as written
  std::string b;                        // signature, decoded
  std::string bh;                       // body hash, decoded
  common::CanonicalizationPair c;       // canonicalisation
  std::string d;                        // SDID (signing domain)
  std::vector<std::string> h;           // signed header field names, lowercased
  std::string i;                        // AUID (DKIM) or instance (AMS)
  std::optional<uint64_t> l;            // body length count
  std::string s;                        // selector
  std::optional<uint64_t> t;            // signature timestamp
  std::optional<uint64_t> x;            // signature expiration
};

// Parse and check a signature field value (RFC 6376 §6.1.1 syntax checks).
base::Result<Signature> parse_signature(std::string_view value, SignatureKind kind);

// RFC 1035 §2.3.1 style domain check, also for selectors (labels of letters,
// digits, '-' and '_'), so "a.com(.evil.com" is refused.
bool is_valid_domain(std::string_view domain);

// RFC 6376 §5.4.2: for each name, the last not-yet-used instance from the
// bottom; names with no instance left select nothing.
std::vector<const common::HeaderField*> select_headers(const common::ParsedMessage& message,
                                                       const std::vector<std::string>& names);

// RFC 6376 §3.7: hash of the canonical selected fields followed by the
// canonical signature field (b= emptied) without its trailing CRLF.
std::string hash_headers(const std::vector<const common::HeaderField*>& fields, common::Canonicalization c,
                         std::string_view signature_field_raw, crypto::HashAlgorithm hash);

// Whether the b= value is folded over several lines. ARC fields keep it on
// one line: an ARC-Seal signs the AMS as written (relaxed canonicalisation
// turns a fold into a space inside b=), and the ValiMail suite and dkimpy's
// "standardize" form expect the unfolded value.
enum class FoldB { yes, no };

// "Name: t1=v1; t2=v2;\r\n t3=…" folded at tag boundaries near 78 columns;
// b= starts on its own line, its value folded in 72-column pieces if asked.
std::string format_field(std::string_view name, const std::vector<std::pair<std::string, std::string>>& tags,
                         FoldB fold_b = FoldB::yes);

// Compute b= over the header hash and fill it in: `tags` must contain {"b", …}.
base::Result<std::string> sign_field(std::string_view name, std::vector<std::pair<std::string, std::string>> tags,
                                     const std::vector<const common::HeaderField*>& fields,
                                     common::Canonicalization c, const crypto::PrivateKey& key, Algorithm a,
                                     FoldB fold_b = FoldB::yes);

}  // namespace hikyaku::auth::dkim
