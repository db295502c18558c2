#include "config/known_forwards.hpp"

#include <set>

#include "base/access_list.hpp"
#include "base/file.hpp"
#include "base/strings.hpp"
#include "mail/address.hpp"
#include "mail/target.hpp"

namespace hikyaku::config {

namespace {

using std::chrono::system_clock;

// A hundred years: a longer defer limit is written as this (it never ends
// either way), and read back as damage.
constexpr uint64_t kMaxDeferLimit = 100ull * 366 * 86400;
// A longer chain is damage (the configuration's own are a few links).
constexpr size_t kMaxLinks = 64;

// A field as written (base::escape_field), and a leading '#' as %23 so
// that the line is not taken for a comment.
std::string field(std::string_view value) {
  std::string out = base::escape_field(value);
  if (out.front() == '#') out.replace(0, 1, "%23");
  return out;
}

std::optional<std::string> unfield(std::string_view text) {
  std::string out;
  if (!base::unescape_field(text, out)) return std::nullopt;
  return out;
}

std::optional<uint64_t> number(std::string_view text, uint64_t max) {
  auto n = base::parse_uint(text);
  if (!n || *n > max) return std::nullopt;
  return n;
}

bool valid_address(std::string_view address) {
  return !address.empty() && address != "-" && mail::parse_mailbox(address, true).has_value();
}

// A source address of that family, as the configuration accepts one.
bool valid_ip(const std::string& text, bool v6) {
  auto cidr = parse_source_address(text);
  return cidr.ok() && cidr->v6 == v6;
}

// Why `f` cannot be kept ("" when it can): the rules of a hidden [[forward]].
std::string invalid(const Forward& f) {
  if (!f.hidden) return "not a hidden forward";
  if (!valid_address(f.to) || f.to != base::to_lower(f.to)) return "bad address";
  if (f.defer_limit.count() < 0 || static_cast<uint64_t>(f.defer_limit.count()) > kMaxDeferLimit)
    return "bad defer limit (seconds, 0 to " + std::to_string(kMaxDeferLimit) + ")";  // format() clamps
  if (!valid_forward_dmarc(f.dmarc)) return "bad dmarc (rewrite-from, divert or unchanged)";
  if (!f.source_address.v4.empty() && !valid_ip(f.source_address.v4, false)) return "bad source IPv4 address";
  if (!f.source_address.v6.empty() && !valid_ip(f.source_address.v6, true)) return "bad source IPv6 address";
  if (!valid_source_name(f.source_name)) return "bad source name";
  if (f.fallback.size() > kMaxLinks) return "bad fallback (at most " + std::to_string(kMaxLinks) + " targets)";
  for (const auto& t : f.fallback) {
    const auto again = mail::Target::parse(t.str());
    if (!again || *again != t) return "bad fallback target";
  }
  // A [[forward]] written in the configuration ends in a mailbox; the
  // default one a fallback link makes has no chain of its own.
  if (!f.fallback.empty() && f.fallback.back().kind != mail::Target::Kind::mailbox)
    return "the fallback does not end in a mailbox";
  return "";
}

std::optional<KnownForward> parse_line(const std::vector<std::string_view>& f, std::string& why) {
  if (f.size() < 8) {
    why = "expected at least 8 fields (address, removed, defer limit, notify, dmarc, source IPv4, source IPv6, "
          "source name, fallback...), got " +
          std::to_string(f.size());
    return std::nullopt;
  }
  std::vector<std::string> v;
  for (auto text : f) {
    auto value = unfield(text);
    if (!value) {
      why = "bad %XX escape";
      return std::nullopt;
    }
    v.push_back(std::move(*value));
  }
  KnownForward entry;
  Forward& fw = entry.forward;
  fw.hidden = true;
  fw.to = base::to_lower(v[0]);
  if (f[1] != "-") {
    entry.removed = base::parse_unix_seconds(f[1]);
    if (!entry.removed) {
      why = "bad removal time (Unix seconds or -)";
      return std::nullopt;
    }
  }
  auto limit = number(f[2], kMaxDeferLimit);
  if (!limit) {
    why = "bad defer limit (seconds, 0 to " + std::to_string(kMaxDeferLimit) + ")";
    return std::nullopt;
  }
  fw.defer_limit = std::chrono::seconds(*limit);
  if (f[3] != "yes" && f[3] != "no") {
    why = "bad notify (yes or no)";
    return std::nullopt;
  }
  fw.notify = f[3] == "yes";
  fw.dmarc = v[4];
  fw.source_address.v4 = v[5];
  fw.source_address.v6 = v[6];
  fw.source_name = v[7];
  for (size_t i = 8; i < v.size(); ++i) {
    auto target = mail::Target::parse(v[i]);
    if (!target) {
      why = "bad fallback target (mailbox:NAME or forward:ADDRESS)";
      return std::nullopt;
    }
    fw.fallback.push_back(std::move(target).value());
  }
  why = invalid(fw);
  if (!why.empty()) return std::nullopt;
  return entry;
}

}  // namespace

ParsedKnownForwards parse_known_forwards(std::string_view text) {
  ParsedKnownForwards out;
  std::set<std::string, std::less<>> seen;
  size_t number = 0;
  bool header = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!header) {
      if (line != kKnownForwardsHeader) {
        out.issues.push_back({number, "not a known-forwards file (expected \"" + std::string(kKnownForwardsHeader) +
                                          "\"); the whole file is ignored"});
        out.foreign = true;
        return out;
      }
      header = true;
      continue;
    }
    if (base::blank_or_comment(line)) continue;
    std::string why;
    auto entry = parse_line(base::split_fields(line), why);
    if (!entry) {
      out.issues.push_back({number, why});
      continue;
    }
    if (!seen.emplace(entry->forward.to).second) {
      out.issues.push_back({number, "duplicate address"});
      continue;
    }
    out.entries.push_back(std::move(*entry));
  }
  return out;
}

std::string format_known_forwards(const std::vector<KnownForward>& entries) {
  std::string out(kKnownForwardsHeader);
  out +=
      "\n# address removed(-: configured) defer-limit-s notify dmarc source-ipv4 source-ipv6 source-name "
      "fallback...\n";
  std::set<std::string, std::less<>> seen;
  for (const auto& e : entries) {
    Forward f = e.forward;
    if (f.defer_limit.count() > static_cast<int64_t>(kMaxDeferLimit))
      f.defer_limit = std::chrono::seconds(kMaxDeferLimit);  // longer than mail is kept: the same
    std::optional<uint64_t> removed;
    if (e.removed) {
      removed = base::unix_seconds(*e.removed);
      if (!removed) continue;
    }
    if (!invalid(f).empty() || !seen.emplace(f.to).second) continue;
    out += field(f.to);
    out += ' ';
    out += removed ? std::to_string(*removed) : "-";
    out += ' ';
    out += std::to_string(f.defer_limit.count());
    out += f.notify ? " yes " : " no ";
    out += field(f.dmarc);
    out += ' ';
    out += field(f.source_address.v4);
    out += ' ';
    out += field(f.source_address.v6);
    out += ' ';
    out += field(f.source_name);
    for (const auto& t : f.fallback) {
      out += ' ';
      out += field(t.str());
    }
    out += '\n';
  }
  return out;
}

std::vector<KnownForward> remember_forwards(Config& config, const std::vector<KnownForward>& known,
                                            system_clock::time_point now) {
  std::vector<KnownForward> out;
  for (const auto& f : config.forwards) {
    if (!f.hidden) continue;
    KnownForward entry{f, std::nullopt};
    entry.forward.forward_spam = false;
    out.push_back(std::move(entry));
  }
  // Rounded up: never before the last moment it was configured.
  const auto removed_at = std::chrono::ceil<std::chrono::seconds>(now);
  size_t missing_mailboxes = 0;
  for (const auto& k : known) {
    if (config.find_forward(k.forward.to) != nullptr) continue;  // configured (again)
    config.forwards.push_back(k.forward);
    out.push_back({k.forward, k.removed.value_or(removed_at)});
    for (const auto& t : k.forward.fallback)
      if (t.kind == mail::Target::Kind::mailbox && config.find_mailbox(t.value) == nullptr) ++missing_mailboxes;
  }
  if (missing_mailboxes > 0)
    config.warnings.push_back(
        {std::string(kKnownForwardsFile),
         std::to_string(missing_mailboxes) +
             " fallback mailbox(es) of removed hidden forwards are no longer configured: mail those forwards "
             "refuse is still diverted into their Maildirs, which no one can read until the [[mailbox]] is back"});
  return out;
}

void forget_forwards(std::vector<KnownForward>& known, system_clock::time_point now, std::chrono::seconds keep,
                     const std::set<std::string, std::less<>>& in_use) {
  // What the queue needs: the forwards in use and, through the fallback
  // links of known entries, every forward their chains go through.
  std::set<std::string, std::less<>> needed(in_use.begin(), in_use.end());
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& k : known) {
      if (!needed.contains(k.forward.to)) continue;
      for (const auto& t : k.forward.fallback)
        if (t.kind == mail::Target::Kind::forward && needed.insert(t.value).second) grew = true;
    }
  }
  std::erase_if(known, [&](const KnownForward& k) {
    return k.removed && now - *k.removed >= keep && !needed.contains(k.forward.to);
  });
}

KnownForwardsFile read_known_forwards(const std::filesystem::path& path) {
  KnownForwardsFile out;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return out;  // a fresh data_dir, or an older version's
  auto text = base::read_file(path);
  if (!text.ok()) {
    out.warnings.push_back(text.error().message + "; removed hidden forwards are not known");
    out.unread = true;
    return out;
  }
  auto parsed = parse_known_forwards(*text);
  out.unread = parsed.foreign;
  for (const auto& issue : parsed.issues)
    out.warnings.push_back(path.string() + ":" + std::to_string(issue.line) + ": " + issue.message + "; line ignored");
  out.entries = std::move(parsed.entries);
  return out;
}

base::Status write_known_forwards(const std::filesystem::path& path, const std::vector<KnownForward>& entries) {
  return base::replace_file_durable(path, format_known_forwards(entries));
}

}  // namespace hikyaku::config
