#include "auth/arc/validator.hpp"

#include <algorithm>

#include "auth/common/tag_list.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signature.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::arc {
namespace {

ValidationResult failed(ValidationResult r, std::string reason) {
  r.status = ChainStatus::fail;
  r.reason = std::move(reason);
  return r;
}

// RFC 8617 §4.1.3: the ARC-Seal's own tags.
struct Seal {
  dkim::Algorithm a = dkim::Algorithm::rsa_sha256;
  std::string b;
  ChainStatus cv = ChainStatus::none;
  std::string d;
  std::string s;
};

base::Result<Seal> parse_seal(std::string_view value) {
  auto tags = common::parse_tag_list(value);
  if (!tags) return tags.error();
  for (const char* req : {"a", "b", "cv", "d", "i", "s"})
    if (!tags->has(req)) return base::make_error(std::string("ARC-Seal lacks ") + req + "=");
  // RFC 8617 §4.1.3: h= is not allowed in an ARC-Seal.
  if (tags->has("h")) return base::make_error("ARC-Seal has h=");
  Seal s;
  auto a = dkim::parse_algorithm(*tags->find("a"));
  if (!a) return base::make_error("ARC-Seal has unknown a=");
  s.a = *a;
  auto b = base::base64_decode(common::strip_whitespace(*tags->find("b")));
  if (!b || b->empty()) return base::make_error("ARC-Seal b= is not base64");
  s.b = std::move(*b);
  std::string cv = base::to_lower(*tags->find("cv"));
  if (cv == "none")
    s.cv = ChainStatus::none;
  else if (cv == "pass")
    s.cv = ChainStatus::pass;
  else if (cv == "fail")
    s.cv = ChainStatus::fail;
  else
    return base::make_error("ARC-Seal has invalid cv=");
  s.d = base::to_lower(*tags->find("d"));
  s.s = std::string(*tags->find("s"));
  if (!dkim::is_valid_domain(s.d) || !dkim::is_valid_domain(s.s)) return base::make_error("ARC-Seal d=/s= invalid");
  return s;
}

// RFC 8617 §5.2 step 6: verify the seal of set `k` (0-based) over sets 0..k.
std::string verify_seal(const std::vector<ArcSet>& sets, size_t k, const Seal& seal, dns::Resolver& resolver,
                        const dkim::VerifyOptions& options) {
  if (seal.a == dkim::Algorithm::rsa_sha1 && !options.allow_sha1) return "rsa-sha1 seal (RFC 8301)";
  auto lookup = dkim::fetch_key(resolver, seal.s, seal.d);
  if (lookup.outcome != dkim::KeyLookup::Outcome::ok) return "seal key: " + lookup.detail;
  const auto& rec = *lookup.record;
  if (rec.k != dkim::key_type_of(seal.a)) return "seal key type does not match a=";
  if (!rec.h.empty() && std::find(rec.h.begin(), rec.h.end(), crypto::hash_name(dkim::hash_of(seal.a))) == rec.h.end())
    return "seal hash not allowed by key h=";
  if (lookup.key->type() == crypto::KeyType::rsa && lookup.key->bits() < options.min_rsa_bits)
    return "seal RSA key too short";
  std::vector<const common::HeaderField*> fields;
  for (size_t j = 0; j <= k; ++j) {
    fields.push_back(sets[j].aar);
    fields.push_back(sets[j].ams);
    if (j < k) fields.push_back(sets[j].seal);
  }
  std::string digest =
      dkim::hash_headers(fields, common::Canonicalization::relaxed, sets[k].seal->raw, dkim::hash_of(seal.a));
  if (!crypto::verify_digest(*lookup.key, dkim::hash_of(seal.a), digest, seal.b))
    return "ARC-Seal i=" + std::to_string(k + 1) + " did not verify";
  return "";
}

}  // namespace

ValidationResult validate(std::string_view message, dns::Resolver& resolver, const dkim::VerifyOptions& options) {
  return validate(common::parse_message(message), resolver, options);
}

ValidationResult validate(const common::ParsedMessage& message, dns::Resolver& resolver,
                          const dkim::VerifyOptions& options) {
  ValidationResult r;
  // RFC 8617 §5.2 step 1–3: collect the sets and check the structure.
  Chain chain = collect_chain(message);
  if (chain.empty()) {
    r.reason = "no ARC sets";
    return r;
  }
  if (!chain.error.empty()) return failed(r, chain.error);
  r.instances = int(chain.sets.size());
  std::vector<Seal> seals;
  for (const auto& set : chain.sets) {
    auto seal = parse_seal(set.seal->value);
    if (!seal) return failed(r, seal.error().message);
    seals.push_back(std::move(*seal));
  }
  r.domain = seals.back().d;
  // RFC 8617 §5.2 step 2: a newest seal with cv=fail ends the chain.
  if (seals.back().cv == ChainStatus::fail) return failed(r, "newest ARC-Seal says cv=fail");
  // RFC 8617 §5.2 step 3 / §4.2.1: cv=none for i=1 only, cv=pass above.
  for (size_t k = 0; k < seals.size(); ++k) {
    ChainStatus want = k == 0 ? ChainStatus::none : ChainStatus::pass;
    if (seals[k].cv != want)
      return failed(r, "ARC-Seal i=" + std::to_string(k + 1) + " has cv=" + std::string(chain_status_name(seals[k].cv)));
  }
  // RFC 8617 §5.2 step 4: the newest AMS must verify.
  size_t n = chain.sets.size();
  auto ams = dkim::verify_field(message, *chain.sets[n - 1].ams, dkim::SignatureKind::arc_message, resolver, options);
  if (ams.status != dkim::Status::pass) return failed(r, "ARC-Message-Signature i=" + std::to_string(n) + ": " + ams.detail);
  // RFC 8617 §5.2 step 5: oldest-pass, the lowest instance whose AMS (and all
  // newer ones) still verify.
  r.oldest_pass = int(n);
  for (size_t k = n - 1; k-- > 0;) {
    auto older = dkim::verify_field(message, *chain.sets[k].ams, dkim::SignatureKind::arc_message, resolver, options);
    if (older.status != dkim::Status::pass) break;
    r.oldest_pass = int(k + 1);
  }
  // RFC 8617 §5.2 step 6: every ARC-Seal, newest first.
  for (size_t k = n; k-- > 0;) {
    std::string err = verify_seal(chain.sets, k, seals[k], resolver, options);
    if (!err.empty()) return failed(r, err);
  }
  r.status = ChainStatus::pass;
  r.reason = "chain of " + std::to_string(n) + " verified";
  return r;
}

}  // namespace hikyaku::auth::arc
