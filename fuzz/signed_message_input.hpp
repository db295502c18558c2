// Purpose:   The input layout shared by the DKIM, ARC and forward-transform
//            fuzz targets, and the key they sign with. An input is the
//            layout of Stalwart mail-auth's test resources (and of the seeds
//            scripts/fuzz-seeds.py makes from ../shared/testdata): DNS key
//            records one per line ("<name> <TXT value>", or "<name>
//            TEMPERROR"), an empty line, then the message bytes as they are
//            (CRLF or not). Every signature's selector._domainkey.domain
//            that no line names is served the first record, so a mutated
//            d= or s= still reaches the key and the hashes.
// Standards: RFC 6376 §3.6.2.1 (key record names), RFC 8617 §4.1 (ARC
//            fields carry d= and s= as DKIM signatures do).
// Trust:     test code: the input is the fuzzer's. The key is a fixed
//            Ed25519 seed written here, published nowhere.
// Concurrency: single-threaded (libFuzzer calls one input at a time).
// Errors:    none; malformed lines are skipped.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/common/message.hpp"
#include "auth/common/tag_list.hpp"
#include "auth/dkim/key_record.hpp"
#include "base/strings.hpp"
#include "crypto/key.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::fuzz {

struct SignedMessageInput {
  std::vector<std::pair<std::string, std::string>> records;  // name, TXT value
  std::string_view message;
};

// Records up to the first empty line (LF ends a line, a CR before it is
// dropped), the message after it. Without an empty line there are no
// records and the whole input is the message.
inline SignedMessageInput split_input(std::string_view in) {
  SignedMessageInput out;
  size_t pos = 0;
  std::vector<std::pair<std::string, std::string>> records;
  while (pos < in.size()) {
    size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) {
      out.message = in;
      return out;
    }
    std::string_view line = in.substr(pos, lf - pos);
    pos = lf + 1;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) {
      out.records = std::move(records);
      out.message = in.substr(pos);
      return out;
    }
    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos || sp == 0) continue;
    records.emplace_back(std::string(line.substr(0, sp)), std::string(base::trim(line.substr(sp + 1))));
  }
  out.message = in;
  return out;
}

// Our signing key: Ed25519 from a fixed seed (fast, deterministic), and its
// record, served at kSelector._domainkey.kDomain.
constexpr std::string_view kDomain = "fuzz.hikyaku.test";
constexpr std::string_view kSelector = "fz";

struct SigningKey {
  crypto::PrivateKey key;
  std::string record;
};

inline const SigningKey& signing_key() {
  static const SigningKey k = [] {
    auto key = crypto::load_ed25519_seed(base::base64_encode("hikyaku-fuzz-target-ed25519-seed"));
    if (!key) __builtin_trap();
    std::string record = auth::dkim::format_key_record(key->public_key());
    return SigningKey{std::move(key).value(), std::move(record)};
  }();
  return k;
}

// Our key's record at kSelector._domainkey.kDomain.
inline void serve_signing_key(dns::FakeResolver& zone) {
  zone.add_txt(std::string(kSelector) + "._domainkey." + std::string(kDomain), signing_key().record);
}

// A DNS name as FakeResolver matches it: lower case, one trailing dot off.
inline std::string zone_key(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  return base::to_lower(name);
}

// The zone: our signing key's record (and nothing else at its name), the
// input's records under their names, and the first input record under
// every signature's key name the input does not name.
inline void serve(dns::FakeResolver& zone, const SignedMessageInput& in, const auth::common::ParsedMessage& message) {
  const std::string ours = std::string(kSelector) + "._domainkey." + std::string(kDomain);
  serve_signing_key(zone);
  std::set<std::string> named{ours};
  for (const auto& [name, value] : in.records) {
    std::string key = zone_key(name);
    if (key == ours) continue;
    named.insert(key);
    if (value == "TEMPERROR") zone.set_temp_error(name);
    else zone.add_txt(name, value);
  }
  if (in.records.empty()) return;
  for (const auto& h : message.headers) {
    std::string_view n = auth::common::field_name(h);
    if (!base::iequals(n, "DKIM-Signature") && !base::iequals(n, "ARC-Message-Signature") &&
        !base::iequals(n, "ARC-Seal"))
      continue;
    auto tags = auth::common::parse_tag_list(h.value);
    if (!tags || !tags->find("s") || !tags->find("d")) continue;
    std::string key_name = std::string(*tags->find("s")) + "._domainkey." + std::string(*tags->find("d"));
    if (named.insert(zone_key(key_name)).second) zone.add_txt(key_name, in.records.front().second);
  }
}

// Stalwart's vectors verify "at" this instant (their keys and signatures are
// real and old; 005 carries an x= expiry).
inline std::chrono::system_clock::time_point fixed_now() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1667843664));
}

}  // namespace hikyaku::fuzz
