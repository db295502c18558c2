// Purpose:   What the scanners' answers mean for a message at the end of
//            DATA (issue 17 item 1), decided once, sans-I/O:
//            - clamd FOUND: refused, 554 5.7.0 (nothing accepted);
//            - rspamd "reject": refused, 550 5.7.1;
//            - rspamd "soft reject"/"greylist": 451 4.7.1 (try again);
//            - rspamd "add header"/"rewrite subject": accepted as spam: the
//              local copies get X-Spam-* fields, forwards follow their
//              `spam` option (keep-local by default: not forwarded);
//            - "no action": accepted, clean;
//            - a scanner that cannot be asked or answers nonsense: [scan]
//              on_failure: "tempfail" (default) answers 451 4.7.1,
//              "accept" delivers unscanned (logged).
//            The X-Spam-* fields go first in the stored message, before our
//            Received field, so that strip_spam_fields() can take exactly
//            ours off every copy that leaves by SMTP (a sender's own
//            X-Spam-* fields are never first: our Received is).
// Standards: RFC 5321 §4.2.5 (a refusal after the final dot: nothing
//            stored), RFC 3463 (5.7.0, 5.7.1, 4.7.1), RFC 5322 §2.2.3
//            (folded fields).
// Trust:     reads scanner answers (network input, already parsed); the
//            reply texts are fixed: a malware or symbol name never reaches
//            the SMTP client, only the log and the local copy's fields
//            (printable ASCII only).
// Concurrency: pure functions.
// Errors:    none: a scanner failure is part of the Report.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mail/reply.hpp"
#include "scan/protocol/clamd.hpp"
#include "scan/protocol/rspamd.hpp"

namespace hikyaku::scan {

enum class OnFailure { tempfail, accept };

// What the scanners said about one message.
struct Report {
  bool clamd_asked = false;
  clamd::Reply clamd;             // kind error also for "could not ask" (detail says why)
  bool rspamd_asked = false;
  std::optional<rspamd::Reply> rspamd;
  std::string rspamd_error;       // why there is no rspamd reply
};

struct Decision {
  enum class Kind { deliver, spam, refuse };
  Kind kind = Kind::deliver;
  std::optional<mail::Reply> refusal;  // Kind::refuse
  std::string fields;                  // X-Spam-* fields for the local copy ("" none)
  std::string summary;                 // one line for the log
};

Decision decide(const Report& report, OnFailure on_failure);

// The X-Spam-* fields of an rspamd reply (CRLF-terminated, folded at 78).
std::string spam_fields(const rspamd::Reply& reply);

// The message without the X-Spam-* fields at its very start (ours); any
// other text is returned unchanged.
std::string strip_spam_fields(std::string text);

}  // namespace hikyaku::scan
