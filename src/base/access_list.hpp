// Purpose:   Per-listener client access control ([access] in the
//            configuration): CIDR prefixes ("192.0.2.0/24", "2001:db8::/32",
//            a bare address = /32 or /128) and the allow/deny decision for a
//            client address. Sans-I/O: the listener asks, and the protocol
//            session writes its own refusal.
// Standards: RFC 4632 §3.1 (CIDR prefix notation); RFC 4291 §2.3 (IPv6
//            prefixes), §2.5.5.2 (IPv4-mapped IPv6 addresses: a peer
//            "::ffff:192.0.2.1" on a dual-stack socket is 192.0.2.1, and a
//            rule written as ::ffff:192.0.2.0/120 is 192.0.2.0/24).
// Rules:     deny wins over allow; an empty allow list allows every address
//            it does not deny; a non-empty one allows only its prefixes. An
//            address that does not parse is refused whenever any rule exists.
// Trust:     prefixes come from the operator's file; the address comes from
//            the kernel (the accepted socket's peer), as text. Both parsers
//            take arbitrary bytes (fuzz/access_list_fuzz.cpp).
// Concurrency: plain values; const member functions from any thread.
// Errors:    Cidr::parse returns an Error whose message says what is wrong
//            (for FILE:LINE:COL configuration errors); never throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::base {

// An IPv4 or IPv6 prefix, host bits zero. IPv4 (and IPv4-mapped IPv6
// written with a prefix of at least 96) is kept as IPv4.
struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> network{};  // the first 4 bytes for IPv4
  unsigned prefix = 0;                 // 0..32 or 0..128

  // "ADDRESS/LENGTH" or a bare ADDRESS (a single host). Host bits set
  // ("192.0.2.1/24") are refused: most likely a typo for a wider or a
  // narrower rule, and the operator should say which.
  static Result<Cidr> parse(std::string_view text);
  bool contains(const Cidr& address) const;  // `address` is a host (/32, /128) or narrower prefix
  std::string str() const;                   // canonical "192.0.2.0/24", "2001:db8::/32"
  bool operator==(const Cidr&) const = default;
};

// A client address as the kernel reports it ("192.0.2.1", "::ffff:192.0.2.1",
// "fe80::1%eth0"): a host prefix, an IPv4-mapped address as IPv4, the zone
// dropped. nullopt when it is not an address.
std::optional<Cidr> parse_client_address(std::string_view text);

struct AccessList {
  std::vector<Cidr> allow;  // empty: every address not denied
  std::vector<Cidr> deny;   // wins over allow

  bool empty() const { return allow.empty() && deny.empty(); }
  // Whether a client at `address` (as parse_client_address takes it) may
  // connect.
  bool permits(std::string_view address) const;
};

}  // namespace hikyaku::base
