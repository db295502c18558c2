// Purpose:   The IMAP server session over a net::Stream (143 with STARTTLS,
//            993 implicit TLS): reads client bytes with the autologout
//            timeout, frames them (literals, "+" continuations), runs the
//            sans-I/O protocol::Engine on the worker pool (it touches the
//            Maildir) and carries out its actions: TLS handshakes, argon2id
//            login checks on the worker pool, the failed-login delay (a
//            timer), opening the user's INBOX (MaildirStore) and IDLE: a
//            new message in new/ or cur/ is noticed through inotify (an Asio
//            stream_descriptor) with a poll timer as fallback, and reported
//            at once as "* n EXISTS".
//            Login mapping (as POP3): the login name is a [[mailbox]] name
//            (config.find_mailbox) whose password is in the CredentialStore;
//            plain-text logins only under TLS unless auth.allow_plaintext.
// Standards: RFC 3501 (§5.4 autologout ≥ 30 min: limits.imap_idle_timeout),
//            RFC 2177 (IDLE), RFC 2595 / RFC 8314 (STARTTLS, 993).
// Trust:     the peer is untrusted; passwords are never logged; log lines
//            carry ip:port, the login name (sanitised) and the outcome.
// Concurrency: one coroutine per connection on the (single-threaded)
//            io_context; the engine and the Maildir run on ctx.blocking, one
//            call at a time per session; the coroutine resumes on its own
//            executor.
// Errors:    run_session never throws on I/O errors (they end the session);
//            anything thrown is a bug caught by net::start_accepting.
#pragma once

#include <memory>

#include "config/config.hpp"
#include "imap/maildir_store.hpp"
#include "net/asio.hpp"
#include "net/listener.hpp"
#include "login/mailbox_login.hpp"

namespace hikyaku::imap {

struct ImapContext {
  const config::Config& config;
  login::MailboxLogins& logins;  // password checks, lockout
  std::shared_ptr<boost::asio::ssl::context> tls;  // may be null: no STARTTLS, no 993
  boost::asio::thread_pool& blocking;  // the blocking pool (filesystem)
  // Per-mailbox uidlist mutexes, shared by every IMAP listener of this context.
  std::shared_ptr<MailboxLocks> locks = std::make_shared<MailboxLocks>();
};

// Serve one IMAP connection. No lease in `admission`: a connection limit
// was reached (the client gets "* BYE [UNAVAILABLE] too many connections")
// or [access] denies the client ("* BYE access denied"; on 993 just closed).
// `implicit_tls`: handshake before the greeting (993).
net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, ImapContext& ctx,
                                 bool implicit_tls);

}  // namespace hikyaku::imap
