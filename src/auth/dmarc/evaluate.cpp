#include "auth/dmarc/evaluate.hpp"

#include <algorithm>
#include <map>

#include "base/strings.hpp"

namespace hikyaku::auth::dmarc {
namespace {

// DMARCbis §4.10: at most 8 queries in one walk.
constexpr size_t kMaxWalkLabels = 8;
constexpr size_t kJumpToLabels = 7;

std::string normalize(std::string_view d) {
  if (!d.empty() && d.back() == '.') d.remove_suffix(1);
  return base::to_lower(d);
}

size_t label_count(std::string_view d) {
  if (d.empty()) return 0;
  return static_cast<size_t>(std::count(d.begin(), d.end(), '.')) + 1;
}

// Drop labels from the left until `keep` remain.
std::string keep_labels(std::string_view d, size_t keep) {
  size_t n = label_count(d);
  while (n > keep) {
    d.remove_prefix(d.find('.') + 1);
    --n;
  }
  return std::string(d);
}

enum class Found { none, record, temperror, permerror };

struct Lookup {
  Found found = Found::none;
  Record record;
  std::string error;
};

class Discoverer {
 public:
  explicit Discoverer(dns::Resolver& resolver) : resolver_(resolver) {}

  // One _dmarc query, memoized. DMARCbis §4.10 steps 2 and 7: non-DMARC
  // records are dropped; several DMARC records are all discarded.
  const Lookup& lookup(const std::string& domain) {
    auto it = cache_.find(domain);
    if (it != cache_.end()) return it->second;
    Lookup l;
    auto txt = resolver_.txt("_dmarc." + domain);
    if (txt.status == dns::Status::temp_error) {
      l.found = Found::temperror;
    } else if (txt.status == dns::Status::ok) {
      const std::string* one = nullptr;
      int count = 0;
      for (const auto& t : txt.records)
        if (is_dmarc_record(t)) {
          one = &t;
          ++count;
        }
      if (count == 1) {
        auto rec = parse_record(*one);
        if (rec) {
          l.found = Found::record;
          l.record = rec.value();
        } else {
          l.found = Found::permerror;
          l.error = rec.error().message;
        }
      }
    }
    return cache_.emplace(domain, std::move(l)).first->second;
  }

  // DMARCbis §4.10 steps 4-8: the names a tree walk queries, from `domain`
  // upwards: then at most 7 labels, then one label fewer each time.
  static std::vector<std::string> walk_targets(const std::string& domain) {
    std::vector<std::string> out{domain};
    size_t n = label_count(domain);
    std::string cur = domain;
    while (n > 1 && out.size() < kMaxWalkLabels) {
      size_t next = n >= kMaxWalkLabels ? kJumpToLabels : n - 1;
      cur = keep_labels(cur, next);
      n = next;
      out.push_back(cur);
    }
    return out;
  }

  // DMARCbis §4.10.2: the Organizational Domain by tree walk. psd=n marks it,
  // psd=y marks a PSD (the org domain is one label below it); otherwise the
  // shortest name with a record; otherwise the domain itself.
  // Returns nullopt on a DNS temporary error.
  std::optional<std::string> org_by_walk(const std::string& domain) {
    std::vector<std::string> targets = walk_targets(domain);
    std::string shortest_with_record;
    for (size_t i = 0; i < targets.size(); ++i) {
      const Lookup& l = lookup(targets[i]);
      if (l.found == Found::temperror) return std::nullopt;
      if (l.found != Found::record) continue;
      if (l.record.psd == PsdFlag::no) return targets[i];
      if (l.record.psd == PsdFlag::yes) {
        if (i == 0) return targets[i];
        // The name with one label more than the PSD, on the path to `domain`.
        return keep_labels(domain, label_count(targets[i]) + 1);
      }
      shortest_with_record = targets[i];
    }
    return shortest_with_record.empty() ? domain : shortest_with_record;
  }

 private:
  dns::Resolver& resolver_;
  std::map<std::string, Lookup> cache_;
};

Policy downgrade(Policy p) {
  switch (p) {
    case Policy::reject: return Policy::quarantine;
    case Policy::quarantine:
    case Policy::none: return Policy::none;
  }
  return Policy::none;
}

}  // namespace

std::string_view to_string(Result r) {
  switch (r) {
    case Result::none: return "none";
    case Result::pass: return "pass";
    case Result::fail: return "fail";
    case Result::temperror: return "temperror";
    case Result::permerror: return "permerror";
  }
  return "none";
}

Evaluation evaluate(dns::Resolver& resolver, const Input& input, const Options& options) {
  Evaluation e;
  const std::string author = normalize(input.from_domain);
  if (author.empty() || label_count(author) > 127) {
    e.detail = "no usable author domain";
    return e;
  }
  Discoverer disc(resolver);
  bool use_psl = options.discovery == Discovery::public_suffix_list && options.psl != nullptr;

  // Policy discovery. RFC 7489 §6.6.3: the author domain, then its
  // Organizational Domain. DMARCbis §4.10: the first record on the tree walk.
  std::vector<std::string> targets;
  if (use_psl) {
    targets.push_back(author);
    std::string org = options.psl->organizational_domain(author);
    if (org != author) targets.push_back(org);
  } else {
    targets = Discoverer::walk_targets(author);
  }
  const Lookup* found = nullptr;
  for (const auto& t : targets) {
    const Lookup& l = disc.lookup(t);
    if (l.found == Found::temperror) {
      e.result = Result::temperror;
      e.detail = "DNS error looking up _dmarc." + t;
      return e;
    }
    if (l.found == Found::permerror) {
      e.result = Result::permerror;
      e.policy_domain = t;
      e.detail = "_dmarc." + t + ": " + l.error;
      return e;
    }
    if (l.found == Found::record) {
      found = &l;
      e.policy_domain = t;
      break;
    }
  }
  if (found == nullptr) {
    e.detail = "no DMARC record for " + author;
    return e;  // Result::none
  }
  e.record = found->record;
  const Record& rec = found->record;

  // Organizational domains (for relaxed alignment).
  auto org_of = [&](const std::string& d) -> std::optional<std::string> {
    if (use_psl) return options.psl->organizational_domain(d);
    return disc.org_by_walk(d);
  };
  auto author_org = org_of(author);
  if (!author_org) {
    e.result = Result::temperror;
    e.detail = "DNS error finding the organizational domain of " + author;
    return e;
  }
  e.organizational_domain = *author_org;

  // RFC 7489 §3.1: strict = identical names; relaxed = same Organizational
  // Domain. A DNS temporary error sets `temp` and counts as not aligned.
  bool temp = false;
  auto aligned = [&](std::string_view id_in, AlignmentMode mode) -> bool {
    std::string id = normalize(id_in);
    if (id.empty()) return false;
    if (id == author) return true;
    if (mode == AlignmentMode::strict) return false;
    // Cheap pre-check: a relaxed match must lie under the author's org domain.
    if (id != *author_org && !id.ends_with("." + *author_org)) return false;
    auto org = org_of(id);
    if (!org) {
      temp = true;
      return false;
    }
    return *org == *author_org;
  };

  // RFC 7489 §4.2: pass if SPF or DKIM passed with an aligned identifier.
  e.spf_aligned = input.spf == spf::Result::pass && aligned(input.spf_domain, rec.aspf);
  for (const auto& d : input.dkim) {
    if (!d.pass || !aligned(d.domain, rec.adkim)) continue;
    e.dkim_aligned = true;
    e.aligned_dkim_domain = normalize(d.domain);
    break;
  }

  // Which policy applies: p at the author domain; above it sp (RFC 7489
  // §6.3), or np when the author domain does not exist (DMARCbis).
  e.requested = rec.p;
  if (e.policy_domain != author) {
    if (rec.sp) e.requested = *rec.sp;
    if (rec.np) {
      auto a = resolver.a(author);
      if (a.status == dns::Status::nxdomain) {
        auto mx = resolver.mx(author);
        if (mx.status == dns::Status::nxdomain) e.requested = *rec.np;
      }
    }
  }
  // RFC 7489 §6.6.4: outside the pct sample, and under DMARCbis t=y, the
  // next weaker policy applies.
  e.applied = e.requested;
  if (rec.testing || options.pct_sample >= rec.pct) e.applied = downgrade(e.requested);

  if (e.spf_aligned || e.dkim_aligned) {
    e.result = Result::pass;
    e.detail = e.spf_aligned ? "aligned SPF" : "aligned DKIM d=" + e.aligned_dkim_domain;
  } else if (temp) {
    e.result = Result::temperror;
    e.detail = "DNS error while checking alignment";
  } else {
    e.result = Result::fail;
    e.detail = "no aligned passing identifier";
  }
  return e;
}

std::vector<std::string> tree_walk_targets(std::string_view domain) {
  return Discoverer::walk_targets(normalize(domain));
}

bool passed_only_via_spf_under_enforcement(const Evaluation& e) {
  return e.result == Result::pass && e.spf_aligned && !e.dkim_aligned &&
         (e.requested == Policy::quarantine || e.requested == Policy::reject);
}

}  // namespace hikyaku::auth::dmarc
