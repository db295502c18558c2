// Purpose:   The operator subcommands behind `hikyaku dkim keygen` and
//            `hikyaku dns`: generate a DKIM signing key and print the DNS
//            records a domain must publish (MX, SPF, DKIM, DMARC), in
//            zone-file syntax, so they can be pasted into a zone or a DNS
//            provider's form. Plain functions printing to the given streams.
// Standards: RFC 6376 §3.6.1-3.6.2 (DKIM key record, selector._domainkey),
//            RFC 8463 §4 (Ed25519 k=/p=), RFC 8301 §3.2 (RSA 2048), RFC 7208
//            §3 (SPF record), RFC 7489 §6.1, §6.3 (DMARC record at _dmarc),
//            RFC 1035 §3.3.14, §5.1 (TXT character-strings of ≤255 octets).
// Trust:     run by the operator. Private keys are secrets: written once,
//            mode 0600, never overwritten, never printed. Domain and selector
//            become file names, so they are checked to be DNS labels first.
// Concurrency: none; one call per process.
// Errors:    messages on `err`; return 0 on success, 1 on failure, 2 on a
//            usage error (bad algorithm, domain or selector).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "crypto/key.hpp"

namespace hikyaku::admin {

// The selector `hikyaku dkim keygen` uses when --selector is not given.
inline constexpr std::string_view kDefaultDkimSelector = "hk1";

// Generate a DKIM key ("rsa": RSA 2048, "ed25519") for `domain` and write
// it as PEM (mode 0600), refusing to overwrite, where the configuration
// will look for it: the dkim_key of the domain's [[domain]] table when it
// names one (with its dkim_selector unless `selector` is given — a
// different one is refused), else DATA_DIR/keys/<domain>.<selector>.pem.
// Prints the TXT record to publish and whatever the [[domain]] table still
// needs (absolute paths).
int dkim_keygen(const config::Config& config, const std::string& domain, const std::optional<std::string>& selector,
                const std::string& algo, std::ostream& out, std::ostream& err);

// Print, for every [[domain]], the MX, SPF, DKIM and DMARC records to publish
// (and MX and SPF for the [srs] domain when it is not a [[domain]]).
int dns_records(const config::Config& config, std::ostream& out, std::ostream& err);

// One record to publish. The one source of record text: `hikyaku dns`
// prints these, and `hikyaku check dns` names them after a problem.
struct ZoneRecord {
  std::string owner;  // absolute, with the trailing dot
  std::string type;   // "MX", "TXT", "A", "AAAA", "PTR"
  std::string data;   // presentation form; for TXT the value itself, unquoted
  // The zone-file line: owner padded to a column, "IN TYPE DATA" (TXT data
  // as quoted character-strings).
  std::string line() const;
  // The same record with single spaces, for a line of prose
  // (`hikyaku check dns`: "...; publish: example.com. IN MX 10 mx.example.com.").
  std::string text() const;
};

// RFC 5321 §5.1: mail for `domain` goes to the configuration's hostname.
ZoneRecord mx_record(const config::Config& config, std::string_view domain);
// RFC 7208 §3: only the domain's MX hosts send its mail ("v=spf1 mx -all").
ZoneRecord spf_record(std::string_view domain);
// The SPF record of the HELO name (`hostname`): receivers check it for mail
// with a null sender — the owner's notices, DSNs (RFC 7208 §2.3, §2.4).
ZoneRecord helo_spf_record(const config::Config& config);
// Does the HELO name need its own SPF record (it is no [[domain]] and not
// the [srs] domain, whose records cover it)?
bool helo_needs_spf(const config::Config& config);
// RFC 6376 §3.6.1: the key record at selector._domainkey.domain.
ZoneRecord dkim_record(std::string_view selector, std::string_view domain, const crypto::PublicKey& key);
// RFC 7489 §6.1, §6.3: p=quarantine with relaxed alignment.
ZoneRecord dmarc_record(std::string_view domain);

// A TXT value as zone-file character-strings: quoted, each ≤255 octets,
// separated by spaces (RFC 1035 §5.1). Exposed for tests.
std::string zone_txt_strings(std::string_view value);

}  // namespace hikyaku::admin
