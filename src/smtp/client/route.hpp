// Purpose:   The sans-I/O routing rules of the SMTP client: order the MX
//            hosts of a domain, recognise a null MX, drop ourselves from the
//            list (a forwarding loop; the own-listener check is
//            config::Listen::is_own); resolve_route() asks a
//            dns::Resolver view for the MX, A and AAAA records (sans-I/O:
//            the caller decides how the lookups are made).
// Standards: RFC 5321 §5.1 (MX order, equal preferences randomised,
//            implicit MX, "if it finds its own name ... discard it and any
//            lower-preference records"), RFC 7505 (null MX).
// Trust:     MX names come from DNS (untrusted); they are only compared.
// Concurrency: pure functions; the caller owns the random generator.
// Errors:    none (empty results mean "no route").
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "smtp/client/outcome.hpp"

namespace hikyaku::smtp::client {

struct MxHost {
  uint16_t preference = 0;
  std::string name;  // "" is the root "." (null MX)
};

// RFC 7505 §3: exactly one MX whose exchange is "." — the domain accepts no
// mail.
bool is_null_mx(const std::vector<MxHost>& mx);

// RFC 5321 §5.1: lowest preference first, equal preferences shuffled;
// "." entries (a null MX mixed with real ones) are dropped. If
// `own_hostname` is among them, it and every host of equal or higher
// preference value are dropped; `found_self` tells the caller (when nothing
// remains it is a routing loop).
std::vector<MxHost> order_mx(std::vector<MxHost> mx, std::string_view own_hostname, std::mt19937& rng,
                             bool* found_self = nullptr);


}  // namespace hikyaku::smtp::client

namespace hikyaku::smtp::client {

// One host of a resolved route, with its addresses in the order to try.
struct RouteHost {
  std::string name;  // MX exchange or the domain itself (implicit MX)
  uint16_t preference = 0;
  std::vector<std::string> addresses;  // textual IPs
};

}  // namespace hikyaku::smtp::client

namespace hikyaku::smtp::client {

// RFC 5321 §5.1 routing: MX hosts in order with their A then AAAA
// addresses, or the domain itself as implicit MX when it has no MX records.
// `failure` is set instead when the domain does not exist (5.1.2), has a
// null MX (5.1.10), routes only to ourselves (5.4.6), has no usable address
// (5.4.4) or DNS failed temporarily (4.4.3).
struct ResolvedRoute {
  std::vector<RouteHost> hosts;
  std::optional<Outcome> failure;
};
ResolvedRoute resolve_route(dns::Resolver& resolver, std::string_view domain, std::string_view own_hostname,
                            std::mt19937& rng);

// A [[route]]'s next hop (issue 14): an address as it is, or a host name's
// A then AAAA addresses — no MX lookup. A host without an address is a
// temporary failure (4.4.4 or 4.4.3): the operator's to fix, the mail waits.
ResolvedRoute resolve_next_hop(dns::Resolver& resolver, const config::NextHop& hop);

}  // namespace hikyaku::smtp::client
