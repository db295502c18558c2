#include "auth/dkim/key_record.hpp"

#include "auth/common/tag_list.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::dkim {

base::Result<KeyRecord> parse_key_record(std::string_view txt) {
  auto tags = common::parse_tag_list(txt);
  if (!tags) return base::make_error("key record syntax: " + tags.error().message);
  KeyRecord r;
  // RFC 6376 §3.6.1: v= is optional but, when present, must be first and "DKIM1".
  if (auto v = tags->find("v")) {
    if (tags->tags.front().name != "v") return base::make_error("v= is not the first tag");
    if (*v != "DKIM1") return base::make_error("unsupported key record version");
  }
  if (auto h = tags->find("h"))
    for (auto a : base::split(*h, ':')) r.h.push_back(base::to_lower(common::strip_whitespace(a)));
  if (auto k = tags->find("k")) {
    // RFC 6376 §3.6.1 k=rsa; RFC 8463 §4 k=ed25519. Anything else: unusable.
    if (*k == "rsa")
      r.k = crypto::KeyType::rsa;
    else if (*k == "ed25519")
      r.k = crypto::KeyType::ed25519;
    else
      return base::make_error("unknown key type k=" + std::string(*k));
  }
  auto p = tags->find("p");
  if (!p) return base::make_error("key record has no p=");
  r.p = common::strip_whitespace(*p);
  if (auto s = tags->find("s")) {
    for (auto st : base::split(*s, ':')) r.s.push_back(base::to_lower(common::strip_whitespace(st)));
  } else {
    r.s.push_back("*");
  }
  if (auto t = tags->find("t")) {
    for (auto flag : base::split(*t, ':')) {
      std::string f = common::strip_whitespace(flag);
      if (f == "y") r.testing = true;
      if (f == "s") r.strict = true;
    }
  }
  return r;
}

std::string format_key_record(const crypto::PublicKey& key) {
  return "v=DKIM1; k=" + std::string(crypto::key_type_name(key.type())) + "; p=" + key.dkim_p();
}

KeyLookup fetch_key(dns::Resolver& resolver, std::string_view selector, std::string_view domain) {
  KeyLookup out;
  std::string name = std::string(selector) + "._domainkey." + std::string(domain);
  auto answer = resolver.txt(name);
  // RFC 6376 §6.1.2: a temporary DNS failure is TEMPFAIL, no key is PERMFAIL.
  if (answer.status == dns::Status::temp_error) {
    out.outcome = KeyLookup::Outcome::temperror;
    out.detail = "key lookup failed temporarily";
    return out;
  }
  if (answer.status != dns::Status::ok || answer.records.empty()) {
    out.outcome = KeyLookup::Outcome::permerror;
    out.detail = "no key record for " + name;
    return out;
  }
  std::string last_error;
  for (const auto& txt : answer.records) {
    auto rec = parse_key_record(txt);
    if (!rec) {
      last_error = rec.error().message;
      continue;
    }
    // RFC 6376 §3.6.1: empty p= means the key was revoked.
    if (rec->p.empty()) {
      last_error = "key revoked (empty p=)";
      continue;
    }
    auto key = crypto::parse_dkim_public_key(rec->k, rec->p);
    if (!key) {
      last_error = "bad public key: " + key.error().message;
      continue;
    }
    out.record = std::move(*rec);
    out.key = std::move(*key);
    return out;
  }
  out.outcome = KeyLookup::Outcome::permerror;
  out.detail = last_error;
  return out;
}

}  // namespace hikyaku::auth::dkim
