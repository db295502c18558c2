#include "auth/dkim/verifier.hpp"

#include <algorithm>

#include "auth/common/body_hashes.hpp"
#include "auth/common/tag_list.hpp"
#include "auth/dkim/key_record.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::dkim {
namespace {

Result make(Result r, Status s, std::string detail) {
  r.status = s;
  r.detail = std::move(detail);
  return r;
}

bool is_subdomain_or_equal(std::string_view sub, std::string_view parent) {
  if (base::iequals(sub, parent)) return true;
  return sub.size() > parent.size() && sub[sub.size() - parent.size() - 1] == '.' &&
         base::iequals(sub.substr(sub.size() - parent.size()), parent);
}

// A quick tag peek for the result properties when full parsing fails.
void fill_from_tags(Result& r, std::string_view value) {
  auto tags = common::parse_tag_list(value);
  if (!tags) return;
  if (auto d = tags->find("d")) r.domain = base::to_lower(*d);
  if (auto s = tags->find("s")) r.selector = std::string(*s);
  if (auto a = tags->find("a")) r.algorithm = std::string(*a);
  if (auto b = tags->find("b")) r.b_prefix = common::strip_whitespace(*b).substr(0, 8);
}

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::neutral: return "neutral";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
    case Status::policy: return "policy";
    case Status::none: return "none";
  }
  return "none";
}

Result verify_field(const common::ParsedMessage& message, const common::HeaderField& field, SignatureKind kind,
                    dns::Resolver& resolver, const VerifyOptions& options) {
  Result r;
  fill_from_tags(r, field.value);

  // RFC 6376 §6.1.1: syntax and required tags.
  auto parsed = parse_signature(field.value, kind);
  if (!parsed) return make(r, Status::permerror, "signature: " + parsed.error().message);
  const Signature& sig = *parsed;
  r.domain = sig.d;
  r.selector = sig.s;
  r.algorithm = std::string(algorithm_name(sig.a));

  if (kind == SignatureKind::dkim) {
    // RFC 6376 §6.1.1: the AUID domain must be d= or a subdomain of it.
    r.identity = sig.i.empty() ? "@" + sig.d : sig.i;
    size_t at = r.identity.rfind('@');
    if (at == std::string::npos) return make(r, Status::permerror, "i= has no @");
    if (!is_subdomain_or_equal(r.identity.substr(at + 1), sig.d))
      return make(r, Status::permerror, "i= domain is not within d=");
    // RFC 6376 §6.1.1: the From field must be signed.
    if (std::find(sig.h.begin(), sig.h.end(), "from") == sig.h.end())
      return make(r, Status::permerror, "From is not signed");
  }
  // RFC 8617 §4.1.2: an AMS must not sign ARC-Seal fields.
  if (kind == SignatureKind::arc_message && std::find(sig.h.begin(), sig.h.end(), "arc-seal") != sig.h.end())
    return make(r, Status::permerror, "AMS signs ARC-Seal");

  // RFC 6376 §6.1.1: an expired signature is PERMFAIL.
  auto now = uint64_t(std::chrono::duration_cast<std::chrono::seconds>(options.now.time_since_epoch()).count());
  if (sig.x && *sig.x < now) return make(r, Status::permerror, "signature expired (x=)");

  // RFC 8301 §3.1: rsa-sha1 signatures are not valid for us.
  if (sig.a == Algorithm::rsa_sha1 && !options.allow_sha1)
    return make(r, Status::policy, "rsa-sha1 is not accepted (RFC 8301)");

  // RFC 6376 §6.1.2: fetch and check the key record.
  auto lookup = fetch_key(resolver, sig.s, sig.d);
  if (lookup.outcome == KeyLookup::Outcome::temperror) return make(r, Status::temperror, lookup.detail);
  if (lookup.outcome == KeyLookup::Outcome::permerror) return make(r, Status::permerror, lookup.detail);
  const KeyRecord& rec = *lookup.record;
  const crypto::PublicKey& key = *lookup.key;
  r.key_bits = key.bits();
  r.testing = rec.testing;
  if (rec.k != key_type_of(sig.a)) return make(r, Status::permerror, "key type does not match a=");
  if (!rec.h.empty() && std::find(rec.h.begin(), rec.h.end(), crypto::hash_name(hash_of(sig.a))) == rec.h.end())
    return make(r, Status::permerror, "hash algorithm not allowed by key h=");
  if (std::find(rec.s.begin(), rec.s.end(), "*") == rec.s.end() &&
      std::find(rec.s.begin(), rec.s.end(), "email") == rec.s.end())
    return make(r, Status::permerror, "key not for email (s=)");
  if (kind == SignatureKind::dkim && rec.strict) {
    // RFC 6376 §3.6.1 t=s: the i= domain must equal d= exactly.
    std::string_view idom = std::string_view(r.identity).substr(r.identity.rfind('@') + 1);
    if (!base::iequals(idom, sig.d)) return make(r, Status::permerror, "t=s forbids an i= subdomain");
  }
  // RFC 8301 §3.2: RSA keys shorter than 1024 bits are not valid.
  if (key.type() == crypto::KeyType::rsa && key.bits() < options.min_rsa_bits)
    return make(r, Status::policy, "RSA key too short (" + std::to_string(key.bits()) + " bits)");

  // RFC 6376 §6.1.3: body hash, honouring l=. Precomputed hashes without
  // this one are our failure, not the signer's: temperror.
  auto body = common::body_hash(message, {sig.c.body, hash_of(sig.a), sig.l});
  if (!body) return make(r, Status::temperror, body.error().message);
  if (sig.l && body->canonical_length < *sig.l) return make(r, Status::permerror, "l= is longer than the body");
  if (sig.l && body->canonical_length > *sig.l) r.unsigned_content = true;
  if (body->digest != sig.bh) return make(r, Status::fail, "body hash did not verify");

  // RFC 6376 §6.1.3: header hash and signature.
  auto fields = select_headers(message, sig.h);
  std::string digest = hash_headers(fields, sig.c.header, field.raw, hash_of(sig.a));
  if (!crypto::verify_digest(key, hash_of(sig.a), digest, sig.b))
    return make(r, Status::fail, "signature did not verify");
  return make(r, Status::pass, r.unsigned_content ? "pass, but content was appended after l=" : "pass");
}

std::vector<Result> verify(std::string_view message, dns::Resolver& resolver, const VerifyOptions& options) {
  return verify(common::parse_message(message), resolver, options);
}

std::vector<Result> verify(const common::ParsedMessage& parsed, dns::Resolver& resolver,
                           const VerifyOptions& options) {
  std::vector<Result> out;
  for (const auto* f : parsed.all("DKIM-Signature")) {
    if (out.size() >= options.max_signatures) {
      Result r;
      fill_from_tags(r, f->value);
      out.push_back(make(r, Status::neutral, "too many signatures; not checked"));
      continue;
    }
    out.push_back(verify_field(parsed, *f, SignatureKind::dkim, resolver, options));
  }
  if (out.empty()) out.push_back(make(Result{}, Status::none, "no signature"));
  return out;
}

}  // namespace hikyaku::auth::dkim
