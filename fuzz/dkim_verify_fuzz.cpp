// libFuzzer target: DKIM verification (auth/dkim/verifier.hpp, RFC 6376
// §6.1) of a message against key records from the same input (layout in
// signed_message_input.hpp: records, an empty line, the message), at a fixed
// time. Then the sign/verify round trip the forwarder relies on: our
// signature over the same hostile message (auth/dkim/signer.hpp) must verify.
// Invariants: one result per DKIM-Signature field (one "none" without any);
// every result has a detail; a pass has d=, an AUID within d= (§6.1.1), a
// key of at least 1024 bits when RSA (RFC 8301 §3.2); a signature we make
// over any message with a From field verifies as pass, first in the list.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "signed_message_input.hpp"

namespace {

using namespace hikyaku;
using auth::dkim::Status;

bool within(std::string_view sub, std::string_view parent) {
  if (base::iequals(sub, parent)) return true;
  return sub.size() > parent.size() && sub[sub.size() - parent.size() - 1] == '.' &&
         base::iequals(sub.substr(sub.size() - parent.size()), parent);
}

void check(const auth::dkim::Result& r) {
  if (r.detail.empty()) __builtin_trap();
  if (r.status != Status::pass) return;
  if (r.domain.empty() || r.algorithm.empty() || r.key_bits == 0) __builtin_trap();
  auto at = r.identity.rfind('@');
  if (at == std::string::npos || !within(std::string_view(r.identity).substr(at + 1), r.domain)) __builtin_trap();
  if (r.algorithm.starts_with("rsa") && r.key_bits < 1024) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  auto input = fuzz::split_input(std::string_view(reinterpret_cast<const char*>(data), size));
  auto parsed = auth::common::parse_message(input.message);
  dns::FakeResolver zone;
  fuzz::serve(zone, input, parsed);
  auth::dkim::VerifyOptions options;
  options.now = fuzz::fixed_now();

  auto results = auth::dkim::verify(input.message, zone, options);
  const size_t fields = parsed.all("DKIM-Signature").size();
  if (results.size() != std::max<size_t>(fields, 1)) __builtin_trap();
  if (fields == 0 && results.front().status != Status::none) __builtin_trap();
  for (const auto& r : results) check(r);

  // RFC 6376 §5: what we sign, we (and so the next hop) verify. A message
  // starting with folding whitespace would fold into the field we put on
  // top; a stored message never does (our Received field is its first).
  if (input.message.starts_with(' ') || input.message.starts_with('\t')) return 0;
  auth::dkim::SignOptions so;
  so.domain = fuzz::kDomain;
  so.selector = fuzz::kSelector;
  auto sig = auth::dkim::sign(input.message, fuzz::signing_key().key, so, options.now);
  if (!sig) {
    if (!parsed.all("From").empty()) __builtin_trap();  // only a missing From stops signing
    return 0;
  }
  std::string signed_message = *sig + std::string(input.message);
  auto again = auth::dkim::verify(signed_message, zone, options);
  if (again.size() != fields + 1 || again.front().status != Status::pass) __builtin_trap();
  return 0;
}
