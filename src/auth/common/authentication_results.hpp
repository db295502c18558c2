// Purpose:   Authentication-Results header fields: build ours ("authserv-id;
//            spf=pass smtp.mailfrom=…; dkim=pass header.d=… header.s=…;
//            dmarc=…; arc=…"), parse incoming ones well enough to recognise
//            our own authserv-id (which must be removed or distrusted,
//            RFC 8601 §5), and gather our results for an ARC-Authentication-
//            Results field.
// Standards: RFC 8601 §2.2 (syntax: authserv-id, resinfo, ptype.property),
//            §2.7 (methods), §5 (removing forged fields with our authserv-id);
//            RFC 8617 §4.1.1 (AAR = "i=N; " + the AR payload).
// Trust:     parses untrusted header text; comments are skipped, not trusted.
// Errors:    nullopt for fields that do not parse.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/common/message.hpp"

namespace hikyaku::auth::common {

struct AuthResult {
  std::string method;   // "spf", "dkim", "dmarc", "arc", …
  std::string result;   // "pass", "fail", …
  std::string reason;   // reason= text, may be empty
  std::vector<std::pair<std::string, std::string>> properties;  // {"header.d", "example.com"}
};

struct AuthenticationResults {
  std::string authserv_id;
  std::vector<AuthResult> results;  // empty means "none"

  AuthenticationResults& add(std::string method, std::string result,
                             std::vector<std::pair<std::string, std::string>> properties = {},
                             std::string reason = {});
  // The field value: "authserv-id; spf=pass smtp.mailfrom=a@b; dkim=…"
  // (results folded one per line), or "authserv-id; none".
  std::string value() const;
  // "Authentication-Results: <value>\r\n".
  std::string field() const;
};

std::optional<AuthenticationResults> parse_authentication_results(std::string_view value);

// Would value() write this property value as a quoted string (it is not a
// plain token or dot-atom: white space, ';', '(', ')', '"', '\\', ',')?
bool needs_quoting(std::string_view value);

// True when the field value names `authserv_id` (case-insensitive): such a
// field arriving from outside is forged (RFC 8601 §5).
bool is_own_authentication_results(std::string_view value, std::string_view authserv_id);

// The AR payload for ARC (dkimpy/OpenARC behaviour): every
// Authentication-Results field with `authserv_id`, merged into
// "authserv-id; r1;\r\n  r2 …". nullopt when there is none.
std::optional<std::string> collect_results_for(const ParsedMessage& message, std::string_view authserv_id);

}  // namespace hikyaku::auth::common
