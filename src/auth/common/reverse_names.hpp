// Purpose:   A client address's reverse names confirmed forward: its PTR
//            names whose A (IPv4) or AAAA (IPv6) records include the
//            address. Shared by SPF's "ptr" mechanism and %{p} macro and by
//            the iprev check, which read the same lookups differently.
// Standards: RFC 7208 §5.5 (validated domain names), RFC 8601 §3 (iprev),
//            RFC 1912 §2.1.
// Trust:     every DNS answer is untrusted; at most `max_names` PTR names
//            are followed (an address can publish any number).
// Concurrency: synchronous and stateless over the Resolver it is given.
// Errors:    none: the lookups' outcomes are reported for the caller to
//            judge (SPF skips a failed name, iprev reports temperror).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

namespace hikyaku::auth::common {

struct ReverseNames {
  dns::Status ptr_status = dns::Status::ok;  // of the PTR lookup
  bool has_ptr = false;                      // it answered at least one name
  std::vector<std::string> confirmed;        // in PTR order, without trailing dot
  bool forward_temp_error = false;           // a followed name's A/AAAA lookup failed temporarily
};

ReverseNames confirmed_reverse_names(dns::Resolver& resolver, const dns::IpAddress& ip, size_t max_names);

}  // namespace hikyaku::auth::common
