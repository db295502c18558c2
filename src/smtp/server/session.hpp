// Purpose:   The inbound SMTP server session (MX on 25; submission 587 and
//            submissions 465 share the class and differ by Role): greeting,
//            EHLO, MAIL/RCPT with the recipient policy, DATA through the
//            sans-I/O DataReader, STARTTLS, limits, and the hand-off of each
//            accepted message to the MessageSink (intake).
// Standards: RFC 5321 (SMTP), RFC 1869/5321 §4.1.1.1 (EHLO), RFC 2920
//            (PIPELINING), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 6531
//            (SMTPUTF8), RFC 2034/3463 (enhanced status codes), RFC 3207
//            (STARTTLS), RFC 8314 (implicit TLS on 465), RFC 5321 §4.4
//            (Received), §4.5.3.2.7 (server timeout), RFC 4954 (AUTH),
//            RFC 6409 (message submission), RFC 3848 (ESMTPSA).
//            Submission (587 after STARTTLS, 465): AUTH PLAIN/LOGIN against
//            the mailbox passwords (login/), MAIL only when authenticated and
//            only from the login's send_as addresses, relaying allowed.
//            Port 25 offers no AUTH and relays nothing.
// Trust:     handles untrusted network input; the peer chooses every byte.
//            AUTH data (the command line, responses, passwords) is never
//            logged (STYLE R14); passwords are wiped after the check.
// Concurrency: run_session runs on the io_context's (single-threaded)
//            executor; MessageSink::admit() is called there, and the
//            PendingMessage's commit() (fsync) on ctx.blocking; the session
//            resumes on its own executor afterwards.
// Errors:    protocol outcomes are replies; I/O failures end the session
//            quietly; an exception escaping is a bug for the listener's
//            boundary (STYLE R7).
#pragma once

#include <memory>

#include "config/config.hpp"
#include "net/asio.hpp"
#include "net/listener.hpp"
#include "smtp/server/message_sink.hpp"
#include "smtp/server/recipient_verifier.hpp"

namespace hikyaku::login {
class MailboxLogins;
}

namespace hikyaku::smtp::server {

// The server's part of the configuration.
struct Settings {
  std::string hostname;           // greeting, EHLO, Received
  std::string postmaster_domain;  // RFC 5321 §4.5.1: the domain of a bare "<Postmaster>"
  config::Limits limits;
  bool allow_plaintext = false;  // [auth]: AUTH without TLS
  bool reveal_client = false;    // [auth]: submitted mail's Received names the client

  static Settings from(const config::Config& config);
};

struct ServerContext {
  Settings settings;
  MessageSink& sink;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: no STARTTLS, no 465
  boost::asio::thread_pool& blocking;               // where commit() and argon2id run
  // Submission AUTH: the mailbox logins (login/). Null: no AUTH is
  // offered anywhere (submission then accepts no mail).
  login::MailboxLogins* logins = nullptr;
  // Gateway recipients verified at the next hop before 250 (issue 14).
  // Null: no verification.
  RecipientVerifier* verifier = nullptr;
};

enum class Role {
  mx,          // port 25: inbound for local domains, STARTTLS offered, no AUTH
  submission,  // port 587 (RFC 6409): STARTTLS, then AUTH, then mail
  submissions  // port 465: implicit TLS (RFC 8314), then AUTH, then mail
};

// One connection, from greeting to close. No lease in `admission`: a
// connection limit refused it (421 4.7.0) or [access] denied the client
// (554 5.7.1 as the greeting); answer so and close.
net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, ServerContext& ctx, Role role);

}  // namespace hikyaku::smtp::server
