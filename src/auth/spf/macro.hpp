// Purpose:   SPF macro expansion: turn a domain-spec or an explanation string
//            into text with the sender, client IP, HELO name and so on
//            substituted, with the transformers (digits, "r", delimiters)
//            and URL escaping of uppercase macros.
// Standards: RFC 7208 §7.1 (syntax), §7.2 (macro letters), §7.3 (expansion,
//            253-octet truncation), §7.4 (URL escaping); §6.2 (c, r, t only
//            in explanations); RFC 3986 §2.3 (unreserved characters).
// Trust:     expands untrusted record text with untrusted envelope values;
//            output size is bounded by the input size times a small factor.
// Errors:    a malformed macro is a base::Error (permerror for the caller).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::spf {

// The values macros expand to (RFC 7208 §7.2).
struct MacroContext {
  std::string sender;         // %{s}: <sender>, "local@domain"
  std::string local_part;     // %{l}
  std::string sender_domain;  // %{o}
  std::string domain;         // %{d}: the current <domain>
  dns::IpAddress ip;          // %{i}, %{c}, %{v}
  std::string helo;           // %{h}
  std::string receiver = "unknown";  // %{r}
  int64_t now_unix = 0;       // %{t}, injected by the caller
  // %{p}: the validated domain name of `ip` (RFC 7208 §5.5), computed only
  // when a record uses it, given the current domain; "unknown" when unset
  // or not validated.
  std::function<std::string(std::string_view domain)> validated_name;
};

// Expand a macro-string. `explain` selects explain-string rules (spaces and
// c/r/t allowed).
base::Result<std::string> expand_macros(std::string_view text, const MacroContext& ctx, bool explain);

// Expand a domain-spec and apply RFC 7208 §7.3's left truncation to 253
// octets; a trailing dot is removed.
base::Result<std::string> expand_domain_spec(std::string_view spec, const MacroContext& ctx);

}  // namespace hikyaku::auth::spf
