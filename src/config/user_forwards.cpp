#include "config/user_forwards.hpp"

#include <algorithm>
#include <map>

#include <toml++/toml.h>

#include "base/strings.hpp"
#include "mail/address.hpp"
#include "mail/target.hpp"

namespace hikyaku::config {

namespace {

std::string position(const std::string& name, const toml::source_region& src) {
  if (src.begin.line == 0) return name;
  return name + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// One [[user]] table; false (with errors) when it is not usable.
bool read_entry(const std::string& name, const toml::table& t, UserForward& uf, std::vector<ConfigError>& errors) {
  const size_t before = errors.size();
  auto error = [&](const toml::node& n, std::string message) {
    errors.push_back({position(name, n.source()), std::move(message)});
  };
  uf.where = position(name, t.source());
  for (const auto& [key, node] : t) {
    const std::string_view k = key.str();
    if (k != "name" && k != "to" && k != "keep_copy" && k != "fallback")
      errors.push_back({position(name, key.source()), "unknown key 'user." + std::string(k) + "'"});
  }

  // Sanity checks, one key at a time.
  if (const toml::node* n = t.get("name"); n == nullptr) {
    errors.push_back({uf.where, "user.name: missing"});
  } else if (!n->is_string()) {
    error(*n, "user.name: expected a string");
  } else {
    uf.name = *n->value<std::string>();
    uf.name_where = position(name, n->source());
    if (!mail::valid_mailbox_name(uf.name))
      error(*n, "user.name: '" + uf.name + "' is not a mailbox name (letters, digits, '.', '_', '-')");
  }
  if (const toml::node* n = t.get("to"); n == nullptr) {
    errors.push_back({uf.where, "user.to: missing (a list of email addresses)"});
  } else if (const toml::array* arr = n->as_array(); arr == nullptr || arr->empty()) {
    error(*n, "user.to: expected a non-empty list of email addresses");
  } else {
    for (const auto& el : *arr) {
      if (!el.is_string()) {
        error(el, "user.to: expected a string");
        continue;
      }
      const std::string address = base::to_lower(*el.value<std::string>());
      if (!mail::parse_mailbox(address, true)) {
        error(el, "user.to: '" + address + "' is not an email address");
      } else if (std::find(uf.to.begin(), uf.to.end(), address) != uf.to.end()) {
        error(el, "user.to: '" + address + "' is listed twice");
      } else {
        uf.to.push_back(address);
        uf.to_where.push_back(position(name, el.source()));
      }
    }
  }
  if (const toml::node* n = t.get("keep_copy")) {
    if (n->is_boolean())
      uf.keep_copy = *n->value<bool>();
    else
      error(*n, "user.keep_copy: expected true or false");
  }
  if (const toml::node* n = t.get("fallback")) {
    const std::string v = n->is_string() ? *n->value<std::string>() : std::string();
    auto target = mail::Target::parse(v);
    if (!target || target->kind != mail::Target::Kind::mailbox) {
      error(*n, "user.fallback: expected \"mailbox:NAME\"");
    } else {
      uf.fallback = target->value;
      uf.fallback_where = position(name, n->source());
    }
  }
  return errors.size() == before;
}

}  // namespace

UserForwardsResult parse_user_forwards(std::string_view text, const std::string& name) {
  UserForwardsResult out;
  toml::table root;
  try {
    // toml++ reports syntax errors by exception; this is the parser edge.
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    out.errors.push_back({position(name, e.source()), std::string(e.description())});
    return out;
  }
  for (const auto& [key, node] : root)
    if (key.str() != "user")
      out.errors.push_back({position(name, key.source()), "unknown key '" + std::string(key.str()) + "'"});
  std::map<std::string, std::string> seen;  // mailbox → where
  if (const toml::node* n = root.get("user")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) out.errors.push_back({position(name, n->source()), "user: expected [[user]] tables"});
    for (size_t i = 0; arr != nullptr && i < arr->size(); ++i) {
      const toml::node& el = *arr->get(i);
      const toml::table* t = el.as_table();
      if (t == nullptr) {
        out.errors.push_back({position(name, el.source()), "user: expected a table"});
        continue;
      }
      UserForward uf;
      if (!read_entry(name, *t, uf, out.errors)) continue;
      if (auto [it, inserted] = seen.emplace(uf.name, uf.where); !inserted) {
        out.errors.push_back({uf.name_where, "duplicate [[user]] '" + uf.name + "' (first defined at " +
                                                 it->second + ")"});
        continue;
      }
      out.forwards.push_back(std::move(uf));
    }
  }
  if (!out.errors.empty()) out.forwards.clear();
  return out;
}

std::string render_user_forwards(const std::vector<UserForward>& forwards) {
  std::string out =
      "# Per-user forwarding, written by `hikyaku forward set|clear`; edit with\n"
      "# that command (the server reads this file at start and at reload).\n";
  for (const auto& f : forwards) {
    out += "\n[[user]]\nname = " + toml_string(f.name) + "\nto = [";
    for (size_t i = 0; i < f.to.size(); ++i) out += (i == 0 ? "" : ", ") + toml_string(f.to[i]);
    out += "]\nkeep_copy = ";
    out += f.keep_copy ? "true" : "false";
    out += "\n";
    if (!f.fallback.empty() && f.fallback != f.name) out += "fallback = " + toml_string("mailbox:" + f.fallback) + "\n";
  }
  return out;
}

std::vector<ConfigError> apply_user_forwards(Config& c, const std::vector<UserForward>& forwards,
                                             std::vector<ConfigError>& warnings) {
  std::vector<ConfigError> errors;
  // The [[forward]] tables of the configuration itself: they win.
  std::vector<std::string> configured;
  for (const auto& f : c.forwards) configured.push_back(f.to);
  std::map<std::string, const UserForward*> owner;  // forward address → the entry that added it

  for (const auto& uf : forwards) {
    const auto at = [](const std::string& where, const std::string& fallback) {
      return where.empty() ? fallback : where;
    };
    // Cross-checks against the configuration.
    const size_t before = errors.size();
    if (c.find_mailbox(uf.name) == nullptr)
      errors.push_back({at(uf.name_where, uf.where), "user.name: no [[mailbox]] named '" + uf.name + "' in " +
                                                         c.source.string()});
    if (!uf.fallback.empty() && c.find_mailbox(uf.fallback) == nullptr)
      errors.push_back({at(uf.fallback_where, uf.where), "user.fallback: no [[mailbox]] named '" + uf.fallback +
                                                             "' in " + c.source.string()});
    for (size_t i = 0; i < uf.to.size(); ++i) {
      const std::string where = at(i < uf.to_where.size() ? uf.to_where[i] : "", uf.where);
      const std::string domain = mail::domain_of(uf.to[i]);
      if (c.is_local_domain(domain)) {
        errors.push_back({where, "user.to: '" + uf.to[i] + "' is in " + domain +
                                     ", one of this server's [[domain]]s: forwarding into it would loop"});
        continue;
      }
      const bool is_configured = std::find(configured.begin(), configured.end(), uf.to[i]) != configured.end();
      if (auto it = owner.find(uf.to[i]);
          !is_configured && it != owner.end() && it->second->fallback_mailbox() != uf.fallback_mailbox())
        errors.push_back({where, "user.to: '" + uf.to[i] + "' is also the forward of mailbox '" + it->second->name +
                                     "' (" + it->second->where + ") with fallback mailbox:" +
                                     it->second->fallback_mailbox() +
                                     "; one address has one fallback: give both the same --fallback"});
    }
    if (errors.size() != before) continue;

    // Merge: mailbox:NAME → forward:TO..., then mailbox:NAME with keep_copy.
    const mail::Target own{mail::Target::Kind::mailbox, uf.name};
    std::vector<mail::Target> replacement;
    for (const auto& to : uf.to) replacement.push_back({mail::Target::Kind::forward, to});
    if (uf.keep_copy) replacement.push_back(own);
    bool delivered = false;
    for (auto& rule : c.addresses) {
      if (std::find(rule.deliver.begin(), rule.deliver.end(), own) == rule.deliver.end()) continue;
      delivered = true;
      std::vector<mail::Target> deliver;
      auto add = [&](const mail::Target& t) {
        if (std::find(deliver.begin(), deliver.end(), t) == deliver.end()) deliver.push_back(t);
      };
      for (const auto& t : rule.deliver) {
        if (t == own) {
          for (const auto& r : replacement) add(r);
        } else {
          add(t);
        }
      }
      rule.deliver = std::move(deliver);
    }
    if (!delivered)
      warnings.push_back({uf.where, "forward for mailbox '" + uf.name +
                                        "' has no effect: no [[address]] delivers to mailbox:" + uf.name});
    for (const auto& to : uf.to) {
      if (c.find_forward(to) != nullptr) continue;  // configured (wins) or added by another entry
      Forward f;
      f.to = to;
      f.hidden = true;
      f.fallback = {mail::Target{mail::Target::Kind::mailbox, uf.fallback_mailbox()}};
      c.forwards.push_back(std::move(f));
      owner.emplace(to, &uf);
    }
  }
  return errors;
}

std::string describe_user_forward(const Config& c, const UserForward& uf) {
  std::string out = "forward for " + uf.name + ": ";
  std::vector<const Forward*> own;  // a [[forward]] of the configuration wins: described as it is
  for (size_t i = 0; i < uf.to.size(); ++i) {
    out += (i == 0 ? "" : ", ") + uf.to[i];
    if (const Forward* f = c.find_forward(uf.to[i])) own.push_back(f);
  }
  out += " (";
  if (own.size() < uf.to.size()) out += "hidden; fallback mailbox:" + uf.fallback_mailbox() + "; ";
  out += uf.keep_copy ? "keeps a local copy" : "no local copy";
  for (const Forward* f : own) {
    out += "; " + f->to + ": its [[forward]] in " + c.source.string() + " applies: ";
    if (f->hidden) {
      out += "hidden";
    } else {
      out += "NOT hidden (a refusal is reported to the sender, naming this address)";
    }
    if (f->fallback.empty()) {
      out += ", no fallback";
    } else {
      out += ", fallback";
      for (const auto& t : f->fallback) out += " " + t.str();
    }
  }
  return out + ")";
}

}  // namespace hikyaku::config
