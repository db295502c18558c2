#include "auth/dmarc/record.hpp"

#include "base/strings.hpp"

namespace hikyaku::auth::dmarc {
namespace {

using base::make_error;

struct Tag {
  std::string_view name;
  std::string_view value;
};

// RFC 7489 §6.4 dmarc-record: tags separated by ";", "name = value",
// whitespace around both; a trailing ";" is allowed.
std::optional<std::vector<Tag>> split_tags(std::string_view txt) {
  std::vector<Tag> tags;
  for (std::string_view part : base::split(txt, ';')) {
    part = base::trim(part);
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    Tag t{base::trim(part.substr(0, eq)), base::trim(part.substr(eq + 1))};
    if (t.name.empty()) return std::nullopt;
    tags.push_back(t);
  }
  return tags;
}

std::optional<Policy> parse_policy(std::string_view v) {
  if (base::iequals(v, "none")) return Policy::none;
  if (base::iequals(v, "quarantine")) return Policy::quarantine;
  if (base::iequals(v, "reject")) return Policy::reject;
  return std::nullopt;
}

std::vector<std::string> parse_uris(std::string_view v) {
  std::vector<std::string> out;
  for (auto u : base::split(v, ',')) {
    u = base::trim(u);
    if (!u.empty()) out.emplace_back(u);
  }
  return out;
}

}  // namespace

std::string_view to_string(Policy p) {
  switch (p) {
    case Policy::none: return "none";
    case Policy::quarantine: return "quarantine";
    case Policy::reject: return "reject";
  }
  return "none";
}

bool is_dmarc_record(std::string_view txt) {
  // RFC 7489 §6.3 v: "MUST be the first tag", value "DMARC1" precisely.
  auto semi = txt.find(';');
  std::string_view first = base::trim(txt.substr(0, semi));
  auto eq = first.find('=');
  if (eq == std::string_view::npos) return false;
  return base::trim(first.substr(0, eq)) == "v" && base::trim(first.substr(eq + 1)) == "DMARC1";
}

base::Result<Record> parse_record(std::string_view txt) {
  if (!is_dmarc_record(txt)) return make_error("not a DMARC record");
  auto tags = split_tags(txt);
  if (!tags) return make_error("malformed tag list");
  Record r;
  bool have_p = false, p_valid = false, sp_invalid = false;
  for (size_t i = 1; i < tags->size(); ++i) {
    const Tag& t = (*tags)[i];
    std::string name = base::to_lower(t.name);
    if (name == "v") return make_error("v= is not first or appears twice");
    if (name == "p") {
      have_p = true;
      if (auto p = parse_policy(t.value)) {
        r.p = *p;
        p_valid = true;
      }
    } else if (name == "sp") {
      if (auto p = parse_policy(t.value)) r.sp = *p;
      else sp_invalid = true;
    } else if (name == "np") {
      if (auto p = parse_policy(t.value)) r.np = *p;  // DMARCbis; invalid np is ignored
    } else if (name == "adkim" || name == "aspf") {
      AlignmentMode& mode = name == "adkim" ? r.adkim : r.aspf;
      if (base::iequals(t.value, "s")) mode = AlignmentMode::strict;
      else if (base::iequals(t.value, "r")) mode = AlignmentMode::relaxed;
      else return make_error("bad " + name + " value");
    } else if (name == "pct") {
      // RFC 7489 §6.3: an integer 0-100.
      auto v = base::parse_uint(t.value);
      if (!v || *v > 100) return make_error("bad pct value");
      r.pct = static_cast<int>(*v);
    } else if (name == "t") {
      if (base::iequals(t.value, "y")) r.testing = true;
      else if (!base::iequals(t.value, "n")) return make_error("bad t value");
    } else if (name == "psd") {
      if (base::iequals(t.value, "y")) r.psd = PsdFlag::yes;
      else if (base::iequals(t.value, "n")) r.psd = PsdFlag::no;
      else if (base::iequals(t.value, "u")) r.psd = PsdFlag::unknown;
      else return make_error("bad psd value");
    } else if (name == "rua") {
      r.rua = parse_uris(t.value);
    } else if (name == "ruf") {
      r.ruf = parse_uris(t.value);
    }
    // fo, rf, ri and unknown tags: ignored (RFC 7489 §6.3 "MUST be ignored").
  }
  // RFC 7489 §6.6.3: no valid p (or an invalid sp) with a usable rua → p=none;
  // without one the record is unusable. DMARCbis §4.7 keeps the same rule.
  if (!have_p || !p_valid || sp_invalid) {
    if (r.rua.empty()) return make_error(have_p ? "invalid p= or sp= value" : "missing p= tag");
    r = Record{.rua = r.rua, .ruf = r.ruf, .p_was_invalid = true};
  }
  return r;
}

}  // namespace hikyaku::auth::dmarc
