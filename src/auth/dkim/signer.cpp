#include "auth/dkim/signer.hpp"

#include <algorithm>

#include "auth/common/message.hpp"
#include "auth/dkim/signature.hpp"
#include "base/strings.hpp"

namespace hikyaku::auth::dkim {

std::vector<std::string> default_signed_headers() {
  return {"from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
          "mime-version", "content-type", "content-transfer-encoding", "list-id", "list-unsubscribe",
          "list-unsubscribe-post"};
}

Algorithm signing_algorithm(crypto::KeyType type) {
  return type == crypto::KeyType::ed25519 ? Algorithm::ed25519_sha256 : Algorithm::rsa_sha256;
}

common::BodyHashKey signing_body_hash_key(crypto::KeyType type) {
  return {common::Canonicalization::relaxed, hash_of(signing_algorithm(type)), std::nullopt};
}

base::Result<std::string> sign(std::string_view message, const crypto::PrivateKey& key, const SignOptions& options,
                               std::chrono::system_clock::time_point now) {
  auto parsed = common::parse_message(message);
  parsed.body_hashes = options.body_hashes;
  if (parsed.all("From").empty()) return base::make_error("message has no From field");  // RFC 6376 §5.4
  if (!is_valid_domain(options.domain) || !is_valid_domain(options.selector))
    return base::make_error("invalid signing domain or selector");
  Algorithm alg = signing_algorithm(key.type());

  // RFC 6376 §5.4.2: list each present field as often as it occurs; From once
  // more, so that a From added later breaks the signature (over-signing).
  std::vector<std::string> names;
  std::vector<std::string> seen;
  bool from_listed = false;
  for (const auto& h : options.headers) {
    std::string n = base::to_lower(h);
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.push_back(n);
    size_t count = parsed.all(n).size();
    if (n == "from") {
      count += 1;
      from_listed = true;
    }
    for (size_t k = 0; k < count; ++k) names.push_back(n);
  }
  if (!from_listed) {
    names.insert(names.begin(), parsed.all("from").size() + 1, "from");
  }

  // RFC 6376 §3.7: body hash first.
  auto body = common::body_hash(parsed, signing_body_hash_key(key.type()));
  if (!body) return body.error();
  std::string bh = base::base64_encode(body->digest);

  auto t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  std::string h;
  for (size_t k = 0; k < names.size(); ++k) h += (k ? ":" : "") + names[k];
  std::vector<std::pair<std::string, std::string>> tags = {
      {"v", "1"},
      {"a", std::string(algorithm_name(alg))},
      {"c", "relaxed/relaxed"},
      {"d", options.domain},
      {"s", options.selector},
      {"t", std::to_string(t)},
  };
  if (options.expire_after) tags.push_back({"x", std::to_string(t + options.expire_after->count())});
  if (!options.identity.empty()) tags.push_back({"i", options.identity});
  tags.push_back({"h", h});
  tags.push_back({"bh", bh});
  tags.push_back({"b", ""});
  return sign_field("DKIM-Signature", std::move(tags), select_headers(parsed, names),
                    common::Canonicalization::relaxed, key, alg);
}

}  // namespace hikyaku::auth::dkim
