// Purpose:   The IMAP server session over a net::Stream (143 with STARTTLS,
//            993 implicit TLS): reads client bytes with the autologout
//            timeout, frames them (literals, "+" continuations), runs the
//            sans-I/O protocol::Engine on the worker pool (it touches the
//            Maildir) and carries out its actions: TLS handshakes, argon2id
//            login checks on the worker pool, the failed-login delay (a
//            timer), opening the user's INBOX (MaildirStore) and IDLE: a
//            new message in new/ or cur/ is noticed through the server's one
//            inotify instance (MaildirWatch) with a poll timer as fallback,
//            and reported at once as "* n EXISTS". After COMPRESS DEFLATE (RFC 4978)
//            every byte both ways passes through protocol::Deflate.
//            Login mapping (as POP3): login::MailboxLogins names the
//            mailbox; its Maildir is ImapSettings::mailboxes_dir/NAME;
//            plain-text logins only under TLS unless allow_plaintext.
// Standards: RFC 3501 (§5.4 autologout ≥ 30 min: [limits] imap_idle_timeout),
//            RFC 2177 (IDLE), RFC 2595 / RFC 8314 (STARTTLS, 993),
//            RFC 4978 (COMPRESS).
// Trust:     the peer is untrusted; passwords are never logged; log lines
//            carry ip:port, the login name (sanitised) and the outcome.
// Concurrency: one coroutine per connection on the (single-threaded)
//            io_context; the engine and the Maildir run on ctx.blocking, one
//            call at a time per session; the coroutine resumes on its own
//            executor.
// Errors:    run_session never throws on I/O errors (they end the session);
//            anything thrown is a bug caught by net::start_accepting.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "imap/maildir_store.hpp"
#include "imap/maildir_watch.hpp"
#include "net/asio.hpp"
#include "net/listener.hpp"
#include "login/mailbox_login.hpp"

namespace hikyaku::config {
struct Config;
}

namespace hikyaku::imap {

// The part of the configuration an IMAP session reads. All of it is kept as
// started across `hikyaku reload` (config/reload.hpp); the mailbox list,
// which a reload may change, is the logins' business.
struct ImapSettings {
  std::filesystem::path mailboxes_dir;  // a mailbox NAME's Maildir is mailboxes_dir/NAME
  std::chrono::seconds idle_timeout{1800};  // RFC 3501 §5.4 autologout (bounds IDLE too)
  std::chrono::seconds stress_timeout{10};  // instead, while the pool is nearly full
  std::size_t line_length = 4096;           // longest command line (at least kMaxCommandLine)
  std::uint64_t message_size = 50ull * 1024 * 1024;  // largest APPEND literal
  unsigned max_errors = 10;                 // bad commands before BYE
  bool allow_plaintext = false;             // LOGIN and AUTHENTICATE without TLS
  static ImapSettings from(const config::Config& config);
};

struct ImapContext {
  ImapSettings settings;
  login::MailboxLogins& logins;  // password checks, lockout
  std::shared_ptr<boost::asio::ssl::context> tls;  // may be null: no STARTTLS, no 993
  boost::asio::thread_pool& blocking;  // the blocking pool (filesystem)
  // Per-mailbox uidlist mutexes, shared by every IMAP listener of this context.
  std::shared_ptr<MailboxLocks> locks = std::make_shared<MailboxLocks>();
  // The sessions' own claims (new/ → cur/), which the watch does not
  // report; shared by the stores and the watch.
  std::shared_ptr<QuietMoves> quiet_moves = std::make_shared<QuietMoves>();
  // The one inotify instance of every session in IDLE (on the io_context
  // the sessions run on, made with quiet_moves); null: IDLE polls the
  // Maildir every 2 s.
  std::shared_ptr<MaildirWatch> watch;
};

// Serve one IMAP connection. No lease in `admission`: a connection limit
// was reached (the client gets "* BYE [UNAVAILABLE] too many connections")
// or [access] denies the client ("* BYE access denied"; on 993 just closed).
// `implicit_tls`: handshake before the greeting (993).
net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, ImapContext& ctx,
                                 bool implicit_tls);

}  // namespace hikyaku::imap
