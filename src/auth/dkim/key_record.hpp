// Purpose:   DKIM public key records (TXT at selector._domainkey.domain):
//            parse, check, and fetch through the dns::Resolver interface.
// Standards: RFC 6376 §3.6.1 (v=, h=, k=, n=, p=, s=, t=), §3.6.2.2 (TXT
//            lookup), §6.1.2 (lookup outcomes: TEMPFAIL vs PERMFAIL),
//            RFC 8463 §4 (k=ed25519), RFC 8301 §3.2 (RSA key sizes).
// Trust:     DNS answers are untrusted; records are parsed strictly.
// Errors:    KeyLookup carries temperror/permerror with a reason.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "crypto/key.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::dkim {

struct KeyRecord {
  std::vector<std::string> h;   // acceptable hash algorithms (empty: all)
  crypto::KeyType k = crypto::KeyType::rsa;  // key type
  std::string p;                // public key data (base64, whitespace removed); empty = revoked
  std::vector<std::string> s;   // service types ("*" or "email")
  bool testing = false;         // t=y
  bool strict = false;          // t=s: i= domain must equal d=
};

base::Result<KeyRecord> parse_key_record(std::string_view txt);

struct KeyLookup {
  enum class Outcome { ok, temperror, permerror } outcome = Outcome::ok;
  std::string detail;
  std::optional<KeyRecord> record;
  std::optional<crypto::PublicKey> key;
};

// The TXT record text to publish at selector._domainkey.domain:
// "v=DKIM1; k=rsa; p=…" (RFC 6376 §3.6.1, RFC 8463 §4).
std::string format_key_record(const crypto::PublicKey& key);

// Query `selector._domainkey.domain` and parse the first usable record.
KeyLookup fetch_key(dns::Resolver& resolver, std::string_view selector, std::string_view domain);

}  // namespace hikyaku::auth::dkim
