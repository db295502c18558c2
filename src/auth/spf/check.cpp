#include "auth/spf/check.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "auth/common/reverse_names.hpp"
#include "auth/spf/macro.hpp"
#include "auth/spf/record.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::spf {
namespace {

// Recursion guard on top of the term limit, in case limits are raised.
constexpr int kMaxDepth = 32;

// RFC 7208 §4.3: a usable <domain> is a multi-label name with labels of
// 1-63 octets and at most 253 octets in all.
bool valid_fqdn(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  if (d.empty() || d.size() > 253) return false;
  if (d.find('.') == std::string_view::npos) return false;
  for (std::string_view label : base::split(d, '.')) {
    // Any octet may appear in a DNS label (RFC 2181 §11); macros such as
    // "%_" legitimately produce spaces (suite: macro-mania-in-domain).
    if (label.empty() || label.size() > 63) return false;
  }
  return true;
}

// RFC 7208 §5.6: compare the first `bits` bits.
bool in_network(const dns::IpAddress& ip, const dns::IpAddress& net, int bits) {
  if (ip.v6 != net.v6) return false;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((ip.bytes[i] & mask) != (net.bytes[i] & mask)) return false;
  }
  return true;
}

bool is_subdomain_or_equal(std::string_view name, std::string_view domain) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  if (base::iequals(name, domain)) return true;
  return name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
         base::iequals(name.substr(name.size() - domain.size()), domain);
}

Result from_qualifier(Qualifier q) {
  switch (q) {
    case Qualifier::pass: return Result::pass;
    case Qualifier::fail: return Result::fail;
    case Qualifier::softfail: return Result::softfail;
    case Qualifier::neutral: return Result::neutral;
  }
  return Result::neutral;
}

enum class Match { yes, no, temperror, permerror };

class Evaluator {
 public:
  Evaluator(dns::Resolver& resolver, const dns::IpAddress& ip, const Options& options)
      : resolver_(resolver), ip_(ip), options_(options) {}

  MacroContext base_ctx;

  Outcome check_host(std::string_view domain, int depth);
  std::string p_macro(std::string_view current);

 private:
  struct Step {
    Match match = Match::no;
    std::string detail;
  };
  Step eval_mechanism(const Mechanism& m, const MacroContext& ctx, int depth);
  Step eval_a(std::string_view name, const Mechanism& m, bool count_void);
  std::vector<std::string> validated_names();
  std::string explanation(const Record& rec, const MacroContext& ctx);
  // RFC 7208 §4.6.4: NXDOMAIN and empty answers count as void lookups.
  bool note_void() { return ++voids_ > options_.limits.void_lookups; }

  dns::Resolver& resolver_;
  dns::IpAddress ip_;
  const Options& options_;
  int terms_ = 0;
  int voids_ = 0;
  std::optional<std::vector<std::string>> validated_;  // PTR names, cached
  bool ptr_void_ = false;
};

// RFC 7208 §5.5: PTR names of the client whose A/AAAA records include it;
// at most `names_per_term` names are tried (§4.6.4), DNS errors skip a name.
std::vector<std::string> Evaluator::validated_names() {
  if (validated_) return *validated_;
  const auto limit = static_cast<size_t>(std::max(0, options_.limits.names_per_term));
  auto names = common::confirmed_reverse_names(resolver_, ip_, limit);
  ptr_void_ = !names.has_ptr && (names.ptr_status == dns::Status::nxdomain || names.ptr_status == dns::Status::ok);
  validated_ = std::move(names.confirmed);
  return *validated_;
}

// RFC 7208 §7.2 %{p}: a validated name equal to the current domain, else
// one below it, else any validated name, else "unknown".
std::string Evaluator::p_macro(std::string_view current) {
  auto names = validated_names();
  for (const auto& n : names)
    if (base::iequals(n, current)) return n;
  for (const auto& n : names)
    if (is_subdomain_or_equal(n, current)) return n;
  return names.empty() ? std::string("unknown") : names.front();
}

Evaluator::Step Evaluator::eval_a(std::string_view name, const Mechanism& m, bool count_void) {
  auto r = ip_.v6 ? resolver_.aaaa(name) : resolver_.a(name);
  if (r.status == dns::Status::temp_error) return {Match::temperror, "DNS error for " + std::string(name)};
  if (r.status != dns::Status::ok || r.records.empty()) {
    if (count_void && note_void()) return {Match::permerror, "too many void lookups"};
    return {Match::no, {}};
  }
  for (const auto& addr : r.records)
    if (in_network(ip_, addr, ip_.v6 ? m.cidr6 : m.cidr4)) return {Match::yes, {}};
  return {Match::no, {}};
}

Evaluator::Step Evaluator::eval_mechanism(const Mechanism& m, const MacroContext& ctx, int depth) {
  // Target name: the expanded domain-spec or the current domain.
  std::string target = ctx.domain;
  if (!m.domain_spec.empty()) {
    auto t = expand_domain_spec(m.domain_spec, ctx);
    if (!t) return {Match::permerror, t.error().message};
    target = std::move(t.value());
  }
  bool uses_dns = m.kind == MechanismKind::include || m.kind == MechanismKind::a || m.kind == MechanismKind::mx ||
                  m.kind == MechanismKind::ptr || m.kind == MechanismKind::exists;
  // RFC 7208 §4.6.4: at most 10 DNS-querying terms per check_host.
  if (uses_dns && ++terms_ > options_.limits.dns_terms) return {Match::permerror, "too many DNS lookups"};
  // XXX(spf): a target that is not a valid DNS name (empty or long labels
  // after expansion) is a no-match; RFC 7208 leaves this open (suite cases
  // invalid-domain-*, which accept fail or permerror).
  if (uses_dns && m.kind != MechanismKind::include && m.kind != MechanismKind::ptr && !valid_fqdn(target))
    return {Match::no, {}};

  switch (m.kind) {
    case MechanismKind::all:
      return {Match::yes, {}};  // RFC 7208 §5.1
    case MechanismKind::ip4:
    case MechanismKind::ip6:
      // RFC 7208 §5.6: an IPv4 client never matches ip6 and vice versa.
      return {in_network(ip_, m.network, ip_.v6 ? m.cidr6 : m.cidr4) ? Match::yes : Match::no, {}};
    case MechanismKind::a:
      return eval_a(target, m, true);  // RFC 7208 §5.3
    case MechanismKind::mx: {
      // RFC 7208 §5.4.
      auto mx = resolver_.mx(target);
      if (mx.status == dns::Status::temp_error) return {Match::temperror, "DNS error for MX " + target};
      if (mx.status != dns::Status::ok || mx.records.empty()) {
        if (note_void()) return {Match::permerror, "too many void lookups"};
        return {Match::no, {}};
      }
      // RFC 7208 §4.6.4: more than 10 MX names is a permerror.
      if (static_cast<int>(mx.records.size()) > options_.limits.names_per_term)
        return {Match::permerror, "too many MX records for " + target};
      for (const auto& rec : mx.records) {
        if (rec.exchange.empty()) continue;  // null MX (RFC 7505)
        auto s = eval_a(rec.exchange, m, false);
        if (s.match != Match::no) return s;
      }
      return {Match::no, {}};
    }
    case MechanismKind::ptr: {
      // RFC 7208 §5.5: a validated PTR name equal to or below the target.
      auto names = validated_names();
      if (ptr_void_ && note_void()) return {Match::permerror, "too many void lookups"};
      for (const auto& name : names)
        if (is_subdomain_or_equal(name, target)) return {Match::yes, {}};
      return {Match::no, {}};
    }
    case MechanismKind::exists: {
      // RFC 7208 §5.7: any A record, whatever the client's address family.
      auto r = resolver_.a(target);
      if (r.status == dns::Status::temp_error) return {Match::temperror, "DNS error for " + target};
      if (r.status != dns::Status::ok || r.records.empty()) {
        if (note_void()) return {Match::permerror, "too many void lookups"};
        return {Match::no, {}};
      }
      return {Match::yes, {}};
    }
    case MechanismKind::include: {
      // RFC 7208 §5.2 table: pass matches; fail/softfail/neutral do not;
      // temperror propagates; permerror and none are permerror.
      if (depth >= kMaxDepth) return {Match::permerror, "include nesting too deep"};
      Outcome sub = check_host(target, depth + 1);
      switch (sub.result) {
        case Result::pass: return {Match::yes, {}};
        case Result::fail:
        case Result::softfail:
        case Result::neutral: return {Match::no, {}};
        case Result::temperror: return {Match::temperror, "include:" + target + ": " + sub.detail};
        case Result::none: return {Match::permerror, "include:" + target + " has no SPF record"};
        case Result::permerror: return {Match::permerror, "include:" + target + ": " + sub.detail};
      }
      return {Match::permerror, {}};
    }
  }
  return {Match::permerror, "unreachable"};
}

// RFC 7208 §6.2: the explanation; any problem just means "no explanation".
std::string Evaluator::explanation(const Record& rec, const MacroContext& ctx) {
  if (!rec.exp) return {};
  auto name = expand_domain_spec(*rec.exp, ctx);
  if (!name || !valid_fqdn(name.value())) return {};
  auto txt = resolver_.txt(name.value());
  if (txt.status != dns::Status::ok || txt.records.size() != 1) return {};
  for (char c : txt.records[0])
    if (static_cast<unsigned char>(c) >= 0x7f || (c < 0x20)) return {};
  auto text = expand_macros(txt.records[0], ctx, true);
  return text ? text.value() : std::string{};
}

Outcome Evaluator::check_host(std::string_view domain_in, int depth) {
  std::string domain(domain_in);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  // RFC 7208 §4.3: a malformed or single-label domain, or an address
  // literal, gives "none".
  if (!valid_fqdn(domain) || domain.front() == '[') return {Result::none, {}, "not a valid domain: " + domain};

  // RFC 7208 §4.4: DNS errors are temperror, no name is "none".
  auto txt = resolver_.txt(domain);
  if (txt.status == dns::Status::temp_error) return {Result::temperror, {}, "DNS error for TXT " + domain};
  if (txt.status != dns::Status::ok) return {Result::none, {}, "no SPF record at " + domain};

  // RFC 7208 §4.5: exactly one "v=spf1" record, else none / permerror.
  const std::string* record_text = nullptr;
  for (const auto& t : txt.records) {
    if (!is_spf_record(t)) continue;
    if (record_text != nullptr) return {Result::permerror, {}, "multiple SPF records at " + domain};
    record_text = &t;
  }
  if (record_text == nullptr) return {Result::none, {}, "no SPF record at " + domain};

  // RFC 7208 §4.6: a syntax error anywhere is a permerror before evaluation.
  auto rec = parse_record(*record_text);
  if (!rec) return {Result::permerror, {}, domain + ": " + rec.error().message};

  MacroContext ctx = base_ctx;
  ctx.domain = domain;

  // RFC 7208 §4.6.2: the first matching mechanism decides.
  for (const auto& m : rec->mechanisms) {
    Step s = eval_mechanism(m, ctx, depth);
    switch (s.match) {
      case Match::no: continue;
      case Match::temperror: return {Result::temperror, {}, s.detail};
      case Match::permerror: return {Result::permerror, {}, s.detail};
      case Match::yes: break;
    }
    Outcome out{from_qualifier(m.qualifier), {}, domain + ": matched " + std::string(to_string(m.kind))};
    if (out.result == Result::fail) out.explanation = explanation(rec.value(), ctx);
    return out;
  }

  // RFC 7208 §6.1: redirect applies when nothing matched; its target's result
  // (and explanation) is the result, with "none" turned into permerror.
  if (rec->redirect) {
    if (++terms_ > options_.limits.dns_terms) return {Result::permerror, {}, "too many DNS lookups"};
    if (depth >= kMaxDepth) return {Result::permerror, {}, "redirect nesting too deep"};
    auto target = expand_domain_spec(*rec->redirect, ctx);
    if (!target) return {Result::permerror, {}, target.error().message};
    Outcome sub = check_host(target.value(), depth + 1);
    if (sub.result == Result::none)
      return {Result::permerror, {}, "redirect=" + target.value() + " has no SPF record"};
    return sub;
  }
  // RFC 7208 §4.7: the default result is neutral.
  return {Result::neutral, {}, domain + ": no mechanism matched"};
}

// An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is evaluated as IPv4.
dns::IpAddress unmap(const dns::IpAddress& ip) {
  if (!ip.v6) return ip;
  for (size_t i = 0; i < 10; ++i)
    if (ip.bytes[i] != 0) return ip;
  if (ip.bytes[10] != 0xff || ip.bytes[11] != 0xff) return ip;
  dns::IpAddress v4;
  std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
  return v4;
}

}  // namespace

std::string_view to_string(Result r) {
  switch (r) {
    case Result::none: return "none";
    case Result::neutral: return "neutral";
    case Result::pass: return "pass";
    case Result::fail: return "fail";
    case Result::softfail: return "softfail";
    case Result::temperror: return "temperror";
    case Result::permerror: return "permerror";
  }
  return "none";
}

Outcome check_host(dns::Resolver& resolver, const dns::IpAddress& ip_in, std::string_view domain,
                   std::string_view sender, std::string_view helo, const Options& options) {
  dns::IpAddress ip = unmap(ip_in);
  Evaluator ev(resolver, ip, options);
  MacroContext& ctx = ev.base_ctx;
  ctx.sender = std::string(sender);
  auto at = sender.rfind('@');
  // RFC 7208 §4.3: an empty local part is "postmaster".
  ctx.local_part = at == std::string_view::npos || at == 0 ? "postmaster" : std::string(sender.substr(0, at));
  ctx.sender_domain = std::string(at == std::string_view::npos ? domain : sender.substr(at + 1));
  ctx.ip = ip;
  ctx.helo = std::string(helo);
  ctx.receiver = options.receiver;
  ctx.now_unix = std::chrono::duration_cast<std::chrono::seconds>(options.now.time_since_epoch()).count();
  ctx.validated_name = [&ev](std::string_view current) { return ev.p_macro(current); };
  return ev.check_host(domain, 0);
}

Outcome check_mail_from(dns::Resolver& resolver, const dns::IpAddress& ip, std::string_view mail_from,
                        std::string_view helo, const Options& options) {
  // RFC 7208 §2.4: the null reverse-path uses postmaster@<HELO>.
  if (mail_from.empty()) return check_helo(resolver, ip, helo, options);
  auto at = mail_from.rfind('@');
  std::string_view domain = at == std::string_view::npos ? mail_from : mail_from.substr(at + 1);
  std::string sender(mail_from);
  if (at == 0) sender = "postmaster" + sender;  // RFC 7208 §4.3
  return check_host(resolver, ip, domain, sender, helo, options);
}

Outcome check_helo(dns::Resolver& resolver, const dns::IpAddress& ip, std::string_view helo,
                   const Options& options) {
  // RFC 7208 §2.3: check_host(<ip>, <helo>, "postmaster@" <helo>).
  return check_host(resolver, ip, helo, "postmaster@" + std::string(helo), helo, options);
}

}  // namespace hikyaku::auth::spf
