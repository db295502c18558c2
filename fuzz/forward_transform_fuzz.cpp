// libFuzzer target: what the forwarder does to a received message before
// it leaves (delivery/forward_transform.hpp, sans I/O): the DMARC From
// rewrite (auth/dmarc/from_rewrite.hpp) of the message's author, our
// DKIM signature over the result and an ARC set on top, as apply() does.
// The input is the message (CRLF or not).
// Invariants of the rewrite (RFC 5322 §3.6.2): exactly one From, whose
// single mailbox is noreply@<our domain>; one X-Original-From; a Reply-To
// added only when there was none; every other header field and the body
// byte for byte as they were, in order; no field gained or lost otherwise.
// Then: our DKIM signature verifies (RFC 6376 §6.1), and our ARC set
// validates as the verdict we recorded (RFC 8617 §5.2) — a chain we did not
// find broken passes with one instance more.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/arc/sealer.hpp"
#include "auth/arc/validator.hpp"
#include "auth/common/author.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/dmarc/from_rewrite.hpp"
#include "signed_message_input.hpp"

namespace {

using namespace hikyaku;
using auth::common::ParsedMessage;

bool named(const auth::common::HeaderField& h, std::string_view name) {
  return base::iequals(auth::common::field_name(h), name);
}

void check_rewrite(const ParsedMessage& before, const std::string& out) {
  auto after = auth::common::parse_message(out);
  if (after.has_body_separator != before.has_body_separator || after.body != before.body) __builtin_trap();
  auto froms = after.all("From");
  if (froms.size() != 1) __builtin_trap();
  auto author = auth::common::parse_author(froms.front()->value);
  if (!author || author->domain != fuzz::kDomain || author->address != "noreply@" + std::string(fuzz::kDomain))
    __builtin_trap();
  if (after.all("X-Original-From").size() != before.all("X-Original-From").size() + 1) __builtin_trap();
  const size_t reply_to = before.all("Reply-To").size();
  if (after.all("Reply-To").size() != (reply_to == 0 ? 1 : reply_to)) __builtin_trap();
  // The other fields, in order, byte for byte: drop the From fields from
  // the input and the new fields (at the first From's place) from the output.
  std::vector<std::string_view> kept, left;
  for (const auto& h : before.headers)
    if (!named(h, "From")) kept.push_back(h.raw);
  size_t added = 2 + (reply_to == 0 ? 1 : 0);
  bool skipping = false;
  for (const auto& h : after.headers) {
    if (named(h, "From")) skipping = true;
    if (skipping && added > 0) {
      --added;
      continue;
    }
    left.push_back(h.raw);
  }
  if (added != 0 || kept != left) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  std::string message(reinterpret_cast<const char*>(data), size);
  // A stored message starts with our Received field, never with folding
  // whitespace (which would fold into a field put on top of it).
  if (message.starts_with(' ') || message.starts_with('\t')) return 0;
  auto now = fuzz::fixed_now();
  dns::FakeResolver zone;
  fuzz::serve_signing_key(zone);

  // (a) The From rewrite of mail that would fail DMARC after forwarding.
  {
    auto parsed = auth::common::parse_message(message);
    auto author = auth::common::find_author(parsed);
    if (author) {
      std::string rewritten = auth::dmarc::rewrite_from(message, *author, fuzz::kDomain);
      check_rewrite(parsed, rewritten);
      message = std::move(rewritten);
    }
  }

  // Signed for our domain, as apply() signs a rewritten message.
  auth::dkim::SignOptions so;
  so.domain = fuzz::kDomain;
  so.selector = fuzz::kSelector;
  auto sig = auth::dkim::sign(message, fuzz::signing_key().key, so, now);
  if (!sig) return 0;  // no From
  message = *sig + message;
  auth::dkim::VerifyOptions vo;
  vo.now = now;
  if (auth::dkim::verify(message, zone, vo).front().status != auth::dkim::Status::pass) __builtin_trap();

  // (b) ARC: seal with what we found (the input's own chain cannot verify
  // here: only our key is served, so an existing chain is "fail").
  auto before = auth::arc::validate(message, zone, vo);
  auth::arc::SealOptions ao;
  ao.cv = before.status;
  std::string results = "mx.hikyaku.test; dkim=pass header.d=" + std::string(fuzz::kDomain) +
                        "; arc=" + std::string(auth::arc::chain_status_name(before.status));
  auto set = auth::arc::seal(message, results, fuzz::kDomain, fuzz::kSelector, fuzz::signing_key().key, now, ao);
  if (!set) return 0;
  auto after = auth::arc::validate(set->prefix() + message, zone, vo);
  if (before.status == auth::arc::ChainStatus::fail) {
    if (after.status != auth::arc::ChainStatus::fail) __builtin_trap();
  } else if (after.status != auth::arc::ChainStatus::pass || after.instances != before.instances + 1) {
    __builtin_trap();
  }
  return 0;
}
