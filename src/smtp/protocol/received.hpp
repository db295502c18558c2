// Purpose:   Build the Received: trace field the SMTP server prepends to each
//            accepted message, and the RFC 5322 date it ends with.
// Standards: RFC 5321 §4.4 (trace information: from/by/with/id/for),
//            RFC 5322 §3.6.7 (trace fields), §3.3 (date-time),
//            RFC 3848 (ESMTPS/ESMTPA/ESMTPSA), RFC 6531 §3.7.3 (UTF8SMTP*).
// Trust:     the HELO name is peer-chosen: it is sanitised to printable ASCII
//            without comment delimiters before it goes into the header; so
//            are the TLS version and cipher names (OpenSSL's, but text
//            inside a comment all the same).
// Concurrency: pure functions.
// Errors:    none.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace hikyaku::smtp::protocol {

struct ReceivedInfo {
  std::string helo;          // what the client said
  std::string client_ip;     // textual IP, "192.0.2.1" or "2001:db8::1"
  std::string hostname;      // our name
  bool esmtp = true;         // EHLO (else HELO: "SMTP")
  bool tls = false;
  bool authenticated = false;
  // Submitted mail: no "from" clause (HELO, client address); the field
  // starts with "by", as Gmail's own do (RFC 5321 §4.4 asks for "from";
  // a user's home address is not ours to publish).
  bool hide_client = false;
  bool smtputf8 = false;
  // The TLS in use (when `tls`), written as Postfix does: "(using TLSv1.3
  // with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))". Optional: an empty
  // version leaves the clause out, zero bits leave out the "(a/b bits)".
  std::string tls_version;     // "TLSv1.3"
  std::string tls_cipher;      // "TLS_AES_256_GCM_SHA384"
  int tls_secret_bits = 0;     // the cipher's effective key bits
  int tls_algorithm_bits = 0;  // the algorithm's key bits
  std::string id;            // session-local transaction id
  std::string for_recipient; // set only when there is exactly one recipient
  std::chrono::system_clock::time_point when;
};

// RFC 3848 / RFC 6531 §3.7.3 "with" protocol name.
std::string with_protocol(const ReceivedInfo& info);

// "Received: from ... by ... with ... id ...\r\n\t...; date\r\n" (folded, CRLF).
std::string received_header(const ReceivedInfo& info);

}  // namespace hikyaku::smtp::protocol
