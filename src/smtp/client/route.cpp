#include "smtp/client/route.hpp"

#include <algorithm>
#include <cctype>

namespace hikyaku::smtp::client {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

bool is_loopback(std::string_view ip) {
  return ip.starts_with("127.") || ip == "::1" || ip.starts_with("::ffff:127.");
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

bool is_own_listener(std::string_view ip, uint16_t port, const config::Listen& listen) {
  for (const auto* list : {&listen.smtp, &listen.submission, &listen.submissions, &listen.pop3, &listen.pop3s,
                           &listen.imap, &listen.imaps, &listen.http}) {
    for (const auto& ep : *list) {
      if (ep.port != port) continue;
      std::string host = lower(ep.host);
      if (host == lower(ip)) return true;
      if ((host == "0.0.0.0" || host == "::" || host.empty()) && is_loopback(ip)) return true;
    }
  }
  return false;
}


ResolvedRoute resolve_route(dns::Resolver& resolver, std::string_view domain, std::string_view own_hostname,
                            std::mt19937& rng) {
  ResolvedRoute out;
  std::string d(domain);

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

}  // namespace hikyaku::smtp::client
