// Purpose:   The POP3 server session over a net::Stream (110 with STLS, 995
//            implicit TLS): reads command lines with the idle timeout, feeds
//            the sans-I/O protocol::StateMachine and carries out its actions:
//            TLS handshakes, argon2id login checks on the worker pool, the
//            failed-login delay (a timer, the event loop stays free), the
//            maildrop lock, and Maildir reads and removals (worker pool).
//            Login mapping: login::MailboxLogins names the mailbox; its
//            maildrop is Pop3Settings::mailboxes_dir/NAME.
// Standards: RFC 1939 (§3 autologout timer, §8 lock), RFC 2449, RFC 2595,
//            RFC 5034, RFC 8314 (implicit TLS on 995).
// Trust:     the peer is untrusted; passwords are never logged; log lines
//            carry ip:port, the login name (sanitised) and the outcome.
// Concurrency: one coroutine per connection on the (single-threaded)
//            io_context; blocking work is co_spawned on ctx.blocking and the
//            coroutine resumes on its own executor.
// Errors:    run_session never throws on I/O errors (they end the session);
//            anything thrown is a bug caught by net::start_accepting.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>

#include "net/asio.hpp"
#include "net/listener.hpp"
#include "pop3/mailbox_lock.hpp"
#include "login/mailbox_login.hpp"

namespace hikyaku::config {
struct Config;
}

namespace hikyaku::pop3 {

// The part of the configuration a POP3 session reads. All of it is kept as
// started across `hikyaku reload` (config/reload.hpp); the mailbox list,
// which a reload may change, is the logins' business.
struct Pop3Settings {
  std::filesystem::path mailboxes_dir;  // a mailbox NAME's maildrop is mailboxes_dir/NAME
  std::chrono::seconds idle_timeout{600};   // RFC 1939 §3 autologout
  std::chrono::seconds stress_timeout{10};  // instead, while the pool is nearly full
  std::size_t line_length = 4096;           // longest command line
  unsigned max_errors = 10;                 // bad commands before the session ends
  bool allow_plaintext = false;             // USER/PASS and AUTH without TLS
  static Pop3Settings from(const config::Config& config);
};

struct Pop3Context {
  Pop3Settings settings;
  login::MailboxLogins& logins;  // password checks, lockout
  std::shared_ptr<boost::asio::ssl::context> tls;  // may be null: no STLS, no 995
  boost::asio::thread_pool& blocking;  // the blocking pool (filesystem)
  // One session per maildrop (RFC 1939 §8); shared by every POP3 listener
  // built from this context. Default-initialised: `{settings, logins,
  // tls, blocking}` is enough.
  std::shared_ptr<LockTable> locks = std::make_shared<LockTable>();
};

// Serve one POP3 connection. No lease in `admission`: a connection limit
// was reached (the client gets "-ERR [SYS/TEMP] too many connections") or
// [access] denies the client ("-ERR access denied"; on 995 just closed).
// `implicit_tls`: handshake before the greeting (995).
net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, Pop3Context& ctx,
                                 bool implicit_tls);

}  // namespace hikyaku::pop3
