// Purpose:   The "iprev" check of an SMTP client (forward-confirmed
//            reverse DNS): the PTR names of its address, and the first of
//            them whose A/AAAA records include that address. The name is
//            what rspamd's Hostname field and the Authentication-Results
//            "iprev" result report. The lookups are
//            common/reverse_names.hpp's, shared with SPF.
// Standards: RFC 8601 §3 (iprev: pass, fail, temperror, permerror),
//            §2.7.3 (policy.iprev); RFC 1912 §2.1 (PTR names should
//            resolve back).
// Trust:     every DNS answer is untrusted; at most kMaxIprevNames PTR
//            names are followed (an address can publish any number).
// Concurrency: synchronous and stateless over the Resolver it is given
//            (resolution.hpp runs it without blocking).
// Errors:    none: DNS trouble is the temperror result.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "dns/resolver.hpp"

namespace hikyaku::auth::inbound {

enum class IprevResult { pass, fail, temperror, permerror };
std::string_view to_string(IprevResult r);

struct Iprev {
  IprevResult result = IprevResult::permerror;
  std::string name;  // pass: the confirmed name (no trailing dot); else empty
};

// As RFC 8601 §3 and Postfix's reject_unknown_client_hostname: more names
// than this are not followed.
constexpr size_t kMaxIprevNames = 10;

// pass: a PTR name's A (IPv4) or AAAA (IPv6) records include `ip` (the
// first such name in PTR order). permerror: no PTR records (NXDOMAIN or
// none). fail: PTR names exist and none leads back (their lookups
// answered). temperror: a lookup that mattered failed temporarily.
Iprev check_iprev(dns::Resolver& resolver, const dns::IpAddress& ip);

}  // namespace hikyaku::auth::inbound
