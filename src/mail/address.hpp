// Purpose:   RFC 5321 mailbox addresses: parse a Path from MAIL/RCPT, keep the
//            local part as sent (case preserved, RFC 5321 §2.4) and the domain
//            lowercased for comparison.
// Standards: RFC 5321 §4.1.2 (Path, Mailbox, Local-part, Domain,
//            address-literal; source routes accepted and ignored, §C),
//            RFC 6531 §3.3 (UTF-8 in local part and domain with SMTPUTF8).
// Trust:     parses untrusted network input; bounded by the caller's line limit.
// Errors:    nullopt for anything that is not a valid path.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hikyaku::mail {

struct Address {
  std::string local;   // as sent, without quotes if it needed none
  std::string domain;  // lowercased ASCII (or UTF-8 when SMTPUTF8)

  std::string str() const { return local + "@" + domain; }
  bool empty() const { return local.empty() && domain.empty(); }
  // Comparison key: local part case-preserved per RFC, but we treat local
  // parts of our own domains case-insensitively (as every MTA does).
  std::string key() const;
  bool has_utf8() const;
};

// The lowercased domain of "local@domain" (after the last '@'); "" when
// there is none. The one way every component takes an address's domain.
std::string domain_of(std::string_view address);

// Parse "local@domain" (no angle brackets). `utf8` allows non-ASCII.
std::optional<Address> parse_mailbox(std::string_view text, bool utf8);

struct PathParse {
  std::optional<Address> address;  // empty for the null path "<>"
  std::string_view rest;           // text after '>' (ESMTP parameters)
  bool ok = false;
};

// Parse "<...>" at the start of `text` (after "MAIL FROM:" / "RCPT TO:").
// `allow_null` accepts "<>" (reverse-path only).
PathParse parse_path(std::string_view text, bool allow_null, bool utf8);

}  // namespace hikyaku::mail
