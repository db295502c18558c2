#include "auth/arc/sealer.hpp"

#include <algorithm>

#include "auth/common/authentication_results.hpp"
#include "auth/common/body_hashes.hpp"
#include "auth/common/message.hpp"
#include "auth/common/tag_list.hpp"
#include "auth/dkim/signature.hpp"
#include "auth/dkim/signer.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::arc {
namespace {

std::optional<ChainStatus> cv_from_results(std::string_view results_text) {
  auto ar = common::parse_authentication_results(results_text);
  if (!ar) return std::nullopt;
  std::optional<ChainStatus> found;
  for (const auto& r : ar->results) {
    if (r.method != "arc") continue;
    if (found) return ChainStatus::fail;  // two arc= results: treat as broken
    if (r.result == "pass")
      found = ChainStatus::pass;
    else if (r.result == "none")
      found = ChainStatus::none;
    else
      found = ChainStatus::fail;
  }
  return found.value_or(ChainStatus::none);
}

}  // namespace

std::vector<std::string> default_ams_headers() {
  auto h = dkim::default_signed_headers();
  h.push_back("dkim-signature");
  return h;
}

base::Result<SealedSet> seal(std::string_view message, std::string_view results_text, std::string_view domain,
                             std::string_view selector, const crypto::PrivateKey& key,
                             std::chrono::system_clock::time_point now, const SealOptions& options) {
  if (!dkim::is_valid_domain(domain) || !dkim::is_valid_domain(selector))
    return base::make_error("invalid sealing domain or selector");
  auto parsed = common::parse_message(message);
  if (parsed.all("From").empty()) return base::make_error("message has no From field");

  // RFC 8617 §5.1: the new instance is one above the highest present.
  Chain chain = collect_chain(parsed);
  int instance = 1;
  for (const auto& f : parsed.headers) {
    std::string_view n = common::field_name(f);
    std::optional<int> i;
    if (base::iequals(n, "ARC-Authentication-Results")) i = aar_instance(f.value);
    else if (base::iequals(n, "ARC-Seal") || base::iequals(n, "ARC-Message-Signature")) {
      auto tags = common::parse_tag_list(f.value);
      if (tags && tags->find("i")) {
        auto v = base::parse_uint(*tags->find("i"));
        if (v && *v <= uint64_t(kMaxInstances)) i = int(*v);
      }
    }
    if (i) instance = std::max(instance, *i + 1);
  }
  if (instance > kMaxInstances) return base::make_error("ARC instance limit (50) reached");  // RFC 8617 §4.2.1

  ChainStatus cv = options.cv ? *options.cv : cv_from_results(results_text).value_or(ChainStatus::none);
  // RFC 8617 §4.2.1: the first set always has cv=none.
  if (instance == 1) cv = ChainStatus::none;
  // RFC 8617 §5.1.2: an existing chain with no verdict cannot be extended.
  if (instance > 1 && cv == ChainStatus::none) return base::make_error("existing ARC chain but cv=none");
  if (cv != ChainStatus::fail && !chain.error.empty())
    return base::make_error("existing ARC chain is broken: " + chain.error);

  SealedSet out;
  out.instance = instance;
  out.cv = cv;
  std::string inst = std::to_string(instance);
  auto t = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  dkim::Algorithm alg = dkim::signing_algorithm(key.type());
  std::string a(dkim::algorithm_name(alg));

  // RFC 8617 §5.1.1: ARC-Authentication-Results.
  out.results = "ARC-Authentication-Results: i=" + inst + "; " + std::string(results_text) + "\r\n";

  // RFC 8617 §5.1.2: ARC-Message-Signature over the message with the new AAR.
  std::string with_aar = out.results + std::string(message);
  auto p2 = common::parse_message(with_aar);
  p2.body_hashes = options.body_hashes;
  std::vector<std::string> names;
  for (const auto& h : options.headers) {
    std::string n = base::to_lower(h);
    if (n == "arc-seal" || n == "arc-message-signature") continue;  // never signed by an AMS
    if (std::find(names.begin(), names.end(), n) != names.end()) continue;
    if (n != "from" && p2.all(n).empty()) continue;
    names.push_back(n);
  }
  if (std::find(names.begin(), names.end(), "from") == names.end()) names.insert(names.begin(), "from");
  std::string h;
  for (size_t k = 0; k < names.size(); ++k) h += (k ? ":" : "") + names[k];
  auto body = common::body_hash(p2, dkim::signing_body_hash_key(key.type()));
  if (!body) return body.error();
  std::string bh = base::base64_encode(body->digest);
  // Tags in alphabetical order (the ValiMail suite's "standardize" form).
  auto ams = dkim::sign_field("ARC-Message-Signature",
                              {{"a", a}, {"b", ""}, {"bh", bh}, {"c", "relaxed/relaxed"}, {"d", std::string(domain)},
                               {"h", h}, {"i", inst}, {"s", std::string(selector)}, {"t", t}},
                              dkim::select_headers(p2, names), common::Canonicalization::relaxed, key, alg,
                              dkim::FoldB::no);
  if (!ams) return ams.error();
  out.message_signature = *ams;

  // RFC 8617 §5.1.3: ARC-Seal over every set in instance order, the new AAR
  // and AMS last; with cv=fail only over the new set.
  std::string new_fields = out.message_signature + out.results;
  auto p3 = common::parse_message(new_fields);
  std::vector<const common::HeaderField*> fields;
  if (cv != ChainStatus::fail) {
    for (const auto& set : chain.sets) {
      fields.push_back(set.aar);
      fields.push_back(set.ams);
      fields.push_back(set.seal);
    }
  }
  fields.push_back(&p3.headers[1]);  // new AAR
  fields.push_back(&p3.headers[0]);  // new AMS
  auto as = dkim::sign_field("ARC-Seal",
                             {{"a", a}, {"b", ""}, {"cv", std::string(chain_status_name(cv))},
                              {"d", std::string(domain)}, {"i", inst}, {"s", std::string(selector)}, {"t", t}},
                             fields, common::Canonicalization::relaxed, key, alg, dkim::FoldB::no);
  if (!as) return as.error();
  out.seal = *as;
  return out;
}

}  // namespace hikyaku::auth::arc
