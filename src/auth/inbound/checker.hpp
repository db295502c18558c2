// Purpose:   The inbound authentication of one received message, run at the
//            end of DATA: SPF on the MAIL FROM identity (the HELO identity
//            for a null reverse-path), every DKIM signature, the ARC chain,
//            DMARC for the author domain, and the client's confirmed
//            reverse name (iprev); the results as our
//            Authentication-Results field. stamp() removes incoming fields
//            that claim our authserv-id and puts ours after our Received.
//            A message whose body is in a file is checked from its header
//            section and precomputed body hashes (body_hash_keys() lists
//            them).
// Standards: RFC 7208 §2.3-2.4 (identities checked), RFC 6376 §6
//            (verification), RFC 8617 §5.2 (validation), RFC 7489 §6.6 and
//            DMARCbis §4.10 (policy discovery and result), RFC 8601 §2
//            (field syntax), §5 (removal of forged fields with our
//            authserv-id), §2.7.1-2.7.2 (smtp.mailfrom, smtp.helo,
//            header.d, header.s, header.b), RFC 7489 §11.2 (dmarc,
//            header.from), RFC 8601 §3 and §2.7.3 (iprev, policy.iprev:
//            iprev.hpp).
// Trust:     every input byte and every DNS answer is untrusted; the work
//            is bounded by the verifiers' limits (10 DKIM signatures, 50 ARC
//            sets, SPF's 10 lookups, DMARC's 8 queries).
// Concurrency: synchronous and stateless; blocks on the Resolver: call it on
//            a worker thread, never on the io_context.
// Errors:    never fails: DNS trouble becomes temperror results, and so
//            does a body hash missing from Input::body_hashes.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/arc/validator.hpp"
#include "auth/common/authentication_results.hpp"
#include "auth/common/author.hpp"
#include "auth/common/body_hashes.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/dmarc/evaluate.hpp"
#include "auth/inbound/iprev.hpp"
#include "auth/spf/check.hpp"
#include "dns/resolver.hpp"
#include "mail/message.hpp"

namespace hikyaku::auth::inbound {

struct Input {
  std::string_view message;             // CRLF, our Received first
  std::optional<std::string> mail_from; // "local@domain"; nullopt = "<>"
  std::string helo;                     // EHLO/HELO argument
  std::string client_ip;                // textual IP of the SMTP client
  // When set, `message` is the header section only (with the empty line
  // that ends it) and every body hash comes from here: the keys of
  // body_hash_keys(), fed the whole body and finished. Not owned.
  const common::BodyHashes* body_hashes = nullptr;
};

// The body hashes checking (and then signing or sealing) `headers_only`
// needs, each once: one per DKIM-Signature that dkim::verify() would check
// (the first options.max_signatures that parse; RFC 6376 §3.5 c=, a=, l=),
// one per ARC-Message-Signature of a structurally sound chain (at most 50
// sets, RFC 8617 §4.2.1) that parses, and what our own DKIM signer and ARC
// sealer use (dkim::signing_body_hash_key(): relaxed/sha256).
std::vector<common::BodyHashKey> body_hash_keys(const common::ParsedMessage& headers_only,
                                                const dkim::VerifyOptions& options = {});

// The body hashes of body_hash_keys() for `message`, in one pass over its
// body: a large message's (mail::Message::body) read from its file in
// pieces, never into memory whole. The keys come from the header section in
// message.text. An unreadable file is an Error.
base::Result<common::BodyHashes> body_hashes_of(const mail::Message& message);

struct Options {
  std::string authserv_id;  // our hostname (RFC 8601 §2.5)
  dmarc::Discovery discovery = dmarc::Discovery::tree_walk;
  const dmarc::PublicSuffixList* psl = nullptr;  // for Discovery::public_suffix_list
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

struct Verdict {
  spf::Outcome spf;
  std::string spf_property;  // "smtp.mailfrom" or "smtp.helo"
  std::string spf_identity;  // the address or HELO name checked
  std::string spf_domain;    // its domain (DMARC's SPF identifier)
  std::vector<dkim::Result> dkim;
  arc::ValidationResult arc;
  std::optional<common::Author> author;
  dmarc::Evaluation dmarc;   // result permerror when there is no single author
  std::optional<Iprev> iprev;  // none when the client address is unknown
  common::AuthenticationResults results;

  // RFC 7489 §6.6.4 / §10.3: DMARC failed and the policy to apply is reject.
  bool dmarc_reject() const {
    return dmarc.result == dmarc::Result::fail && dmarc.applied == dmarc::Policy::reject;
  }
};

Verdict check(dns::Resolver& resolver, const Input& input, const Options& options);

// One log line of the verdict: "from=<s> client=[ip] spf=pass dkim=pass(d)
// dmarc=pass (policy=none from=d) arc=none iprev=pass(name)".
std::string summary(const Verdict& verdict, std::string_view mail_from, std::string_view client_ip);

// The message with every Authentication-Results field naming `results`'
// authserv-id removed (RFC 8601 §5) and `results.field()` inserted after the
// first header field (our Received, RFC 8601 §5: "prepend"). Done in place:
// the message is moved in and out, never copied.
std::string stamp(std::string message, const common::AuthenticationResults& results);

// Our own Authentication-Results of a stored message, as stamped at receipt
// (the topmost field naming `authserv_id`); nullopt when there is none.
std::optional<common::AuthenticationResults> own_results(const common::ParsedMessage& message,
                                                         std::string_view authserv_id);

}  // namespace hikyaku::auth::inbound
