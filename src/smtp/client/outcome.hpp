// Purpose:   Classification of everything that can end an SMTP client
//            attempt — a server reply at some stage, or a failure below SMTP
//            (DNS, TCP, TLS, timeouts) — into the queue's vocabulary:
//            delivered / temporary / permanent with an RFC 3463 status and
//            the detail text (the remote reply exactly as the server said
//            it, or our description of the failure). Also: which failures
//            move on to the next MX host, and which replies are rate-limit
//            deferrals.
// Standards: RFC 5321 §4.2.1 (reply classes), §5.1 (next host on failure),
//            §4.5.4.1 (retry), RFC 3463 §3.5 (X.4.x network and routing
//            codes), RFC 7505 §4.2 (null MX: 5.1.10), RFC 5321 §3.8 (421).
// Trust:     reply texts are untrusted; they are kept verbatim in `detail`
//            for logs and for the fallback engineer's X-Hikyaku-Diverted
//            header — never parsed beyond the code and status.
// Concurrency: pure functions.
// Errors:    none; every input maps to an Outcome.
#pragma once

#include <string>
#include <string_view>

#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::smtp::client {

using protocol::ServerReply;  // the reply parser is sans-I/O (smtp/protocol)

// The stage of the conversation a reply or failure belongs to.
enum class Stage { connect, greeting, ehlo, helo, starttls, auth, mail, rcpt, data, body, rset, quit };
std::string_view to_string(Stage stage);

// Failures below SMTP.
enum class Failure {
  dns_temp,         // 4.4.3 DNS lookup failed temporarily
  dns_nxdomain,     // 5.1.2 the recipient domain does not exist
  null_mx,          // 5.1.10 RFC 7505 null MX: the domain accepts no mail
  unroutable,       // 5.4.4 no MX host has an address
  loop,             // 5.4.6 the route leads back to this server
  connect_refused,  // 4.4.1 no answer from host (refused, unreachable)
  connect_timeout,  // 4.4.1
  timeout,          // 4.4.2 no reply within the stage's timeout
  connection_lost,  // 4.4.2 reset or closed by the peer
  tls,              // 4.7.5 TLS handshake failed (RFC 3463 X.7.5)
  security,         // 4.7.4 a [[route]] requires TLS or AUTH the host does not offer (X.7.4)
  protocol,         // 4.5.0 malformed reply / protocol violation
  local,            // 4.3.0 local problem (spool read, transform)
};

struct Outcome {
  enum class Kind { delivered, temporary, permanent };
  Kind kind = Kind::temporary;
  std::string status;  // "2.0.0", "4.4.1", "5.7.1", ...
  std::string detail;  // "550 5.7.1 ..." as received, or our failure text
  // RFC 5321 §5.1: may the same message be tried at the next MX host / address?
  bool try_next_host = false;

  // The reply was a rate-limit deferral (is_rate_limit): slow the destination down.
  bool rate_limited = false;
  // The reply came over a TLS-protected connection (set by deliver_via_route).
  bool tls = false;

  bool delivered() const { return kind == Kind::delivered; }
};

// A reply at `stage`. 2xx delivered (at body; at other stages the caller
// goes on), 4xx temporary and next host, 5xx permanent — final after MAIL
// (RFC 5321 §5.1: a definite 5xx for the transaction is not retried
// elsewhere); at greeting/HELO a 5xx means "no service here": next host.
// A missing or class-mismatched enhanced status becomes X.0.0.
Outcome classify(const ServerReply& reply, Stage stage);

// A failure below SMTP; `detail` is our text for logs ("connect to
// 127.0.0.2:25: Connection refused").
Outcome classify(Failure failure, std::string detail);

// Is this a rate-limit deferral (Gmail's "421 4.7.28", "421/451 4.7.0 ...
// rate ...")? Then the whole destination should slow down.
bool is_rate_limit(const ServerReply& reply);

}  // namespace hikyaku::smtp::client
