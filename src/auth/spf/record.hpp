// Purpose:   SPF record vocabulary (mechanisms, qualifiers, modifiers) and the
//            record parser: one "v=spf1 ..." TXT string in, a Record or a
//            syntax error out. Macro strings are kept unexpanded; they are
//            only checked for syntax here (macro.hpp expands them).
// Standards: RFC 7208 §4.5 (record selection), §4.6.1 (term parsing), §5
//            (mechanism definitions), §6 (modifiers), §7.1 (macro syntax),
//            §12 (collected ABNF).
// Trust:     parses untrusted DNS data; bounded by the TXT size; never throws.
// Errors:    a syntax error is a base::Error (check_host turns it into
//            permerror, RFC 7208 §4.6).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::spf {

// RFC 7208 §4.6.2: the qualifier decides the result when a mechanism matches.
enum class Qualifier { pass, fail, softfail, neutral };

enum class MechanismKind { all, include, a, mx, ptr, ip4, ip6, exists };

struct Mechanism {
  Qualifier qualifier = Qualifier::pass;
  MechanismKind kind = MechanismKind::all;
  std::string domain_spec;  // unexpanded macro-string; "" means <domain>
  int cidr4 = 32;           // a, mx, ip4
  int cidr6 = 128;          // a, mx, ip6
  dns::IpAddress network;   // ip4, ip6
};

struct Modifier {
  std::string name;   // as written
  std::string value;  // unexpanded macro-string
};

struct Record {
  std::vector<Mechanism> mechanisms;
  std::optional<std::string> redirect;  // RFC 7208 §6.1, domain-spec
  std::optional<std::string> exp;       // RFC 7208 §6.2, domain-spec
  std::vector<Modifier> unknown;        // RFC 7208 §6: ignored
};

// RFC 7208 §4.5: does this TXT string claim to be an SPF record ("v=spf1"
// followed by a space or the end, case-insensitively)?
bool is_spf_record(std::string_view txt);

// Parse a whole record (including the "v=spf1" version). Every term is
// checked before any is evaluated (RFC 7208 §4.6: syntax errors anywhere).
base::Result<Record> parse_record(std::string_view txt);

// RFC 7208 §7.1: is `s` a syntactically valid macro-string? `explain` allows
// spaces and the c/r/t macros (explain-string, §6.2).
bool valid_macro_string(std::string_view s, bool explain);
// RFC 7208 §7.1 domain-spec = macro-string domain-end.
bool valid_domain_spec(std::string_view s);

std::string_view to_string(MechanismKind kind);

}  // namespace hikyaku::auth::spf
