#include "auth/common/body_hashes.hpp"

#include <algorithm>

namespace hikyaku::auth::common {

std::string body_hash_key_name(const BodyHashKey& key) {
  std::string out = std::string(canonicalization_name(key.canonicalization)) + "/" +
                    std::string(crypto::hash_name(key.algorithm));
  if (key.limit) out += "/l=" + std::to_string(*key.limit);
  return out;
}

void BodyHashes::want(const BodyHashKey& key) {
  // A hasher started late would miss the chunks already fed: leave the key
  // out, so that body_hash() reports it missing instead of a wrong digest.
  if (started_ || finished_) return;
  entries_.try_emplace(key, Entry{BodyHasher(key.canonicalization, key.algorithm, key.limit), BodyHash{}});
}

void BodyHashes::update(std::string_view chunk) {
  HIKYAKU_CHECK(!finished_);
  started_ = true;
  if (chunk.empty()) return;
  for (auto& [key, entry] : entries_) entry.hasher.update(chunk);
}

void BodyHashes::finish() {
  if (finished_) return;
  finished_ = true;
  for (auto& [key, entry] : entries_) {
    entry.result.digest = entry.hasher.finish();
    entry.result.canonical_length = entry.hasher.canonical_length();
  }
}

const BodyHash* BodyHashes::find(const BodyHashKey& key) const {
  if (!finished_) return nullptr;
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second.result;
}

BodyHashes BodyHashes::of(std::string_view body, std::span<const BodyHashKey> keys, size_t chunk_size) {
  BodyHashes out;
  for (const auto& k : keys) out.want(k);
  if (chunk_size == 0) chunk_size = std::max<size_t>(body.size(), 1);
  for (size_t at = 0; at < body.size(); at += chunk_size) out.update(body.substr(at, chunk_size));
  out.finish();
  return out;
}

base::Result<BodyHash> body_hash(const ParsedMessage& message, const BodyHashKey& key) {
  if (message.body_hashes != nullptr) {
    // The body is not in `message`: hashing message.body would hash nothing.
    if (const BodyHash* h = message.body_hashes->find(key)) return *h;
    return base::make_error("body hash not available (" + body_hash_key_name(key) + ")");
  }
  BodyHasher hasher(key.canonicalization, key.algorithm, key.limit);
  hasher.update(message.body);
  BodyHash out;
  out.digest = hasher.finish();
  out.canonical_length = hasher.canonical_length();
  return out;
}

}  // namespace hikyaku::auth::common
