// libFuzzer target: ARC chain validation (auth/arc/validator.hpp, RFC 8617
// §5.2) of a message against key records from the same input (layout in
// signed_message_input.hpp), at a fixed time; then the sealer's round trip
// (auth/arc/sealer.hpp, §5.1): a set we add on top of what we validated
// must validate as the verdict we recorded says.
// Invariants: "none" exactly when the message has no ARC field that forms a
// set (collect_chain empty), with no instances; otherwise pass or fail with
// a reason; a pass has 1..50 instances, a structurally sound chain and
// 1 <= oldest-pass <= N. After sealing with cv = our verdict: a chain that
// was none or pass validates as pass with one instance more; a failed one
// stays fail (RFC 8617 §5.2 step 2: the newest cv=fail ends it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/arc/chain.hpp"
#include "auth/arc/sealer.hpp"
#include "auth/arc/validator.hpp"
#include "signed_message_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hikyaku;
  using auth::arc::ChainStatus;
  if (size > 64 * 1024) return 0;
  auto input = fuzz::split_input(std::string_view(reinterpret_cast<const char*>(data), size));
  auto parsed = auth::common::parse_message(input.message);
  dns::FakeResolver zone;
  fuzz::serve(zone, input, parsed);
  auth::dkim::VerifyOptions options;
  options.now = fuzz::fixed_now();

  auto chain = auth::arc::collect_chain(parsed);
  auto r = auth::arc::validate(parsed, zone, options);
  if (r.instances < 0 || r.instances > auth::arc::kMaxInstances) __builtin_trap();
  if ((r.status == ChainStatus::none) != chain.empty()) __builtin_trap();
  if (r.status == ChainStatus::none && r.instances != 0) __builtin_trap();
  if (r.reason.empty()) __builtin_trap();
  if (r.status == ChainStatus::pass) {
    if (!chain.error.empty() || r.instances < 1 || size_t(r.instances) != chain.sets.size()) __builtin_trap();
    if (r.oldest_pass < 1 || r.oldest_pass > r.instances) __builtin_trap();
  }

  // RFC 8617 §5.1: seal what we saw. (A message starting with folding
  // whitespace would fold into our field on top; stored messages start
  // with our Received field.)
  if (input.message.starts_with(' ') || input.message.starts_with('\t')) return 0;
  auth::arc::SealOptions so;
  so.cv = r.status;
  std::string results = "mx.hikyaku.test; arc=" + std::string(auth::arc::chain_status_name(r.status));
  auto set = auth::arc::seal(input.message, results, fuzz::kDomain, fuzz::kSelector, fuzz::signing_key().key,
                             options.now, so);
  if (!set) return 0;  // no From, the instance limit, a broken chain marked none/pass
  std::string sealed = set->prefix() + std::string(input.message);
  auto again = auth::arc::validate(sealed, zone, options);
  if (r.status == ChainStatus::fail) {
    if (again.status != ChainStatus::fail) __builtin_trap();
  } else if (again.status != ChainStatus::pass || again.instances != r.instances + 1) {
    __builtin_trap();
  }
  return 0;
}
