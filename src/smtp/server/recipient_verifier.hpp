// Purpose:   Asking the next hop whether a recipient exists, before our 250
//            (a gateway's "callout", issue 14): the session calls wants() for
//            every RCPT of an unauthenticated session that the sink accepted,
//            and, when it says yes, waits for verify() before it answers.
//            The implementation (delivery/callout_verifier.hpp) knows the
//            [[route]] table and keeps a cache, so a client cannot make us
//            probe the same address over and over.
// Standards: RFC 5321 §3.3 and §7.1 (refuse at RCPT, never accept what
//            would bounce later), §4.2.5 (451 when the answer is not known).
// Trust:     `rcpt` comes from the network (already parsed and accepted by
//            the sink's rules); the reply is ours, never the next hop's text.
// Concurrency: called on the session's io_context thread.
// Errors:    a refusal is a reply value (550, or 451 when the next hop could
//            not be asked); nothing throws.
#pragma once

#include <optional>

#include "mail/address.hpp"
#include "mail/reply.hpp"
#include "net/asio.hpp"

namespace hikyaku::smtp::server {

class RecipientVerifier {
 public:
  virtual ~RecipientVerifier() = default;
  // Must `rcpt` be verified at the next hop? (No I/O.)
  virtual bool wants(const mail::Address& rcpt) const = 0;
  // nullopt: the next hop takes it (250); else the reply to give.
  // `rcpt` must stay alive until it completes (a named object: GCC 12
  // mishandles temporaries in co_await argument lists).
  virtual net::awaitable<std::optional<mail::Reply>> verify(const mail::Address& rcpt) = 0;
};

}  // namespace hikyaku::smtp::server
