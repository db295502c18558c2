// libFuzzer target: message splitting and DKIM canonicalisation (RFC 6376
// §3.4). Checks that streaming the body in two chunks gives the same
// canonical form as one call, and that canonical output is idempotent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/common/canonicalization.hpp"
#include "auth/common/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku::auth::common;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_message(in);
  for (const auto& h : parsed.headers) {
    (void)canonicalize_header(Canonicalization::relaxed, h.raw);
    (void)canonicalize_header(Canonicalization::simple, h.raw);
    (void)remove_b_value(h.raw);
  }
  size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  for (auto c : {Canonicalization::simple, Canonicalization::relaxed}) {
    std::string whole = canonicalize_body(c, in);
    BodyCanonicalizer streaming(c);
    std::string parts;
    streaming.update(in.substr(0, cut), parts);
    streaming.update(in.substr(cut), parts);
    streaming.finish(parts);
    if (parts != whole) __builtin_trap();
    // Canonical bodies are fixed points of their canonicalisation.
    if (canonicalize_body(c, whole) != whole && !(whole.empty() && c == Canonicalization::relaxed)) __builtin_trap();
    BodyHasher limited(c, hikyaku::crypto::HashAlgorithm::sha256, cut);
    limited.update(in);
    (void)limited.finish();
    if (limited.canonical_length() != whole.size()) __builtin_trap();
  }
  (void)to_crlf(in);
  return 0;
}
