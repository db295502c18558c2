// Purpose:   `hikyaku check dns`: ask the DNS what is published for each
//            [[domain]] (and the [srs] domain) and compare it with what the
//            configuration needs — MX here, SPF passing for this host's
//            addresses, the DKIM key record matching the configured key, a
//            DMARC record that parses, and forward-confirmed reverse DNS of
//            `hostname`. Every problem names the record to publish, taken from
//            dns_commands.hpp (the text `hikyaku dns` prints).
//            "Here" means the configuration's `hostname`: an MX passes when
//            one of its exchanges is that name. (Comparing the MX hosts'
//            addresses with ours would need to know which addresses are ours;
//            behind NAT the machine cannot tell, and the hostname is what
//            every other record — SPF's `mx`, the PTR, the TLS name — already
//            points at.) This host's addresses are what `hostname` resolves
//            to (A and AAAA).
// Standards: RFC 5321 §5.1 (MX, implicit MX), RFC 7505 (null MX), RFC 7208
//            §4 (check_host, evaluated by auth/spf), RFC 6376 §3.6.1 (key
//            record: k= and p=), RFC 7489 §6.1, §6.6.3 (one DMARC record at
//            _dmarc, parsed by auth/dmarc), RFC 8601 §3 / FCrDNS (PTR names
//            the host, the host resolves back).
// Trust:     DNS answers are untrusted and only compared and printed; the
//            private keys are read by the caller and only their public halves
//            reach this code.
// Concurrency: check_dns_records() is synchronous against a dns::Resolver
//            (the FakeResolver in tests, UnboundResolver's blocking role in
//            the command); one call, no shared state.
// Errors:    DNS failures (SERVFAIL, timeout) are findings of their own,
//            never "missing". check_dns() returns 0 when every check is ok, 1
//            when one found a problem or DNS failed, 2 on a configuration
//            error (no [[domain]], an unreadable key, a resolver that cannot
//            be set up).
#pragma once

#include <chrono>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "crypto/key.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::admin {

struct DnsFinding {
  enum class Status {
    ok,
    problem,       // published differently from what the configuration needs
    dns_failure,   // the answer could not be had (SERVFAIL, timeout): not "missing"
    skipped,       // cannot be checked because of another finding, or not needed
    config_error,  // the configuration itself is in the way (unreadable key)
  };
  Status status = Status::ok;
  std::string check;    // "MX", "SPF", "DKIM", "DMARC", "address", "FCrDNS"
  std::string subject;  // the domain, or the host name / address checked
  std::string detail;   // what was found
  std::string publish;  // zone-file lines to publish (problems), else empty

  // "CHECK SUBJECT: ok: DETAIL" / "…: problem: DETAIL; publish: RECORD".
  std::string line() const;
};

// The public key of each [[domain]]'s configured dkim_key, by domain name;
// an error when the file could not be read. Domains without a key (or with
// dkim = false) have no entry.
using DkimKeys = std::map<std::string, base::Result<crypto::PublicKey>>;

// The comparison: a pure function of the configuration, the keys and the
// resolver's answers (`now` feeds SPF's %{t}). One finding per check, in
// a fixed order: the host's addresses, FCrDNS per address, then per domain
// MX, SPF, DKIM, DMARC, then the [srs] domain's MX and SPF when it is not a
// [[domain]].
std::vector<DnsFinding> check_dns_records(const config::Config& config, const DkimKeys& keys,
                                          dns::Resolver& resolver, std::chrono::system_clock::time_point now);

// 0 when every finding is ok or skipped, 2 when one is a configuration
// error, else 1.
int check_dns_status(const std::vector<DnsFinding>& findings);

// The command: reads the keys, asks the configured [dns] servers (or the
// system's resolvers) through libunbound, prints one line per finding.
int check_dns(const config::Config& config, std::ostream& out, std::ostream& err);

}  // namespace hikyaku::admin
