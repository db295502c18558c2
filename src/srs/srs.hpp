// Purpose:   The Sender Rewriting Scheme: rewrite a forwarded message's
//            envelope sender to an address at our domain that SPF accepts and
//            that only we can reverse (a keyed hash and a timestamp), and
//            reverse bounces to such addresses back to the original sender.
// Standards: the Shevek SRS paper / libsrs2 / postsrsd address format
//            (no RFC): SRS0=HHHH=TT=domain=local@forwarder and
//            SRS1=HHHH=orighost==HHHH=TT=domain=local@forwarder, with HHHH the
//            first 4 base64 characters of HMAC-SHA1 (RFC 2104) over the
//            lowercased fields and TT the day number mod 1024 in 2 base32
//            characters (RFC 4648 §6 alphabet). RFC 7208 §1.1.3 and
//            Appendix D explain why forwarders rewrite.
// Trust:     reverse() parses untrusted local parts from bounce recipients;
//            the secrets never leave this object and are never logged.
//            Hidden forwards (issue 4) sign with a key derived per forward:
//            HMAC-SHA256(secret, "hikyaku-srs-hidden:" + lowercase(forward
//            address)); the address keeps the standard SRS0/SRS1 format and
//            decode() tells which forward's key matched, without state.
// Concurrency: const methods; safe to share once built (the Clock must be).
// Errors:    reverse() returns errors as values (malformed, bad hash,
//            expired); forward() cannot fail. No secrets is a config bug.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "mail/address.hpp"

namespace hikyaku::srs {

struct Config {
  // The first secret signs; every secret verifies (key rotation).
  std::vector<std::string> secrets;
  // Addresses older than this are refused when reversed (libsrs2 default 21).
  int max_age_days = 21;
  // Hash characters kept (libsrs2 and postsrsd use 4).
  size_t hash_length = 4;
  // Forward identities (the hidden forward addresses) that sign with their
  // own derived key; decode() tries these before the plain secrets so that
  // a bounce of a hidden forward is never taken for an ordinary one.
  std::vector<std::string> identities;
};

enum class Errc { ok, not_srs, malformed, bad_hash, expired };
std::string_view to_string(Errc e);

struct Decoded {
  Errc error = Errc::ok;
  mail::Address address;  // valid when error == Errc::ok
  std::string identity;   // the Config::identities entry whose key matched; empty: the plain secret
};

// The per-identity signing key derived from `secret` (see Purpose).
std::string derive_identity_key(std::string_view secret, std::string_view identity);

// Does this local part start with "SRS0" or "SRS1" and a separator
// (case-insensitively)?
bool is_srs(std::string_view local);

class Rewriter {
 public:
  // `secrets` must not be empty (checked: configuration validation refuses it).
  Rewriter(Config config, const base::Clock& clock);

  // Rewrite `sender` to an address at `srs_domain`: SRS0 for an ordinary
  // address, SRS1 for an SRS0/SRS1 address (re-forwarding). The null sender
  // and (without `identity`) senders already at `srs_domain` are returned
  // unchanged.
  // `identity` non-empty signs with that forward's derived key (it need not
  // be in Config::identities, but only listed ones are recognised back).
  mail::Address forward(const mail::Address& sender, std::string_view srs_domain,
                        std::string_view identity = {}) const;

  // Reverse one level: SRS0 → the original sender; SRS1 → the SRS0 address
  // at the first forwarder.
  Decoded decode(const mail::Address& address) const;
  // decode() as a Result; the error message starts with to_string(Errc).
  base::Result<mail::Address> reverse(const mail::Address& address) const;

 private:
  std::string hash(std::string_view secret, std::initializer_list<std::string_view> fields) const;
  // Which key made `given`: nullopt none; "" a plain secret; else the identity.
  std::optional<std::string> hash_owner(std::string_view given, std::initializer_list<std::string_view> fields) const;
  std::string timestamp() const;
  bool timestamp_ok(std::string_view tt) const;

  Config config_;
  const base::Clock& clock_;
};

// The [srs] secret file: one secret per non-empty line (surrounding white
// space ignored), the first signs. An unreadable or empty file is an error.
base::Result<std::vector<std::string>> read_secrets(const std::filesystem::path& file);
// A warning when every user may read the secret file (with a secret anyone
// can make SRS addresses that this server reverses, and relays mail to);
// nullopt when it is private or cannot be examined (read_secrets says why).
std::optional<std::string> secret_file_warning(const std::filesystem::path& file);

}  // namespace hikyaku::srs
