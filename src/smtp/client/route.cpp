#include "smtp/client/route.hpp"

#include <algorithm>
#include <cctype>

#include "base/strings.hpp"

namespace hikyaku::smtp::client {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}


}  // namespace

bool is_null_mx(const std::vector<MxHost>& mx) { return mx.size() == 1 && lower(mx[0].name).empty(); }

std::vector<MxHost> order_mx(std::vector<MxHost> mx, std::string_view own_hostname, std::mt19937& rng,
                             bool* found_self) {
  if (found_self) *found_self = false;
  std::erase_if(mx, [](const MxHost& h) { return lower(h.name).empty(); });
  // Shuffle first, then a stable sort by preference: equal preferences end
  // up in random order (RFC 5321 §5.1 "MUST be randomized").
  std::shuffle(mx.begin(), mx.end(), rng);
  std::stable_sort(mx.begin(), mx.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  // RFC 5321 §5.1: our own name, and everything not better than it, goes.
  std::string self = lower(own_hostname);
  if (!self.empty()) {
    for (size_t i = 0; i < mx.size(); ++i) {
      if (lower(mx[i].name) == self) {
        if (found_self) *found_self = true;
        uint16_t cut = mx[i].preference;
        std::erase_if(mx, [cut](const MxHost& h) { return h.preference >= cut; });
        break;
      }
    }
  }
  return mx;
}

ResolvedRoute resolve_route(dns::Resolver& resolver, std::string_view domain, std::string_view own_hostname,
                            std::mt19937& rng) {
  ResolvedRoute out;
  std::string d(domain);

  // RFC 5321 §4.1.3, §5.1: an address literal ("[192.0.2.1]",
  // "[IPv6:2001:db8::1]") names the host itself: no MX lookup.
  if (d.size() > 2 && d.front() == '[' && d.back() == ']') {
    std::string_view ip = std::string_view(d).substr(1, d.size() - 2);
    const bool v6 = base::istarts_with(ip, "IPv6:");
    if (v6) ip.remove_prefix(5);
    const auto address = dns::IpAddress::parse(ip);
    if (!address || address->v6 != v6) {
      out.failure = classify(Failure::unroutable, "not an address literal: " + d);
      return out;
    }
    out.hosts.push_back(RouteHost{.name = d, .preference = 0, .addresses = {std::string(ip)}});
    return out;
  }

  // RFC 5321 §5.1: "the SMTP client first looks up MX records"; NXDOMAIN
  // is final, a temporary error is retried later.
  auto mx = resolver.mx(d);
  if (mx.status == dns::Status::nxdomain) {
    out.failure = classify(Failure::dns_nxdomain, "domain " + d + " does not exist (NXDOMAIN)");
    return out;
  }
  if (mx.status != dns::Status::ok) {
    out.failure = classify(Failure::dns_temp, "MX lookup for " + d + " failed temporarily");
    return out;
  }
  std::vector<MxHost> hosts;
  for (const auto& r : mx.records) hosts.push_back({r.preference, r.exchange});
  if (!hosts.empty()) {
    // RFC 7505 §3: a lone "." MX: this domain accepts no mail.
    if (is_null_mx(hosts)) {
      out.failure = classify(Failure::null_mx, "domain " + d + " accepts no mail (null MX)");
      return out;
    }
    bool found_self = false;
    hosts = order_mx(std::move(hosts), own_hostname, rng, &found_self);
    if (hosts.empty()) {
      out.failure = found_self ? classify(Failure::loop, "mail for " + d + " loops back to myself (MX)")
                               : classify(Failure::unroutable, "no usable MX host for " + d);
      return out;
    }
  } else {
    // RFC 5321 §5.1: no MX records: the domain itself is the implicit MX.
    hosts.push_back({0, d});
  }

  // The addresses of each host, A before AAAA.
  bool temp = false;
  for (const auto& h : hosts) {
    RouteHost rh;
    rh.name = h.name;
    rh.preference = h.preference;
    auto a = resolver.a(h.name);
    auto aaaa = resolver.aaaa(h.name);
    if (a.status == dns::Status::temp_error || aaaa.status == dns::Status::temp_error) temp = true;
    for (const auto& ip : a.records) rh.addresses.push_back(ip.to_string());
    for (const auto& ip : aaaa.records) rh.addresses.push_back(ip.to_string());
    if (!rh.addresses.empty()) out.hosts.push_back(std::move(rh));
  }
  if (out.hosts.empty()) {
    out.failure = temp ? classify(Failure::dns_temp, "address lookup for the MX hosts of " + d + " failed temporarily")
                       : classify(Failure::unroutable, "no MX host of " + d + " has an address");
  }
  return out;
}

ResolvedRoute resolve_next_hop(dns::Resolver& resolver, const config::NextHop& hop) {
  ResolvedRoute out;
  RouteHost host;
  host.name = hop.host;
  if (hop.kind == config::NextHop::Kind::address) {
    host.addresses.push_back(hop.host);
    out.hosts.push_back(std::move(host));
    return out;
  }
  auto a = resolver.a(hop.host);
  auto aaaa = resolver.aaaa(hop.host);
  for (const auto& ip : a.records) host.addresses.push_back(ip.to_string());
  for (const auto& ip : aaaa.records) host.addresses.push_back(ip.to_string());
  if (!host.addresses.empty()) {
    out.hosts.push_back(std::move(host));
    return out;
  }
  if (a.status == dns::Status::temp_error || aaaa.status == dns::Status::temp_error) {
    out.failure = classify(Failure::dns_temp, "address lookup for route next hop " + hop.host + " failed temporarily");
  } else {
    out.failure = classify(Failure::unroutable, "route next hop " + hop.host + " has no address (A/AAAA)");
    out.failure->kind = Outcome::Kind::temporary;  // a configuration mistake: the mail waits for the fix
    out.failure->status = "4.4.4";
  }
  return out;
}

}  // namespace hikyaku::smtp::client
