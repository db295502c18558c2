// Purpose:   Choose which of the server's certificates answers a TLS
//            client's server name (SNI), from the DNS names each
//            certificate carries. Sans-I/O: plain strings in, an index out,
//            so the rules are unit-tested without OpenSSL.
// Standards: RFC 6066 §3 (server_name: a DNS host name, no trailing dot,
//            compared case-insensitively), RFC 6125 §6.4.3 (a wildcard is
//            the complete left-most label and matches exactly one label:
//            "*.example.com" matches "a.example.com", not "example.com"
//            nor "a.b.example.com"), RFC 4343 (DNS names are
//            case-insensitive, in ASCII).
// Trust:     the server name is the peer's, untrusted; certificate names
//            come from files the operator configured.
// Concurrency: pure functions.
// Errors:    none; no match is "use the default certificate" (nullopt).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::tls {

// Does certificate name `pattern` ("mail.example.com" or "*.example.com")
// cover `server_name`? ASCII case-insensitive; one trailing dot on the
// server name is ignored. A pattern with "*" anywhere but as the whole
// left-most label (of at least three labels: "*.com" is refused) matches
// nothing.
bool name_matches(std::string_view pattern, std::string_view server_name);

// The certificate for `server_name` among `names` (each certificate's DNS
// names, in the configured order, the default first): an exact name beats
// a wildcard; among equals the earlier certificate wins. nullopt: no
// certificate names it (the caller uses the default).
std::optional<std::size_t> choose_certificate(const std::vector<std::vector<std::string>>& names,
                                              std::string_view server_name);

}  // namespace hikyaku::tls
