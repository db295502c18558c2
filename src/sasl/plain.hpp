// Purpose:   Sans-I/O decoding of the SASL PLAIN mechanism, shared by POP3
//            AUTH (RFC 5034), SMTP AUTH (RFC 4954) and IMAP AUTHENTICATE
//            (RFC 3501 §6.2.2): base64 text in, the three fields out.
// Standards: RFC 4616 §2 (message = [authzid] NUL authcid NUL passwd, each
//            1–255 octets of UTF-8 without NUL), RFC 4648 §4 (base64),
//            RFC 5034 §4 / RFC 4954 §4 ("=" is an empty initial response,
//            "*" cancels the exchange).
// Trust:     input is untrusted network data; the password is a secret: the
//            caller must never log `password` (or the raw response).
// Concurrency: pure functions.
// Errors:    std::nullopt for anything malformed; no exceptions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace hikyaku::sasl {

// RFC 4616 §2: each field 1–255 octets (also what POP3's PASS and USER
// carry, RFC 2449 §4): a longer password could never be sent.
inline constexpr size_t kMaxPlainField = 255;

struct PlainCredentials {
  std::string authzid;   // authorization identity; empty = same as authcid
  std::string authcid;   // authentication identity (the login name)
  std::string password;  // secret: never log
};

// Decode the raw (already base64-decoded) PLAIN message (RFC 4616 §2).
std::optional<PlainCredentials> parse_plain(std::string_view message);

// Decode a base64 PLAIN response as sent on the wire; "=" is the empty
// response (which is itself not a valid PLAIN message).
std::optional<PlainCredentials> decode_plain(std::string_view base64);

// Decode one base64 client response of any mechanism ("=" → empty string);
// nullopt when it is not valid base64.
std::optional<std::string> decode_response(std::string_view base64);

// True when a client response line cancels the exchange (RFC 4954 §4,
// RFC 5034 §4: a single "*").
bool is_cancel(std::string_view line);

}  // namespace hikyaku::sasl
