#include "admin/check_dns.hpp"

#include <ostream>

#include "admin/dns_commands.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dmarc/record.hpp"
#include "auth/spf/check.hpp"
#include "base/file.hpp"
#include "base/strings.hpp"
#include "dns/unbound_resolver.hpp"

namespace hikyaku::admin {
namespace {

using Status = DnsFinding::Status;

std::string fqdn(std::string_view name) {
  std::string out(name);
  if (out.empty() || out.back() != '.') out += '.';
  return out;
}

std::string without_dot(std::string_view name) {
  std::string out = base::to_lower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// A lookup status that is not an answer, in words; empty for ok.
std::string failure_text(dns::Status status) {
  switch (status) {
    case dns::Status::ok: return "";
    case dns::Status::nxdomain: return "NXDOMAIN";
    case dns::Status::temp_error: return "DNS failure (SERVFAIL or timeout)";
    case dns::Status::perm_error: return "malformed DNS answer";
  }
  return "";
}

std::string join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

DnsFinding finding(Status status, std::string check, std::string subject, std::string detail,
                   std::string publish = {}) {
  return {status, std::move(check), std::move(subject), std::move(detail), std::move(publish)};
}

// The host's addresses: what `hostname` resolves to (A, then AAAA).
struct HostAddresses {
  std::vector<dns::IpAddress> addresses;
  DnsFinding finding;
};

HostAddresses host_addresses(const config::Config& config, dns::Resolver& resolver) {
  const std::string host = without_dot(config.hostname);
  auto a = resolver.a(host);
  auto aaaa = resolver.aaaa(host);
  HostAddresses out;
  for (const auto* r : {&a, &aaaa})
    if (r->status == dns::Status::ok) out.addresses.insert(out.addresses.end(), r->records.begin(), r->records.end());
  std::vector<std::string> texts;
  for (const auto& ip : out.addresses) texts.push_back(ip.to_string());
  if (a.status == dns::Status::temp_error || aaaa.status == dns::Status::temp_error) {
    // One family failing is still a failure: the other may be the one that
    // is missing (reported as such only when both answered).
    out.finding = finding(Status::dns_failure, "address", host,
                          "A/AAAA lookup failed (SERVFAIL or timeout)" +
                              (texts.empty() ? std::string() : "; got " + join(texts)));
    return out;
  }
  if (out.addresses.empty()) {
    const std::string why =
        a.status == dns::Status::nxdomain ? "the name does not exist (NXDOMAIN)" : "no A or AAAA record";
    out.finding = finding(Status::problem, "address", host, why + " for hostname",
                          ZoneRecord{fqdn(host), "A", "<this server's IPv4 address>"}.text());
    return out;
  }
  out.finding = finding(Status::ok, "address", host, join(texts));
  return out;
}

// FCrDNS: the PTR of `ip` names hostname, and hostname resolves to `ip`
// (true by construction: `ip` is one of hostname's addresses).
DnsFinding check_ptr(const config::Config& config, const dns::IpAddress& ip, dns::Resolver& resolver) {
  const std::string host = without_dot(config.hostname);
  const std::string subject = ip.to_string();
  const std::string publish = ZoneRecord{fqdn(ip.reverse_name()), "PTR", fqdn(host)}.text() +
                              " (set by whoever runs the address, often the hosting provider)";
  auto ptr = resolver.ptr(ip);
  if (ptr.status == dns::Status::temp_error)
    return finding(Status::dns_failure, "FCrDNS", subject, "PTR lookup failed (SERVFAIL or timeout)");
  if (ptr.status != dns::Status::ok || ptr.records.empty()) {
    const std::string why = ptr.status == dns::Status::ok ? std::string() : " (" + failure_text(ptr.status) + ")";
    return finding(Status::problem, "FCrDNS", subject, "no PTR record" + why, publish);
  }
  std::vector<std::string> names;
  for (const auto& name : ptr.records) {
    if (without_dot(name) == host) return finding(Status::ok, "FCrDNS", subject, "PTR " + host + ", A/AAAA back");
    names.push_back(without_dot(name));
  }
  return finding(Status::problem, "FCrDNS", subject, "PTR names " + join(names) + ", not " + host, publish);
}

// RFC 5321 §5.1: one of the MX exchanges is hostname.
DnsFinding check_mx(const config::Config& config, const std::string& domain, dns::Resolver& resolver) {
  const std::string host = without_dot(config.hostname);
  const std::string publish = mx_record(config, domain).text();
  auto mx = resolver.mx(domain);
  if (mx.status == dns::Status::temp_error)
    return finding(Status::dns_failure, "MX", domain, "MX lookup failed (SERVFAIL or timeout)");
  if (mx.status != dns::Status::ok)
    return finding(Status::problem, "MX", domain, "no MX record (" + failure_text(mx.status) + ")", publish);
  if (mx.records.empty()) {
    // RFC 5321 §5.1: without MX the domain itself is the mail host.
    if (domain == host) return finding(Status::ok, "MX", domain, "no MX; the domain is hostname itself (implicit MX)");
    return finding(Status::problem, "MX", domain, "no MX record", publish);
  }
  std::vector<std::string> others;
  bool here = false;
  for (const auto& r : mx.records) {
    const std::string exchange = without_dot(r.exchange);
    if (exchange.empty()) {
      // RFC 7505: "0 ." says the domain accepts no mail at all.
      return finding(Status::problem, "MX", domain, "null MX (RFC 7505): the domain accepts no mail", publish);
    }
    if (exchange == host) {
      here = true;
    } else {
      others.push_back(std::to_string(r.preference) + " " + exchange);
    }
  }
  if (!here)
    return finding(Status::problem, "MX", domain, "MX names " + join(others) + ", not " + host, publish);
  return finding(Status::ok, "MX", domain, host + (others.empty() ? "" : " (also " + join(others) + ")"));
}

// RFC 7208 §4: check_host for each of the host's addresses, with the
// domain's postmaster as sender (what a receiver checks for mail we send
// or forward with this envelope domain, or, for the HELO name, for mail
// with a null sender). `record` is what `hikyaku dns` prints for it.
DnsFinding check_spf(const config::Config& config, const std::string& domain, const ZoneRecord& record,
                     const HostAddresses& host, dns::Resolver& resolver, std::chrono::system_clock::time_point now) {
  const std::string hostname = without_dot(config.hostname);
  if (host.addresses.empty())
    return finding(Status::skipped, "SPF", domain, "not checked: " + hostname + " has no address (see above)");
  const std::string mechanism = record.data.find(" a ") != std::string::npos ? "a" : "mx";
  const std::string publish = record.text() + " (or add `" + mechanism + "` to the existing record)";
  auth::spf::Options options;
  options.receiver = hostname;
  options.now = now;
  std::vector<std::string> passed;
  for (const auto& ip : host.addresses) {
    auto outcome = auth::spf::check_host(resolver, ip, domain, "postmaster@" + domain, hostname, options);
    const std::string_view result = auth::spf::to_string(outcome.result);
    const std::string detail = outcome.detail.empty() ? std::string() : " (" + outcome.detail + ")";
    switch (outcome.result) {
      case auth::spf::Result::pass:
        passed.push_back(ip.to_string());
        break;
      case auth::spf::Result::temperror:
        return finding(Status::dns_failure, "SPF", domain, "temperror for " + ip.to_string() + detail);
      case auth::spf::Result::none:
        return finding(Status::problem, "SPF", domain, "no SPF record", record.text());
      case auth::spf::Result::permerror:
        return finding(Status::problem, "SPF", domain, "permerror: the record is broken" + detail, publish);
      default: {
        std::string why(result);
        why.append(" for ").append(ip.to_string()).append(" (").append(hostname);
        why.append("): the record does not cover this host");
        return finding(Status::problem, "SPF", domain, why, publish);
      }
    }
  }
  return finding(Status::ok, "SPF", domain, "pass for " + join(passed));
}

// RFC 6376 §3.6.1: the record at selector._domainkey carries our key (k=
// and p= equal). More than one key record there is a problem too: a
// verifier may take any of them (§3.6.2.2).
DnsFinding check_dkim(const config::Domain& domain, const DkimKeys& keys, dns::Resolver& resolver) {
  if (!domain.dkim) return finding(Status::skipped, "DKIM", domain.name, "dkim = false: mail is not signed");
  auto key = keys.find(domain.name);
  if (domain.dkim_selector.empty() || domain.dkim_key.empty() || key == keys.end())
    return finding(Status::problem, "DKIM", domain.name,
                   "no DKIM key configured: run `hikyaku dkim keygen " + domain.name + "`, then check again");
  if (!key->second)
    return finding(Status::config_error, "DKIM", domain.name,
                   "cannot read dkim_key " + domain.dkim_key.string() + ": " + key->second.error().message);
  const crypto::PublicKey& ours = *key->second;
  const ZoneRecord record = dkim_record(domain.dkim_selector, domain.name, ours);
  const std::string name = without_dot(record.owner);
  auto txt = resolver.txt(name);
  if (txt.status == dns::Status::temp_error)
    return finding(Status::dns_failure, "DKIM", name, "TXT lookup failed (SERVFAIL or timeout)");
  if (txt.status != dns::Status::ok)
    return finding(Status::problem, "DKIM", name, "no key record (" + failure_text(txt.status) + ")", record.text());
  int records = 0;
  bool match = false;
  std::string mismatch;
  for (const auto& text : txt.records) {
    auto parsed = auth::dkim::parse_key_record(text);
    if (!parsed) {
      if (mismatch.empty()) mismatch = "a record does not parse: " + parsed.error().message;
      continue;
    }
    ++records;
    if (parsed->k != ours.type()) {
      mismatch = "k=" + std::string(crypto::key_type_name(parsed->k)) + ", the configured key is " +
                 std::string(crypto::key_type_name(ours.type()));
    } else if (parsed->p.empty()) {
      mismatch = "the published key is revoked (empty p=)";
    } else if (parsed->p != ours.dkim_p()) {
      mismatch = "p= is a different key from " + domain.dkim_key.string();
    } else {
      match = true;
    }
  }
  if (match && records == 1) return finding(Status::ok, "DKIM", name, "p= matches " + domain.dkim_key.string());
  if (match)
    return finding(Status::problem, "DKIM", name,
                   std::to_string(records) + " key records: verifiers may pick another; keep only", record.text());
  if (records == 0 && mismatch.empty())
    return finding(Status::problem, "DKIM", name, "no key record", record.text());
  return finding(Status::problem, "DKIM", name, mismatch, record.text());
}

// RFC 7489 §6.1: exactly one DMARC record at _dmarc.domain, and it parses
// (§6.6.3: with several, none applies).
DnsFinding check_dmarc(const std::string& domain, dns::Resolver& resolver) {
  const ZoneRecord record = dmarc_record(domain);
  const std::string name = without_dot(record.owner);
  auto txt = resolver.txt(name);
  if (txt.status == dns::Status::temp_error)
    return finding(Status::dns_failure, "DMARC", name, "TXT lookup failed (SERVFAIL or timeout)");
  if (txt.status != dns::Status::ok)
    return finding(Status::problem, "DMARC", name, "no DMARC record (" + failure_text(txt.status) + ")",
                   record.text());
  std::vector<std::string> found;
  for (const auto& text : txt.records)
    if (auth::dmarc::is_dmarc_record(text)) found.push_back(text);
  if (found.empty()) return finding(Status::problem, "DMARC", name, "no DMARC record", record.text());
  if (found.size() > 1)
    return finding(Status::problem, "DMARC", name,
                   std::to_string(found.size()) + " DMARC records: none applies (RFC 7489 §6.6.3); keep one",
                   record.text());
  auto parsed = auth::dmarc::parse_record(found.front());
  if (!parsed)
    return finding(Status::problem, "DMARC", name, "the record does not parse: " + parsed.error().message,
                   record.text());
  if (parsed->p_was_invalid)
    return finding(Status::problem, "DMARC", name, "p= or sp= is invalid (treated as p=none)", record.text());
  return finding(Status::ok, "DMARC", name, "p=" + std::string(auth::dmarc::to_string(parsed->p)));
}

}  // namespace

std::string DnsFinding::line() const {
  std::string out = check + " " + subject + ": ";
  switch (status) {
    case Status::ok: out += "ok: "; break;
    case Status::problem: out += "problem: "; break;
    case Status::dns_failure: out += "dns failure: "; break;
    case Status::skipped: out += "skipped: "; break;
    case Status::config_error: out += "error: "; break;
  }
  out += detail;
  if (!publish.empty()) out += "; publish: " + publish;
  return out;
}

std::vector<DnsFinding> check_dns_records(const config::Config& config, const DkimKeys& keys,
                                          dns::Resolver& resolver, std::chrono::system_clock::time_point now) {
  std::vector<DnsFinding> out;
  // The host first: SPF and FCrDNS are about its addresses.
  HostAddresses host = host_addresses(config, resolver);
  out.push_back(host.finding);
  for (const auto& ip : host.addresses) out.push_back(check_ptr(config, ip, resolver));
  for (const auto& domain : config.domains) {
    out.push_back(check_mx(config, domain.name, resolver));
    out.push_back(check_spf(config, domain.name, spf_record(domain.name), host, resolver, now));
    out.push_back(check_dkim(domain, keys, resolver));
    out.push_back(check_dmarc(domain.name, resolver));
  }
  // Forwarded mail leaves with an SRS address at [srs] domain: receivers
  // check its SPF, and bounces to it must come back here.
  if (!config.srs.domain.empty() && config.find_domain(config.srs.domain) == nullptr) {
    const std::string srs_domain = without_dot(config.srs.domain);
    out.push_back(check_mx(config, srs_domain, resolver));
    out.push_back(check_spf(config, srs_domain, spf_record(srs_domain), host, resolver, now));
  }
  // Notices and DSNs leave with a null sender: receivers check the HELO
  // name's SPF instead (RFC 7208 §2.3).
  if (helo_needs_spf(config))
    out.push_back(check_spf(config, without_dot(config.hostname), helo_spf_record(config), host, resolver, now));
  return out;
}

int check_dns_status(const std::vector<DnsFinding>& findings) {
  int status = 0;
  for (const auto& f : findings) {
    if (f.status == Status::config_error) return 2;
    if (f.status == Status::problem || f.status == Status::dns_failure) status = 1;
  }
  return status;
}

int check_dns(const config::Config& config, std::ostream& out, std::ostream& err) {
  // Sanity checks.
  if (config.domains.empty()) {
    err << "no [[domain]] in " << config.source.string() << "\n";
    return 2;
  }
  // The public half of each configured signing key.
  DkimKeys keys;
  for (const auto& domain : config.domains) {
    if (!domain.dkim || domain.dkim_selector.empty() || domain.dkim_key.empty()) continue;
    auto text = base::read_file(domain.dkim_key);
    auto key = text ? crypto::load_private_key(*text) : base::Result<crypto::PrivateKey>(text.error());
    if (key) {
      keys.emplace(domain.name, key->public_key());
    } else {
      keys.emplace(domain.name, key.error());
    }
  }
  // Ask as the server would: the [dns] servers, else the system's resolvers.
  auto resolver = dns::UnboundResolver::create(config.dns.servers);
  if (!resolver) {
    err << "cannot set up the resolver: " << resolver.error().message << "\n";
    return 2;
  }
  auto findings = check_dns_records(config, keys, **resolver, std::chrono::system_clock::now());
  for (const auto& f : findings) out << f.line() << "\n";
  const int status = check_dns_status(findings);
  out << (status == 0 ? "all ok" : status == 1 ? "problems found" : "configuration error") << "\n";
  return status;
}

}  // namespace hikyaku::admin
