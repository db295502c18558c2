#include "config/config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "base/file.hpp"
#include "base/strings.hpp"
#include "config/user_forwards.hpp"
#include "mail/address.hpp"
#include "mail/target.hpp"

namespace hikyaku::config {

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}


const Domain* Config::find_domain(std::string_view name) const {
  for (const auto& d : domains)
    if (base::iequals(d.name, name)) return &d;
  return nullptr;
}
const Mailbox* Config::find_mailbox(std::string_view name) const {
  for (const auto& m : mailboxes)
    if (m.name == name) return &m;
  return nullptr;
}
const AddressRule* Config::find_address(std::string_view address) const {
  for (const auto& a : addresses)
    if (base::iequals(a.address, address)) return &a;
  return nullptr;
}
const Forward* Config::find_forward(std::string_view to) const {
  for (const auto& f : forwards)
    if (base::iequals(f.to, to)) return &f;
  return nullptr;
}
const Route* Config::find_route(std::string_view address) const {
  for (const auto& r : routes)
    if (r.matches(address)) return &r;
  return nullptr;
}

const Route* Config::relay_route(std::string_view address) const {
  const Route* rule = find_route(address);
  if (rule == nullptr || !rule->is_relay()) return nullptr;
  if (rule->match == "*" && is_local_domain(mail::domain_of(address))) return nullptr;
  return rule;
}

namespace {

// 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (textual, as configured).
bool is_loopback(std::string_view host) {
  const std::string h = base::to_lower(host);
  return h.starts_with("127.") || h == "::1" || h.starts_with("::ffff:127.");
}

}  // namespace

bool Listen::is_own(std::string_view ip, uint16_t port) const {
  const std::string wanted = base::to_lower(ip);
  const bool loopback = is_loopback(wanted);
  for (const auto* list : {&smtp, &submission, &submissions, &pop3, &pop3s, &imap, &imaps, &http}) {
    for (const auto& ep : *list) {
      if (ep.port != port) continue;
      const std::string host = base::to_lower(ep.host);
      if (host == wanted) return true;
      if ((host == "0.0.0.0" || host == "::" || host.empty()) && loopback) return true;
    }
  }
  return false;
}

std::string NextHop::str() const {
  switch (kind) {
    case Kind::mx: return "mx";
    case Kind::local: return "local";
    case Kind::host: return host + ":" + std::to_string(port);
    case Kind::address: return "[" + host + "]:" + std::to_string(port);
  }
  return "mx";
}

bool Route::matches(std::string_view address) const {
  if (match == "*") return true;
  if (match.front() == '@') return base::iequals(mail::domain_of(address), std::string_view(match).substr(1));
  return base::iequals(address, match);
}

bool Route::covers(const Route& later) const {
  if (match == "*") return true;
  if (later.match == "*") return false;
  if (match.front() == '@') return base::iequals(mail::domain_of(later.match), std::string_view(match).substr(1));
  return match == later.match;  // both lower case
}

std::vector<const RouteAccount*> Route::logins() const {
  std::vector<const RouteAccount*> out;
  for (const auto& a : accounts) out.push_back(&a);
  if (auth) out.push_back(&*auth);
  return out;
}

const RouteAccount* Route::account_for(std::string_view sender) const {
  for (const auto& a : accounts)
    if (base::iequals(a.sender, sender)) return &a;
  return auth ? &*auth : nullptr;
}

const base::AccessList& Access::of(std::string_view listener) const {
  static const base::AccessList allow_all;  // no rules; const, so no shared mutable state
  if (listener == "smtp") return smtp;
  if (listener == "submission") return submission;
  if (listener == "submissions") return submissions;
  if (listener == "pop3") return pop3;
  if (listener == "pop3s") return pop3s;
  if (listener == "imap") return imap;
  if (listener == "imaps") return imaps;
  return allow_all;
}

bool Config::is_local_domain(std::string_view domain) const { return find_domain(domain) != nullptr; }

namespace {

// Collects errors with positions; the loader keeps going after an error so
// that the operator sees every mistake at once (STYLE R6, R11).
class Reader {
 public:
  Reader(std::string name, std::filesystem::path base_dir) : name_(std::move(name)), base_dir_(std::move(base_dir)) {}

  std::vector<ConfigError> errors;
  std::vector<ConfigError> warnings;

  std::string where(const toml::node& node) const {
    const auto& src = node.source();
    if (src.begin.line == 0) return name_;
    return name_ + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
  }
  void error(const toml::node& node, std::string message) { errors.push_back({where(node), std::move(message)}); }
  void error_at(std::string where, std::string message) { errors.push_back({std::move(where), std::move(message)}); }
  void warning_at(std::string where, std::string message) {
    warnings.push_back({std::move(where), std::move(message)});
  }

  // Unknown keys are mistakes (a misspelt option silently ignored is worse).
  void check_keys(const toml::table& table, const std::string& path, std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, node] : table) {
      bool ok = false;
      for (auto a : allowed) ok = ok || key.str() == a;
      if (!ok) {
        // Point at the key itself, not its value.
        const auto& src = key.source();
        std::string at = src.begin.line == 0 ? where(node)
                                             : name_ + ":" + std::to_string(src.begin.line) + ":" +
                                                   std::to_string(src.begin.column);
        error_at(at, "unknown key '" + (path.empty() ? "" : path + ".") + std::string(key.str()) + "'");
      }
    }
  }

  void string(const toml::table& t, std::string_view key, const std::string& path, std::string& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      out = *v;
    } else {
      error(*n, path + "." + std::string(key) + ": expected a string");
    }
  }
  void boolean(const toml::table& t, std::string_view key, const std::string& path, bool& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (n->is_boolean()) {
      out = *n->value<bool>();
    } else {
      error(*n, path + "." + std::string(key) + ": expected true or false");
    }
  }
  template <class U>
  void unsigned_int(const toml::table& t, std::string_view key, const std::string& path, U& out, uint64_t max) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (n->is_integer()) {
      int64_t v = *n->value<int64_t>();
      if (v < 0 || static_cast<uint64_t>(v) > max) {
        error(*n, path + "." + std::string(key) + ": out of range (0.." + std::to_string(max) + ")");
      } else {
        out = static_cast<U>(v);
      }
    } else {
      error(*n, path + "." + std::string(key) + ": expected an integer");
    }
  }
  void path_value(const toml::table& t, std::string_view key, const std::string& path, std::filesystem::path& out) {
    std::string s;
    string(t, key, path, s);
    if (s.empty()) return;
    out = resolve(s);
    files.push_back({where(*t.get(key)), path + "." + std::string(key), out});
  }
  std::vector<ConfiguredFile> files;  // every path value read
  std::filesystem::path resolve(const std::string& s) const {
    std::filesystem::path p(s);
    return p.is_absolute() ? p : (base_dir_ / p).lexically_normal();
  }
  void duration(const toml::table& t, std::string_view key, const std::string& path, Seconds& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (auto parsed = duration_of(*n, path + "." + std::string(key))) out = *parsed;
  }
  std::optional<Seconds> duration_of(const toml::node& n, const std::string& path) {
    if (n.is_string()) {
      if (auto secs = base::parse_duration_seconds(*n.value<std::string>())) return Seconds(*secs);
    }
    error(n, path + ": expected a duration like \"90s\", \"15m\", \"2h\" or \"5d\"");
    return std::nullopt;
  }
  void size(const toml::table& t, std::string_view key, const std::string& path, uint64_t& out) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    if (n->is_integer() && *n->value<int64_t>() >= 0) {
      out = static_cast<uint64_t>(*n->value<int64_t>());
      return;
    }
    if (n->is_string()) {
      if (auto b = base::parse_size_bytes(*n->value<std::string>())) {
        out = *b;
        return;
      }
    }
    error(*n, path + "." + std::string(key) + ": expected a size like \"50M\"");
  }
  // A list of strings; each element is reported by position.
  std::vector<std::pair<std::string, const toml::node*>> strings(const toml::table& t, std::string_view key,
                                                                 const std::string& path) {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const toml::node* n = t.get(key);
    if (n == nullptr) return out;
    const toml::array* arr = n->as_array();
    if (arr == nullptr) {
      error(*n, path + "." + std::string(key) + ": expected a list of strings");
      return out;
    }
    for (const auto& el : *arr) {
      if (!el.is_string()) {
        error(el, path + "." + std::string(key) + ": expected a string");
        continue;
      }
      out.emplace_back(*el.value<std::string>(), &el);
    }
    return out;
  }
  // A source address (issue 17): "ADDRESS" or ["IPv4", "IPv6"] (at most one
  // of each family), each a plain IP literal; every mistake is reported
  // where it is written.
  void source_address(const toml::table& t, const std::string& path, SourceAddress& out) {
    const toml::node* n = t.get("source_address");
    if (n == nullptr) return;
    const std::string what = path + ".source_address: ";
    std::vector<const toml::node*> items;
    if (n->is_string()) {
      items.push_back(n);
    } else if (const toml::array* arr = n->as_array(); arr != nullptr && !arr->empty()) {
      for (const auto& el : *arr) items.push_back(&el);
    } else {
      error(*n, what + "expected an IP address or a list of one IPv4 and one IPv6 address");
      return;
    }
    SourceAddress parsed;
    for (const toml::node* item : items) {
      if (!item->is_string()) {
        error(*item, what + "expected a string (an IP address)");
        continue;
      }
      const std::string s = *item->value<std::string>();
      auto cidr = parse_source_address(s);
      if (!cidr) {
        error(*item, what + "'" + base::log_printable(s) + "': " + cidr.error().message);
        continue;
      }
      std::string& slot = cidr->v6 ? parsed.v6 : parsed.v4;
      if (!slot.empty()) {
        error(*item, what + "two " + (cidr->v6 ? "IPv6" : "IPv4") + " addresses (at most one of each family)");
        continue;
      }
      slot = s;
    }
    out = parsed;
  }
  // An EHLO name (issue 17): a domain name.
  void source_name(const toml::table& t, const std::string& path, std::string& out) {
    string(t, "source_name", path, out);
    if (!valid_source_name(out))
      error(*t.get("source_name"), path + ".source_name: '" + base::log_printable(out) + "' is not a domain name");
  }
  // A list of CIDR prefixes ([access]); each bad one is reported where it
  // is written.
  std::vector<base::Cidr> prefixes(const toml::table& t, std::string_view key, const std::string& path) {
    std::vector<base::Cidr> out;
    for (const auto& [s, node] : strings(t, key, path)) {
      if (auto cidr = base::Cidr::parse(s)) {
        out.push_back(*cidr);
      } else {
        std::string what = path;
        what.append(".").append(key).append(": '").append(s).append("' is not an address or ADDRESS/LENGTH prefix: ");
        error(*node, what + cidr.error().message);
      }
    }
    return out;
  }
  std::vector<Endpoint> endpoints(const toml::table& t, std::string_view key, const std::string& path) {
    std::vector<Endpoint> out;
    for (const auto& [s, node] : strings(t, key, path)) {
      if (auto ep = parse_endpoint(s)) {
        out.push_back(*ep);
      } else {
        std::string what = path;
        what.append(".").append(key).append(": '").append(s).append("' is not ADDRESS:PORT (IPv6 as [::1]:PORT)");
        error(*node, what);
      }
    }
    return out;
  }
  static std::optional<Endpoint> parse_endpoint(const std::string& s) {
    Endpoint ep;
    std::string port;
    if (!s.empty() && s.front() == '[') {
      auto close = s.find(']');
      if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
      ep.host = s.substr(1, close - 1);
      port = s.substr(close + 2);
    } else {
      auto colon = s.rfind(':');
      if (colon == std::string::npos || s.find(':') != colon) return std::nullopt;
      ep.host = s.substr(0, colon);
      port = s.substr(colon + 1);
    }
    auto p = base::parse_uint(port);
    if (ep.host.empty() || !p || *p == 0 || *p > 65535) return std::nullopt;
    ep.port = static_cast<uint16_t>(*p);
    return ep;
  }
  std::optional<mail::Target> target(const std::string& s, const toml::node& node, const std::string& path) {
    auto t = mail::Target::parse(s);
    if (!t) {
      error(node, path + ": " + t.error().message);
      return std::nullopt;
    }
    return std::move(t).value();
  }

  // Iterate an array of tables ([[mailbox]]); non-tables are errors.
  template <class F>
  void each_table(const toml::table& root, std::string_view key, F&& f) {
    const toml::node* n = root.get(key);
    if (n == nullptr) return;
    const toml::array* arr = n->as_array();
    if (arr == nullptr) {
      error(*n, std::string(key) + ": expected [[" + std::string(key) + "]] tables");
      return;
    }
    for (const auto& el : *arr) {
      if (const toml::table* t = el.as_table()) {
        f(*t);
      } else {
        error(el, std::string(key) + ": expected a table");
      }
    }
  }
  const toml::table* subtable(const toml::table& root, std::string_view key) {
    const toml::node* n = root.get(key);
    if (n == nullptr) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    error(*n, std::string(key) + ": expected a table [" + std::string(key) + "]");
    return nullptr;
  }

 private:
  std::string name_;
  std::filesystem::path base_dir_;
};

// A [[route]]'s `via`: "mx", "local", "host[:port]", "[IP]:port" or a bare
// IP (port 25 when none is given).
std::optional<NextHop> parse_next_hop(const std::string& text) {
  NextHop hop;
  if (text == "mx") return hop;
  if (text == "local") {
    hop.kind = NextHop::Kind::local;
    return hop;
  }
  std::string host = text;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    const std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
    if (!base::parse_client_address(host)) return std::nullopt;
    hop.kind = NextHop::Kind::address;
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    if (!base::parse_client_address(text)) return std::nullopt;  // a bare IPv6 address
    hop.kind = NextHop::Kind::address;
  } else {
    if (const auto colon = text.find(':'); colon != std::string::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
    if (base::parse_client_address(host)) {
      hop.kind = NextHop::Kind::address;
    } else {
      hop.kind = NextHop::Kind::host;
      host = base::to_lower(host);
      const bool name_ok = !host.empty() && host.size() <= 253 &&
                           std::all_of(host.begin(), host.end(), [](char ch) {
                             return base::ascii_alnum(ch) || ch == '-' || ch == '.';
                           });
      if (!name_ok) return std::nullopt;
    }
  }
  hop.host = host;
  if (!port.empty()) {
    auto p = base::parse_uint(port);
    if (!p || *p == 0 || *p > 65535) return std::nullopt;
    hop.port = static_cast<uint16_t>(*p);
  }
  return hop;
}

std::optional<RouteAccount> read_account(Reader& r, const toml::table& t, const std::string& path, bool per_sender) {
  RouteAccount a;
  if (per_sender) {
    r.check_keys(t, path, {"sender", "user", "password_file"});
    r.string(t, "sender", path, a.sender);
    a.sender = base::to_lower(a.sender);
    if (!mail::parse_mailbox(a.sender, true)) {
      r.error(t, path + ".sender: missing or not an email address");
      return std::nullopt;
    }
  } else {
    r.check_keys(t, path, {"user", "password_file", "mechanisms"});
  }
  r.string(t, "user", path, a.user);
  r.path_value(t, "password_file", path, a.password_file);
  if (a.user.empty() || a.password_file.empty()) {
    r.error(t, path + ": needs user and password_file");
    return std::nullopt;
  }
  return a;
}

// One [[route]] (issue 14). Cross-checks that need the whole document
// (mailboxes, listeners, earlier rules) are in check_routes().
void read_route(Reader& r, const toml::table& t, Config& c) {
  r.check_keys(t, "route",
               {"match", "via", "helo", "tls", "tls_ca_file", "auth", "account", "recipients", "verify_recipients",
                "copy_to"});
  Route rt;
  rt.where = r.where(t);
  std::string via;
  r.string(t, "match", "route", rt.match);
  r.string(t, "via", "route", via);
  if (rt.match.empty() || via.empty()) {
    r.error(t, "route: needs match and via");
    return;
  }
  rt.match = base::to_lower(rt.match);
  const bool match_ok = rt.match == "*" ||
                        (rt.match.front() == '@' ? mail::parse_mailbox("postmaster" + rt.match, true).has_value()
                                                 : mail::parse_mailbox(rt.match, true).has_value());
  if (!match_ok) r.error(*t.get("match"), "route.match: expected \"user@domain\", \"@domain\" or \"*\"");
  if (auto hop = parse_next_hop(via)) {
    rt.via = *hop;
  } else {
    r.error(*t.get("via"), "route.via: expected \"host[:port]\", \"[IP]:port\", \"mx\" or \"local\"");
  }
  r.string(t, "helo", "route", rt.helo);
  if (rt.helo.find_first_of(" \t\r\n") != std::string::npos)
    r.error(*t.get("helo"), "route.helo: a host name or address literal, without spaces");
  std::string tls;
  r.string(t, "tls", "route", tls);
  if (tls == "none") rt.tls = RouteTls::none;
  else if (tls == "required") rt.tls = RouteTls::required;
  else if (tls == "verify") rt.tls = RouteTls::verify;
  else if (!tls.empty() && tls != "opportunistic")
    r.error(*t.get("tls"), "route.tls: one of \"none\", \"opportunistic\", \"required\", \"verify\"");
  r.path_value(t, "tls_ca_file", "route", rt.tls_ca_file);
  if (!rt.tls_ca_file.empty() && rt.tls != RouteTls::verify)
    r.error(*t.get("tls_ca_file"), "route.tls_ca_file: only with tls = \"verify\"");

  if (const toml::node* a = t.get("auth")) {
    if (const toml::table* at = a->as_table()) {
      rt.auth = read_account(r, *at, "route.auth", false);
      for (const auto& [m, node] : r.strings(*at, "mechanisms", "route.auth")) {
        const std::string upper = base::to_upper(m);
        if (upper != "CRAM-MD5" && upper != "LOGIN" && upper != "PLAIN")
          r.error(*node, "route.auth.mechanisms: '" + m + "' is not one of CRAM-MD5, LOGIN, PLAIN");
        else
          rt.mechanisms.push_back(upper);
      }
    } else {
      r.error(*a, "route.auth: expected an inline table { user, password_file, mechanisms }");
    }
  }
  if (rt.mechanisms.empty()) rt.mechanisms = {"CRAM-MD5", "LOGIN", "PLAIN"};
  if (const toml::node* a = t.get("account")) {
    const toml::array* arr = a->as_array();
    if (arr == nullptr) r.error(*a, "route.account: expected [[route.account]] tables");
    for (size_t i = 0; arr != nullptr && i < arr->size(); ++i) {
      const toml::table* at = (*arr)[i].as_table();
      if (at == nullptr) {
        r.error((*arr)[i], "route.account: expected a table");
        continue;
      }
      if (auto acc = read_account(r, *at, "route.account", true)) rt.accounts.push_back(std::move(*acc));
    }
  }
  const bool logs_in = rt.auth || !rt.accounts.empty();
  if (logs_in) {
    // A password never travels in clear (RFC 4954 §4 leaves it to policy).
    if (rt.tls != RouteTls::required && rt.tls != RouteTls::verify && !tls.empty())
      r.error(*t.get("tls"),
              "route.tls: must be \"required\" or \"verify\" when the rule logs in (auth or [[route.account]])");
    if (rt.tls != RouteTls::verify) rt.tls = RouteTls::required;
  }
  if (!rt.is_relay() && (logs_in || !rt.helo.empty() || !tls.empty()))
    r.error(t, "route: helo, tls, auth and [[route.account]] apply only to a via that names a host or an address");

  for (const auto& [addr, node] : r.strings(t, "recipients", "route")) {
    const std::string lower = base::to_lower(addr);
    if (!mail::parse_mailbox(lower, true))
      r.error(*node, "route.recipients: '" + addr + "' is not an email address");
    else if (!rt.matches(lower))
      r.error(*node, "route.recipients: '" + addr + "' is not matched by this rule's match '" + rt.match + "'");
    else
      rt.recipients.push_back(lower);
  }
  if (!rt.recipients.empty() && !rt.is_relay())
    r.error(*t.get("recipients"), "route.recipients: only for a via that names a host or an address");
  r.boolean(t, "verify_recipients", "route", rt.verify_recipients);
  if (rt.verify_recipients && (!rt.is_relay() || rt.match == "*"))
    r.error(*t.get("verify_recipients"),
            "route.verify_recipients: only for a rule that names an address or a domain and sends to a host or an "
            "address (with \"*\" the gateway would relay whatever the next hop takes)");
  std::string copy_to;
  r.string(t, "copy_to", "route", copy_to);
  if (!copy_to.empty()) {
    auto target = mail::Target::parse(copy_to);
    if (!target || target->kind != mail::Target::Kind::mailbox)
      r.error(*t.get("copy_to"), "route.copy_to: expected \"mailbox:NAME\"");
    else
      rt.copy_to = target->value;
  }
  c.routes.push_back(std::move(rt));
}

// Whole-document checks of [[route]]: loops refused, mailboxes named,
// `local` only for local domains, rules that can never match warned about.
void check_routes(Reader& r, Config& c) {
  for (size_t i = 0; i < c.routes.size(); ++i) {
    const Route& rt = c.routes[i];
    const std::string rule = "route '" + rt.match + "' via " + rt.via.str();
    for (size_t j = 0; j < i; ++j) {
      if (c.routes[j].covers(rt)) {
        r.warning_at(rt.where, rule + " can never match: the rule at " + c.routes[j].where + " ('" +
                                   c.routes[j].match + "') catches every address it would");
        break;
      }
    }
    const auto at = rt.match.find('@');
    const std::string domain = at == std::string::npos ? "" : rt.match.substr(at + 1);
    const bool local_domain = !domain.empty() && c.is_local_domain(domain);
    if (rt.via.kind == NextHop::Kind::host &&
        (base::iequals(rt.via.host, c.hostname) || base::iequals(rt.via.host, "localhost")))
      r.error_at(rt.where, rule + ": " + rt.via.host + " is this server (hostname " + c.hostname +
                               "): mail would loop");
    if (rt.via.kind == NextHop::Kind::address && c.listen.is_own(rt.via.host, rt.via.port))
      r.error_at(rt.where, rule + ": " + rt.via.str() + " is one of this server's own listeners: mail would loop");
    if (rt.via.kind == NextHop::Kind::local && !local_domain)
      r.error_at(rt.where, rule + ": \"local\" needs a match in one of this server's [[domain]]s");
    if (rt.via.kind == NextHop::Kind::mx && local_domain)
      r.error_at(rt.where,
                 std::string(rule).append(": the MX of ").append(domain).append(" is this server: mail would loop"));
    if (!rt.copy_to.empty() && c.find_mailbox(rt.copy_to) == nullptr)
      r.error_at(rt.where, rule + ": copy_to: no [[mailbox]] named '" + rt.copy_to + "'");
  }
}

// Per-user forwards (DATA_DIR/forwards, `hikyaku forward set`): parsed and
// merged after the configuration is read and before its [[forward]] chains
// are validated, so they obey the same rules. Errors carry the forwards
// file's own positions.
void merge_user_forwards(Reader& r, Config& c, const LoadOptions& options) {
  if (!options.user_forwards) return;
  const std::string file = c.forwards_file().string();
  std::string text;
  if (options.user_forwards_text) {
    text = *options.user_forwards_text;
  } else {
    auto read = base::read_file(c.forwards_file());
    if (!read.ok()) {
      if (read.error().error_number != ENOENT) r.error_at(file, read.error().message);
      return;
    }
    text = std::move(*read);
  }
  auto parsed = parse_user_forwards(text, file);
  for (auto& e : parsed.errors) r.errors.push_back(std::move(e));
  for (auto& e : apply_user_forwards(c, parsed.forwards, r.warnings)) r.errors.push_back(std::move(e));
}

// [scan] (issue 17 item 1): where clamd and rspamd listen, how long to wait
// for each, what a failure means, and what clamd is sent.
void read_scan(Reader& r, const toml::table& t, Scan& scan) {
  r.check_keys(t, "scan", {"clamd", "rspamd", "timeout", "on_failure", "clamd_scope"});
  // "unix:/path" (clamd only) or "IP:PORT" ("[::1]:PORT"); "localhost" is 127.0.0.1.
  auto service = [&](std::string_view key, std::string_view scheme, ScanService& out) {
    std::string s;
    r.string(t, key, "scan", s);
    if (s.empty()) return;
    const toml::node& node = *t.get(key);
    const std::string what = "scan." + std::string(key) + ": ";
    if (!scheme.empty()) {
      if (!s.starts_with(scheme)) {
        r.error(node, what + "expected \"" + std::string(scheme) + "IP:PORT\"");
        return;
      }
      s = s.substr(scheme.size());
      if (s.ends_with("/")) s.pop_back();
    } else if (s.starts_with("unix:")) {
      if (s.size() == 5 || s[5] != '/') {
        r.error(node, what + "expected \"unix:/absolute/path\"");
        return;
      }
      // sockaddr_un's sun_path: 108 bytes with the terminating NUL (unix(7)).
      if (s.size() - 5 > 107) {
        r.error(node, what + "the socket path is " + std::to_string(s.size() - 5) +
                          " bytes long; a UNIX socket's path may have at most 107");
        return;
      }
      out.unix_path = s.substr(5);
      return;
    }
    if (s.starts_with("localhost:")) s = "127.0.0.1" + s.substr(9);
    auto ep = Reader::parse_endpoint(s);
    if (!ep || !base::parse_client_address(ep->host)) {
      r.error(node, what + "'" + base::log_printable(s) + "' is not IP:PORT (an address, not a name; IPv6 as [::1]:PORT)");
      return;
    }
    out.tcp = *ep;
  };
  service("clamd", "", scan.clamd);
  service("rspamd", "http://", scan.rspamd);
  if (const toml::node* n = t.get("timeout")) {
    if (auto d = r.duration_of(*n, "scan.timeout")) {
      if (*d < Seconds(1) || *d > Seconds(600))
        r.error(*n, "scan.timeout: out of range (\"1s\" to \"10m\")");
      else
        scan.timeout = *d;
    }
  }
  std::string on_failure;
  r.string(t, "on_failure", "scan", on_failure);
  if (on_failure == "accept") scan.accept_on_failure = true;
  else if (!on_failure.empty() && on_failure != "tempfail")
    r.error(*t.get("on_failure"), "scan.on_failure: one of \"tempfail\", \"accept\"");
  std::string clamd_scope;
  r.string(t, "clamd_scope", "scan", clamd_scope);
  if (clamd_scope == "attachments") scan.clamd_scope = Scan::ClamdScope::attachments;
  else if (!clamd_scope.empty() && clamd_scope != "message")
    r.error(*t.get("clamd_scope"), "scan.clamd_scope: one of \"message\", \"attachments\"");
}

void read_document(Reader& r, const toml::table& root, Config& c, const LoadOptions& options) {
  r.check_keys(root, "", {"hostname", "data_dir", "user", "log_level", "log_format", "postmaster", "listen", "access",
                          "tls", "dns", "delivery", "limits", "auth", "srs", "dmarc", "scan", "domain", "mailbox",
                          "address", "forward", "route"});
  r.string(root, "hostname", "hostname", c.hostname);
  {
    std::string dd;
    r.string(root, "data_dir", "data_dir", dd);
    c.data_dir = r.resolve(dd.empty() ? "var" : dd);
  }
  r.string(root, "user", "user", c.user);
  if (const toml::node* n = root.get("user")) {
    c.user_where = r.where(*n);
    // A POSIX portable user name (useradd's rule): no '/', ':', spaces or
    // control characters can reach the password database lookup.
    const bool valid = std::all_of(c.user.begin(), c.user.end(), [](char ch) {
      return base::ascii_alnum(ch) || ch == '_' || ch == '-' || ch == '.';
    }) && (c.user.empty() || c.user.front() != '-');
    if (!valid || c.user.size() > 32)
      r.error(*n, "user: '" + c.user + "' is not a user name (letters, digits, '_', '-', '.'; at most 32)");
  }
  r.string(root, "log_level", "log_level", c.log_level);
  if (const toml::node* n = root.get("log_level")) {
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
    if (!levels.count(c.log_level)) r.error(*n, "log_level: one of trace, debug, info, warn, error");
  }
  r.string(root, "log_format", "log_format", c.log_format);
  if (const toml::node* n = root.get("log_format"); n != nullptr && c.log_format != "text" && c.log_format != "json")
    r.error(*n, "log_format: one of \"text\", \"json\"");
  if (const toml::node* n = root.get("hostname")) {
    if (!mail::parse_mailbox("x@" + c.hostname, false)) r.error(*n, "hostname: '" + c.hostname + "' is not a domain name");
  }

  if (const auto* t = r.subtable(root, "listen")) {
    r.check_keys(*t, "listen", {"smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps", "http"});
    c.listen.smtp = r.endpoints(*t, "smtp", "listen");
    c.listen.submission = r.endpoints(*t, "submission", "listen");
    c.listen.submissions = r.endpoints(*t, "submissions", "listen");
    c.listen.pop3 = r.endpoints(*t, "pop3", "listen");
    c.listen.pop3s = r.endpoints(*t, "pop3s", "listen");
    c.listen.imap = r.endpoints(*t, "imap", "listen");
    c.listen.imaps = r.endpoints(*t, "imaps", "listen");
    c.listen.http = r.endpoints(*t, "http", "listen");
    // The status page and /metrics have no authentication (issue 16): they
    // are served on loopback only. A remote scraper reaches them through a
    // tunnel or a reverse proxy that authenticates (docs/operations.md).
    for (const auto& ep : c.listen.http) {
      if (!is_loopback(ep.host))
        r.error(*t->get("http"), "listen.http: '" + ep.str() +
                                     "' is not a loopback address: the status page and /metrics have no "
                                     "authentication; listen on 127.0.0.1 or [::1] and put an authenticating "
                                     "reverse proxy in front to reach them from elsewhere");
    }
  }
  if (const auto* t = r.subtable(root, "access")) {
    // Each key names a listener of [listen]: { allow = [...], deny = [...] }.
    r.check_keys(*t, "access", {"smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"});
    for (auto [name, list] : {std::pair{"smtp", &c.access.smtp}, {"submission", &c.access.submission},
                              {"submissions", &c.access.submissions}, {"pop3", &c.access.pop3},
                              {"pop3s", &c.access.pop3s}, {"imap", &c.access.imap}, {"imaps", &c.access.imaps}}) {
      const toml::node* n = t->get(name);
      if (n == nullptr) continue;
      const std::string path = std::string("access.") + name;
      const toml::table* rules = n->as_table();
      if (rules == nullptr) {
        r.error(*n, path + ": expected a table { allow = [...], deny = [...] }");
        continue;
      }
      r.check_keys(*rules, path, {"allow", "deny"});
      list->allow = r.prefixes(*rules, "allow", path);
      list->deny = r.prefixes(*rules, "deny", path);
    }
  }
  if (const auto* t = r.subtable(root, "tls")) {
    r.check_keys(*t, "tls", {"cert", "key", "self_signed", "certificate"});
    r.path_value(*t, "cert", "tls", c.tls.cert);
    r.path_value(*t, "key", "tls", c.tls.key);
    if (const toml::node* n = t->get("cert")) c.tls.cert_where = r.where(*n);
    if (const toml::node* n = t->get("key")) c.tls.key_where = r.where(*n);
    r.boolean(*t, "self_signed", "tls", c.tls.self_signed);
    if (c.tls.cert.empty() != c.tls.key.empty()) r.error(*t, "tls: set both cert and key, or neither");
    // [[tls.certificate]] (or certificate = [{cert = ..., key = ...}]): the
    // names each serves come from the certificate itself, not from here.
    if (const toml::node* n = t->get("certificate")) {
      const toml::array* arr = n->as_array();
      if (arr == nullptr) r.error(*n, "tls.certificate: expected [[tls.certificate]] tables with cert and key");
      for (size_t i = 0; arr != nullptr && i < arr->size(); ++i) {
        const toml::node& el = *arr->get(i);
        const toml::table* entry = el.as_table();
        if (entry == nullptr) {
          r.error(el, "tls.certificate: expected a table with cert and key");
          continue;
        }
        r.check_keys(*entry, "tls.certificate", {"cert", "key"});
        TlsCertificate pair;
        r.path_value(*entry, "cert", "tls.certificate", pair.cert);
        r.path_value(*entry, "key", "tls.certificate", pair.key);
        if (pair.cert.empty() || pair.key.empty()) {
          r.error(*entry, "tls.certificate: set both cert and key");
          continue;
        }
        pair.cert_where = r.where(*entry->get("cert"));
        pair.key_where = r.where(*entry->get("key"));
        c.tls.certificates.push_back(std::move(pair));
      }
      if (!c.tls.certificates.empty() && !c.tls.configured() && !c.tls.self_signed)
        r.error(*n, "tls.certificate: needs a default certificate ([tls] cert and key, or self_signed = true)");
    }
  }
  if (const auto* t = r.subtable(root, "dns")) {
    r.check_keys(*t, "dns", {"servers"});
    c.dns.servers = r.endpoints(*t, "servers", "dns");
  }
  if (const auto* t = r.subtable(root, "delivery")) {
    r.check_keys(*t, "delivery", {"smtp_port", "retry", "expire", "concurrency_per_domain", "connect_timeout",
                                  "command_timeout", "source_address", "source_name", "address_family",
                                  "rate_limit_pause"});
    r.unsigned_int(*t, "smtp_port", "delivery", c.delivery.smtp_port, 65535);
    if (t->get("retry") != nullptr) {
      std::vector<Seconds> retry;
      for (const auto& [s, node] : r.strings(*t, "retry", "delivery"))
        if (auto d = r.duration_of(*node, "delivery.retry")) retry.push_back(*d);
      if (retry.empty()) {
        r.error(*t->get("retry"), "delivery.retry: needs at least one interval");
      } else {
        c.delivery.retry = retry;
      }
    }
    r.duration(*t, "expire", "delivery", c.delivery.expire);
    r.unsigned_int(*t, "concurrency_per_domain", "delivery", c.delivery.concurrency_per_domain, 1000);
    r.duration(*t, "connect_timeout", "delivery", c.delivery.connect_timeout);
    r.duration(*t, "command_timeout", "delivery", c.delivery.command_timeout);
    r.source_address(*t, "delivery", c.delivery.source_address);
    r.source_name(*t, "delivery", c.delivery.source_name);
    std::string family;
    r.string(*t, "address_family", "delivery", family);
    if (family == "ipv4") {
      c.delivery.address_family = AddressFamily::ipv4;
    } else if (family == "ipv6") {
      c.delivery.address_family = AddressFamily::ipv6;
    } else if (!family.empty() && family != "any") {
      r.error(*t->get("address_family"), "delivery.address_family: one of \"ipv4\", \"ipv6\", \"any\"");
    }
    if (const toml::node* n = t->get("rate_limit_pause")) {
      // Shorter than a second is no pause; longer than 2 hours (doubled on
      // repeats up to 8 times: 16 hours) would hold mail for most of a day.
      if (auto d = r.duration_of(*n, "delivery.rate_limit_pause")) {
        if (*d < Seconds(1) || *d > Seconds(2 * 3600))
          r.error(*n, "delivery.rate_limit_pause: out of range (\"1s\" to \"2h\"; Gmail asks for at least \"10m\")");
        else
          c.delivery.rate_limit_pause = *d;
      }
    }
  }
  if (const auto* t = r.subtable(root, "limits")) {
    r.check_keys(*t, "limits", {"message_size", "recipients", "connections", "connections_per_ip", "line_length",
                                "command_timeout", "pop3_idle_timeout", "imap_idle_timeout", "errors",
                                "received_headers", "stress_timeout"});
    r.size(*t, "message_size", "limits", c.limits.message_size);
    r.unsigned_int(*t, "recipients", "limits", c.limits.recipients, 100000);
    r.unsigned_int(*t, "connections", "limits", c.limits.connections, 1000000);
    r.unsigned_int(*t, "connections_per_ip", "limits", c.limits.connections_per_ip, 1000000);
    r.unsigned_int(*t, "line_length", "limits", c.limits.line_length, 1000000);
    r.duration(*t, "command_timeout", "limits", c.limits.command_timeout);
    r.duration(*t, "stress_timeout", "limits", c.limits.stress_timeout);
    r.duration(*t, "pop3_idle_timeout", "limits", c.limits.pop3_idle_timeout);
    r.duration(*t, "imap_idle_timeout", "limits", c.limits.imap_idle_timeout);
    r.unsigned_int(*t, "errors", "limits", c.limits.errors, 1000);
    r.unsigned_int(*t, "received_headers", "limits", c.limits.received_headers, 1000);
    if (c.limits.line_length < 512) r.error(*t, "limits.line_length: at least 512 (RFC 5321 §4.5.3.1.4)");
    // Zero would refuse every message (552, 452) or every connection while
    // the server looks healthy.
    const std::pair<const char*, uint64_t> at_least_one[] = {
        {"message_size", c.limits.message_size},
        {"recipients", c.limits.recipients},
        {"connections", c.limits.connections},
        {"connections_per_ip", c.limits.connections_per_ip}};
    for (const auto& [key, value] : at_least_one)
      if (value == 0 && t->get(key) != nullptr)
        r.error(*t->get(key), std::string("limits.") + key + ": 0 would refuse everything; at least 1");
  }
  if (const auto* t = r.subtable(root, "auth")) {
    r.check_keys(*t, "auth", {"allow_plaintext", "failure_delay", "reveal_client", "failure_limit", "failure_window",
                              "lockout"});
    r.boolean(*t, "allow_plaintext", "auth", c.auth.allow_plaintext);
    r.duration(*t, "failure_delay", "auth", c.auth.failure_delay);
    r.boolean(*t, "reveal_client", "auth", c.auth.reveal_client);
    r.unsigned_int(*t, "failure_limit", "auth", c.auth.failure_limit, 1000000);
    r.duration(*t, "failure_window", "auth", c.auth.failure_window);
    r.duration(*t, "lockout", "auth", c.auth.lockout);
  }
  if (const auto* t = r.subtable(root, "srs")) {
    r.check_keys(*t, "srs", {"domain", "secret_file"});
    r.string(*t, "domain", "srs", c.srs.domain);
    r.path_value(*t, "secret_file", "srs", c.srs.secret_file);
    // One without the other turned SRS off without a word, or failed only
    // when serve started.
    if (c.srs.domain.empty() != c.srs.secret_file.empty())
      r.error(*t, c.srs.domain.empty() ? "srs.domain: missing (secret_file is set; both or neither)"
                                       : "srs.secret_file: missing (domain is set; both or neither)");
  }
  if (const auto* t = r.subtable(root, "dmarc")) {
    r.check_keys(*t, "dmarc", {"method", "public_suffix_list"});
    r.string(*t, "method", "dmarc", c.dmarc.method);
    r.path_value(*t, "public_suffix_list", "dmarc", c.dmarc.public_suffix_list);
    if (c.dmarc.method != "tree-walk" && c.dmarc.method != "psl")
      r.error(*t->get("method"), "dmarc.method: one of \"tree-walk\", \"psl\"");
  }

  if (const auto* t = r.subtable(root, "scan")) read_scan(r, *t, c.scan);

  std::map<std::string, std::string> seen_domains, seen_mailboxes, seen_addresses, seen_forwards;
  auto duplicate = [&](std::map<std::string, std::string>& seen, const std::string& key, const toml::node& node,
                       const std::string& what) {
    auto [it, inserted] = seen.emplace(key, r.where(node));
    if (!inserted) r.error(node, "duplicate " + what + " '" + key + "' (first defined at " + it->second + ")");
    return !inserted;
  };

  r.each_table(root, "domain", [&](const toml::table& t) {
    r.check_keys(t, "domain", {"name", "dkim_selector", "dkim_key", "dkim", "arc", "dmarc_inbound"});
    Domain d;
    r.string(t, "name", "domain", d.name);
    d.name = base::to_lower(d.name);
    r.string(t, "dkim_selector", "domain", d.dkim_selector);
    r.boolean(t, "dkim", "domain", d.dkim);
    if (d.dkim) r.path_value(t, "dkim_key", "domain", d.dkim_key);
    // A key without a selector was skipped without a word: forwards went
    // out unsigned while `dns` asked for a key that keygen would not write.
    if (d.dkim && !d.dkim_key.empty() && d.dkim_selector.empty())
      r.error(*t.get("dkim_key"), "domain.dkim_key: needs dkim_selector (the key is published at "
                                  "SELECTOR._domainkey." + base::to_lower(d.name) + ")");
    r.boolean(t, "arc", "domain", d.arc);
    r.string(t, "dmarc_inbound", "domain", d.dmarc_inbound);
    if (d.dmarc_inbound != "tag" && d.dmarc_inbound != "reject")
      r.error(*t.get("dmarc_inbound"), "domain.dmarc_inbound: one of \"tag\", \"reject\"");
    if (d.name.empty() || !mail::parse_mailbox("x@" + d.name, false)) {
      r.error(t, "domain.name: missing or not a domain name");
      return;
    }
    if (duplicate(seen_domains, d.name, t, "domain")) return;
    c.domains.push_back(std::move(d));
  });
  r.each_table(root, "mailbox", [&](const toml::table& t) {
    r.check_keys(t, "mailbox", {"name", "send_as", "quota"});
    Mailbox m;
    r.string(t, "name", "mailbox", m.name);
    if (!mail::valid_mailbox_name(m.name)) {
      r.error(t, "mailbox.name: missing or invalid '" + m.name + "' (letters, digits, '.', '_', '-')");
      return;
    }
    for (const auto& [s, node] : r.strings(t, "send_as", "mailbox")) {
      if (!mail::parse_mailbox(s, true)) r.error(*node, "mailbox.send_as: '" + s + "' is not an email address");
      m.send_as.push_back(base::to_lower(s));
    }
    r.size(t, "quota", "mailbox", m.quota);
    if (duplicate(seen_mailboxes, m.name, t, "mailbox")) return;
    c.mailboxes.push_back(std::move(m));
  });
  // Targets are checked after all mailboxes are known.
  std::vector<std::pair<const toml::node*, mail::Target>> mailbox_refs;
  auto read_targets = [&](const toml::table& t, std::string_view key, const std::string& path) {
    std::vector<mail::Target> out;
    for (const auto& [s, node] : r.strings(t, key, path)) {
      if (auto target = r.target(s, *node, path + "." + std::string(key))) {
        if (target->kind == mail::Target::Kind::mailbox) mailbox_refs.emplace_back(node, *target);
        out.push_back(*target);
      }
    }
    return out;
  };
  r.each_table(root, "address", [&](const toml::table& t) {
    r.check_keys(t, "address", {"address", "deliver"});
    AddressRule a;
    r.string(t, "address", "address", a.address);
    auto parsed = mail::parse_mailbox(a.address, true);
    if (!parsed) {
      r.error(t, "address.address: missing or not an email address '" + a.address + "'");
      return;
    }
    a.address = parsed->key();
    a.deliver = read_targets(t, "deliver", "address");
    if (a.deliver.empty() && t.get("deliver") == nullptr) r.error(t, "address.deliver: missing (a list of targets)");
    if (a.deliver.empty() && t.get("deliver") != nullptr && t.get("deliver")->is_array() &&
        t.get("deliver")->as_array()->empty())
      r.error(*t.get("deliver"), "address.deliver: empty (mail for '" + a.address +
                                     "' would be accepted and never delivered); remove the [[address]] to refuse it");
    if (!c.find_domain(parsed->domain) && !c.domains.empty())
      r.error(t, "address '" + a.address + "': domain " + parsed->domain + " is not a [[domain]]");
    if (duplicate(seen_addresses, a.address, t, "address")) return;
    c.addresses.push_back(std::move(a));
  });
  struct ForwardLink {
    std::string from, to;
    const toml::node* node;
  };
  std::vector<ForwardLink> forward_links;
  std::map<std::string, std::string> forward_where;  // each [[forward]] table's position, by address
  r.each_table(root, "forward", [&](const toml::table& t) {
    r.check_keys(t, "forward",
                 {"to", "hidden", "fallback", "defer_limit", "notify", "dmarc", "source_address", "source_name",
                  "spam"});
    Forward f;
    r.string(t, "to", "forward", f.to);
    f.to = base::to_lower(f.to);
    forward_where.emplace(f.to, r.where(t));
    if (!mail::parse_mailbox(f.to, true)) {
      r.error(t, "forward.to: missing or not an email address");
      return;
    }
    r.boolean(t, "hidden", "forward", f.hidden);
    f.fallback = read_targets(t, "fallback", "forward");
    r.duration(t, "defer_limit", "forward", f.defer_limit);
    r.boolean(t, "notify", "forward", f.notify);
    r.string(t, "dmarc", "forward", f.dmarc);
    if (!valid_forward_dmarc(f.dmarc))
      r.error(*t.get("dmarc"), "forward.dmarc: one of \"rewrite-from\", \"divert\", \"unchanged\"");
    r.source_address(t, "forward", f.source_address);
    r.source_name(t, "forward", f.source_name);
    std::string spam;
    r.string(t, "spam", "forward", spam);
    if (spam == "forward") f.forward_spam = true;
    else if (!spam.empty() && spam != "keep-local")
      r.error(*t.get("spam"), "forward.spam: one of \"keep-local\", \"forward\"");
    if (duplicate(seen_forwards, f.to, t, "forward")) return;
    // Issue 3: remember where each forward:→forward: fallback link is
    // written, for the cycle check below.
    if (const toml::node* fb = t.get("fallback"); fb != nullptr && fb->as_array() != nullptr) {
      for (const auto& el : *fb->as_array()) {
        if (!el.is_string()) continue;
        std::string v = *el.value<std::string>();
        if (base::istarts_with(v, "forward:")) forward_links.push_back({f.to, base::to_lower(v.substr(8)), &el});
      }
    }
    c.forwards.push_back(std::move(f));
  });
  r.each_table(root, "route", [&](const toml::table& t) { read_route(r, t, c); });

  // RFC 5321 §4.5.1: postmaster is always accepted; its mail goes to the
  // mailbox named here, by default the first [[mailbox]].
  r.string(root, "postmaster", "postmaster", c.postmaster);
  if (const toml::node* n = root.get("postmaster"); n != nullptr && !c.postmaster.empty()) {
    if (c.find_mailbox(c.postmaster) == nullptr)
      r.error(*n, "postmaster: no [[mailbox]] named '" + c.postmaster + "'");
  } else if (!c.mailboxes.empty()) {
    c.postmaster = c.mailboxes.front().name;
  }

  merge_user_forwards(r, c, options);

  // Cross-references: every mailbox target names a [[mailbox]].
  for (const auto& [node, target] : mailbox_refs)
    if (!c.find_mailbox(target.value))
      r.error(*node, "target '" + target.str() + "': no [[mailbox]] named '" + target.value + "'");
  check_routes(r, c);
  // DESIGN.md: the last link of a hidden forward's chain is a local mailbox.
  for (const auto& f : c.forwards) {
    if (f.hidden && (f.fallback.empty() || f.fallback.back().kind != mail::Target::Kind::mailbox))
      r.error_at(forward_where.contains(f.to) ? forward_where.at(f.to) : c.source.string(),
                 "forward '" + f.to + "': hidden forwards need a fallback ending in a mailbox target");
  }
  // Issue 3: a fallback chain may not cycle (A falls back to B, B to A):
  // depth-first search over forward→forward links; each link that closes a
  // cycle is reported where it is written.
  {
    std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
    std::vector<std::string> path;
    std::function<void(const std::string&)> visit = [&](const std::string& from) {
      state[from] = 1;
      path.push_back(from);
      for (const auto& link : forward_links) {
        if (link.from != from) continue;
        int& st = state[link.to];
        if (st == 1) {
          std::string cycle;
          auto it = std::find(path.begin(), path.end(), link.to);
          for (; it != path.end(); ++it) cycle += *it + " -> ";
          r.error(*link.node, "forward '" + link.from + "': fallback chain cycles (" + cycle + link.to + ")");
        } else if (st == 0) {
          visit(link.to);
        }
      }
      path.pop_back();
      state[from] = 2;
    };
    for (const auto& f : c.forwards)
      if (state[f.to] == 0) visit(f.to);
  }
  // A fallback forward: link without a [[forward]] table of its own gets
  // the defaults (hidden, 15m defer limit, no notice); its chain is empty,
  // so the enclosing chain goes on after it.
  for (const auto& link : forward_links) {
    if (c.find_forward(link.to) == nullptr) {
      Forward d;
      d.to = link.to;
      c.forwards.push_back(std::move(d));
    }
  }
  // Forwarded mail from a domain without a key is neither sealed nor, when
  // its From is rewritten, signed: Gmail refuses more of it.
  auto forwards_mail = [&c](const Domain& d) {
    for (const auto& a : c.addresses)
      if (mail::domain_of(a.address) == d.name)
        for (const auto& t : a.deliver)
          if (t.kind == mail::Target::Kind::forward) return true;
    return false;
  };
  for (const auto& d : c.domains)
    if (d.dkim && d.dkim_key.empty() && forwards_mail(d))
      r.warning_at(c.source.string(), "domain " + d.name + " has no dkim_key: mail it forwards is neither ARC-sealed "
                                      "nor DKIM-signed (set dkim_selector and dkim_key, and run `hikyaku dkim "
                                      "keygen`; or dkim = false)");
  // A hidden forward keeps its address from the sender only with SRS: its
  // copies carry our envelope sender, and a bounce its far side sends after
  // accepting one comes back to us (kept in the fallback mailbox). Without
  // [srs] such a bounce goes to the sender and names the address. Loading
  // goes on (the forward still works; a refusal at SMTP time still diverts).
  // The warning counts them: a hidden address is never written into a log.
  if (c.srs.domain.empty()) {
    const auto hidden = std::count_if(c.forwards.begin(), c.forwards.end(), [](const Forward& f) { return f.hidden; });
    if (hidden > 0)
      r.warning_at(root.get("forward") != nullptr ? r.where(*root.get("forward")) : c.source.string(),
                   std::to_string(hidden) + " hidden forward(s) without [srs]: their copies keep the sender's "
                   "envelope address, so a bounce their far side sends after accepting one goes to the sender "
                   "and names the forward address; set [srs] domain and secret_file");
  }
}

}  // namespace

base::Result<base::Cidr> parse_source_address(std::string_view text) {
  if (text.find('/') != std::string_view::npos) return base::make_error("an address, not a prefix");
  return base::Cidr::parse(text);
}

bool valid_source_name(std::string_view name) {
  return name.empty() || mail::parse_mailbox("x@" + std::string(name), false).has_value();
}

bool valid_forward_dmarc(std::string_view mode) {
  return mode == "rewrite-from" || mode == "divert" || mode == "unchanged";
}

LoadResult load_config_text(std::string_view text, const std::string& name, const std::filesystem::path& base_dir,
                            const LoadOptions& options) {
  LoadResult out;
  Reader reader(name, base_dir);
  toml::table root;
  try {
    // toml++ reports syntax errors by exception; this is the parser edge.
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    out.errors.push_back({name + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column),
                          std::string(e.description())});
    return out;
  }
  Config c;
  c.source = name;
  read_document(reader, root, c, options);
  c.files = std::move(reader.files);
  c.warnings = std::move(reader.warnings);
  if (!reader.errors.empty()) {
    out.errors = std::move(reader.errors);
    return out;
  }
  out.config = std::move(c);
  return out;
}

LoadResult load_config(const std::filesystem::path& file, const LoadOptions& options) {
  auto text = base::read_file(file);
  if (!text.ok()) {
    LoadResult out;
    out.errors.push_back({file.string(), text.error().message});
    return out;
  }
  auto abs = std::filesystem::absolute(file);
  return load_config_text(*text, file.string(), abs.parent_path(), options);
}

std::vector<ConfigError> unreadable_files(const Config& config, std::string_view only_key) {
  std::vector<ConfigError> out;
  for (const auto& f : config.files) {
    if (!only_key.empty() && f.key != only_key) continue;
    const int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
      continue;
    }
    out.push_back({f.where, f.key + ": cannot read " + f.path.string() + ": " + std::strerror(errno)});
  }
  return out;
}

std::string_view demo_config_text() {
  // The embedded demo (README's first command): loopback only, high ports,
  // data in ./var, a self-signed certificate, one mailbox "demo" whose
  // password `hikyaku serve` generates and prints at start.
  return R"(# hikyaku embedded demo configuration
hostname = "mx.example.test"
data_dir = "var"

[listen]
smtp  = ["127.0.0.1:2525"]
pop3  = ["127.0.0.1:1110"]
pop3s = ["127.0.0.1:1995"]
imap  = ["127.0.0.1:1143"]
imaps = ["127.0.0.1:1993"]

[tls]
self_signed = true

[auth]
allow_plaintext = true   # loopback demo only

[[domain]]
name = "example.test"

[[mailbox]]
name = "demo"
send_as = ["demo@example.test"]

[[address]]
address = "demo@example.test"
deliver = ["mailbox:demo"]

[[address]]
address = "postmaster@example.test"
deliver = ["mailbox:demo"]
)";
}

}  // namespace hikyaku::config
