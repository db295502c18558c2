#include "auth/spf/record.hpp"

#include "base/strings.hpp"

namespace hikyaku::auth::spf {
namespace {

using base::make_error;


// RFC 7208 §7.1 macro-letter; c, r and t only inside an explanation.
bool is_macro_letter(char c, bool explain) {
  switch (base::ascii_lower(c)) {
    case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v':
      return true;
    case 'c': case 'r': case 't':
      return explain;
    default:
      return false;
  }
}

bool is_delimiter(char c) {
  return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

// RFC 7208 §7.1 toplabel = ( *alphanum ALPHA *alphanum ) /
//                          ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool valid_toplabel(std::string_view s) {
  if (s.empty()) return false;
  bool has_alpha = false;
  for (char c : s) {
    if (!base::ascii_alnum(c) && c != '-') return false;
    if (base::ascii_alpha(c)) has_alpha = true;
  }
  if (s.find('-') == std::string_view::npos) return has_alpha;
  return base::ascii_alnum(s.front()) && base::ascii_alnum(s.back());
}

// RFC 7208 §5.6 ip4-cidr-length / ip6-cidr-length: "0" or a number without a
// leading zero, at most `max`.
std::optional<int> parse_cidr(std::string_view digits, int max) {
  if (digits.empty() || digits.size() > 3) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  int v = 0;
  for (char c : digits) {
    if (!base::ascii_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!base::ascii_digit(c)) return false;
  return true;
}

// Strip a trailing dual-cidr-length ("/n", "//n", "/n//m") from `arg`
// (RFC 7208 §5.3, §5.4). Returns false on a malformed length.
bool take_dual_cidr(std::string_view& arg, Mechanism& m) {
  // ip6 part: the last "//digits".
  auto pos = arg.rfind("//");
  if (pos != std::string_view::npos && all_digits(arg.substr(pos + 2))) {
    auto v = parse_cidr(arg.substr(pos + 2), 128);
    if (!v) return false;
    m.cidr6 = *v;
    arg = arg.substr(0, pos);
  }
  pos = arg.rfind('/');
  if (pos != std::string_view::npos && all_digits(arg.substr(pos + 1))) {
    auto v = parse_cidr(arg.substr(pos + 1), 32);
    if (!v) return false;
    m.cidr4 = *v;
    arg = arg.substr(0, pos);
  }
  return true;
}

base::Result<Mechanism> parse_mechanism(std::string_view term) {
  Mechanism m;
  // RFC 7208 §4.6.2: an absent qualifier means "+".
  switch (term.empty() ? '\0' : term.front()) {
    case '+': m.qualifier = Qualifier::pass; term.remove_prefix(1); break;
    case '-': m.qualifier = Qualifier::fail; term.remove_prefix(1); break;
    case '~': m.qualifier = Qualifier::softfail; term.remove_prefix(1); break;
    case '?': m.qualifier = Qualifier::neutral; term.remove_prefix(1); break;
    default: break;
  }
  size_t name_end = term.find_first_of(":/");
  std::string_view name = term.substr(0, name_end);
  std::string_view rest = name_end == std::string_view::npos ? std::string_view{} : term.substr(name_end);
  bool has_colon = !rest.empty() && rest.front() == ':';
  std::string_view arg = has_colon ? rest.substr(1) : rest;

  auto need_domain = [&](bool required) -> base::Status {
    if (has_colon && arg.empty()) return make_error("empty domain-spec in '" + std::string(term) + "'");
    if (!has_colon && required) return make_error("missing domain-spec in '" + std::string(term) + "'");
    if (!has_colon && !arg.empty()) return make_error("junk after mechanism '" + std::string(term) + "'");
    if (has_colon && !valid_domain_spec(arg))
      return make_error("invalid domain-spec '" + std::string(arg) + "'");
    m.domain_spec = std::string(has_colon ? arg : std::string_view{});
    return {};
  };

  if (base::iequals(name, "all")) {
    // RFC 7208 §5.1: "all" takes no argument.
    m.kind = MechanismKind::all;
    if (!rest.empty()) return make_error("'all' takes no argument");
  } else if (base::iequals(name, "include") || base::iequals(name, "exists")) {
    // RFC 7208 §5.2, §5.7: domain-spec required, no CIDR.
    m.kind = base::iequals(name, "include") ? MechanismKind::include : MechanismKind::exists;
    if (auto s = need_domain(true); !s) return s.error();
  } else if (base::iequals(name, "a") || base::iequals(name, "mx")) {
    // RFC 7208 §5.3, §5.4: [":" domain-spec] [dual-cidr-length]
    m.kind = base::iequals(name, "a") ? MechanismKind::a : MechanismKind::mx;
    if (!take_dual_cidr(arg, m)) return make_error("bad CIDR length in '" + std::string(term) + "'");
    if (auto s = need_domain(false); !s) return s.error();
  } else if (base::iequals(name, "ptr")) {
    // RFC 7208 §5.5: [":" domain-spec], no CIDR.
    m.kind = MechanismKind::ptr;
    if (auto s = need_domain(false); !s) return s.error();
  } else if (base::iequals(name, "ip4") || base::iequals(name, "ip6")) {
    // RFC 7208 §5.6: ip4-network [ip4-cidr-length] / ip6-network [ip6-cidr-length]
    bool v6 = base::iequals(name, "ip6");
    m.kind = v6 ? MechanismKind::ip6 : MechanismKind::ip4;
    if (!has_colon) return make_error("missing network in '" + std::string(term) + "'");
    std::string_view net = arg;
    int cidr = v6 ? 128 : 32;
    if (auto slash = arg.find('/'); slash != std::string_view::npos) {
      net = arg.substr(0, slash);
      auto v = parse_cidr(arg.substr(slash + 1), cidr);
      if (!v) return make_error("bad CIDR length in '" + std::string(term) + "'");
      cidr = *v;
    }
    if (!v6 && net.find(':') != std::string_view::npos) return make_error("ip4 with an IPv6 network");
    if (v6 && net.find(':') == std::string_view::npos) return make_error("ip6 with an IPv4 network");
    auto ip = dns::IpAddress::parse(net);
    if (!ip) return make_error("bad network '" + std::string(net) + "'");
    m.network = *ip;
    (v6 ? m.cidr6 : m.cidr4) = cidr;
  } else {
    // RFC 7208 §4.6.1: an unknown mechanism is a permerror.
    return make_error("unknown mechanism '" + std::string(name) + "'");
  }
  return m;
}

}  // namespace

std::string_view to_string(MechanismKind kind) {
  switch (kind) {
    case MechanismKind::all: return "all";
    case MechanismKind::include: return "include";
    case MechanismKind::a: return "a";
    case MechanismKind::mx: return "mx";
    case MechanismKind::ptr: return "ptr";
    case MechanismKind::ip4: return "ip4";
    case MechanismKind::ip6: return "ip6";
    case MechanismKind::exists: return "exists";
  }
  return "?";
}

namespace {

// Scan a macro-string; `ends_in_macro` tells whether its last token is a
// macro-expand (for domain-end).
bool scan_macro_string(std::string_view s, bool explain, bool& ends_in_macro) {
  ends_in_macro = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    ends_in_macro = false;
    if (c == ' ' && explain) continue;
    // RFC 7208 §7.1 macro-literal = %x21-24 / %x26-7E
    if (c < 0x21 || c > 0x7e) return false;
    if (c != '%') continue;
    if (++i >= s.size()) return false;
    char n = s[i];
    ends_in_macro = true;
    if (n == '%' || n == '_' || n == '-') continue;
    if (n != '{') return false;
    // "%{" macro-letter transformers *delimiter "}"
    if (++i >= s.size() || !is_macro_letter(s[i], explain)) return false;
    ++i;
    while (i < s.size() && base::ascii_digit(s[i])) ++i;
    if (i < s.size() && (s[i] == 'r' || s[i] == 'R')) ++i;
    while (i < s.size() && is_delimiter(s[i])) ++i;
    if (i >= s.size() || s[i] != '}') return false;
  }
  return true;
}

}  // namespace

bool valid_macro_string(std::string_view s, bool explain) {
  bool ends_in_macro = false;
  return scan_macro_string(s, explain, ends_in_macro);
}

bool valid_domain_spec(std::string_view s) {
  bool ends_in_macro = false;
  if (s.empty() || !scan_macro_string(s, false, ends_in_macro)) return false;
  // RFC 7208 §7.1 domain-end = ( "." toplabel [ "." ] ) / macro-expand
  if (ends_in_macro) return true;
  if (s.back() == '.') s.remove_suffix(1);
  auto dot = s.rfind('.');
  if (dot == std::string_view::npos) return false;
  return valid_toplabel(s.substr(dot + 1));
}

bool is_spf_record(std::string_view txt) {
  // RFC 7208 §4.5: "v=spf1" exactly, then a space or the end.
  return base::istarts_with(txt, "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
}

base::Result<Record> parse_record(std::string_view txt) {
  if (!is_spf_record(txt)) return make_error("not an SPF record");
  Record rec;
  std::string_view rest = txt.substr(6);
  // RFC 7208 §4.6.1: terms are separated by one or more SP (0x20) only.
  for (std::string_view term : base::split(rest, ' ')) {
    if (term.empty()) continue;
    for (char c : term)
      if (c < 0x21 || c > 0x7e) return make_error("non-printable or non-ASCII character in record");

    // A modifier is name "=" macro-string with name = ALPHA *( ALPHA / DIGIT
    // / "-" / "_" / "." ) (RFC 7208 §4.6.1, §12).
    size_t n = 0;
    if (base::ascii_alpha(term[0])) {
      n = 1;
      while (n < term.size() && (base::ascii_alnum(term[n]) || term[n] == '-' || term[n] == '_' || term[n] == '.')) ++n;
    }
    if (n > 0 && n < term.size() && term[n] == '=') {
      std::string_view name = term.substr(0, n);
      std::string_view value = term.substr(n + 1);
      if (base::iequals(name, "redirect") || base::iequals(name, "exp")) {
        // RFC 7208 §6: redirect and exp appear at most once; value is a domain-spec.
        auto& slot = base::iequals(name, "redirect") ? rec.redirect : rec.exp;
        if (slot) return make_error("duplicate '" + std::string(name) + "' modifier");
        if (!valid_domain_spec(value)) return make_error("invalid domain-spec in '" + std::string(term) + "'");
        slot = std::string(value);
      } else {
        // RFC 7208 §6: unknown modifiers are ignored, but must be well-formed.
        if (!valid_macro_string(value, false))
          return make_error("invalid macro-string in '" + std::string(term) + "'");
        rec.unknown.push_back({std::string(name), std::string(value)});
      }
      continue;
    }
    auto m = parse_mechanism(term);
    if (!m) return m.error();
    rec.mechanisms.push_back(std::move(m.value()));
  }
  return rec;
}

}  // namespace hikyaku::auth::spf
