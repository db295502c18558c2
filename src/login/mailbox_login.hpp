// Purpose:   The password check behind POP3 USER/PASS and AUTH, IMAP
//            LOGIN/AUTHENTICATE and SMTP AUTH (submission), one way for all:
//            the login name is a [[mailbox]] name (config.find_mailbox) whose
//            argon2id hash is in the CredentialStore.
//            * A source address past [auth] failure_limit failures within
//              failure_window is locked out for `lockout`, across the three
//              protocols (FailureTracker): refused without a check.
//            * The hash is verified in a pool of its own, at most `threads`
//              at a time (argon2id takes 64 MiB and ≈0.1 s of CPU each) at a
//              lower CPU priority (nice +10), with at most `max_waiting`
//              attempts queued behind them: a password-guessing storm costs
//              bounded memory and never takes the CPU from mail.
//            * An unknown name costs the same verification; the password is
//              wiped afterwards; a failure is logged and answered only after
//              failure_delay (a timer: the event loop stays free).
// Standards: RFC 1939 §7 / RFC 3501 §6.2.3 / RFC 4954 §6 (a failed login
//            says nothing about which part was wrong), RFC 4616 (PLAIN).
// Trust:     the name and password come from an unauthenticated peer; the
//            password is never logged, the name only through
//            base::log_printable().
// Concurrency: check() is a coroutine on the session's executor and resumes
//            there; the verifications run on the pool. stop() joins the pool
//            (after the event loop has stopped, before it is destroyed).
// Errors:    a refusal is nullptr, never an exception.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "base/live.hpp"
#include "config/config.hpp"
#include "login/failure_tracker.hpp"
#include "metrics/metrics.hpp"
#include "net/asio.hpp"
#include "sasl/credential_store.hpp"

namespace spdlog {
class logger;
}

namespace hikyaku::login {

struct LoginAttempt {
  std::string user;
  std::string password;  // wiped by check()
  std::string_view mechanism;  // for the log: "USER", "PLAIN", "LOGIN", ...
  bool refused = false;        // the protocol already refused it (e.g. no TLS): no check, same delay
};

// Who is asking, for the lockout and the log.
struct LoginSession {
  spdlog::logger& log;
  std::string_view session_id;  // log prefix
  std::string_view client_ip;   // the source counted by the lockout
  bool tls = false;             // for the log
  metrics::Protocol protocol = metrics::Protocol::smtp;  // whose failure it counts as
};

// What a login attempt came to.
struct LoginResult {
  std::optional<std::string> mailbox;  // set: logged in to this mailbox
  // Refused without a check: too many logins already wait for verification.
  // Answered as a temporary failure (RFC 4954 454, RFC 5530 UNAVAILABLE,
  // RFC 3206 SYS/TEMP), never as a wrong password, which makes mail
  // clients discard the password the user saved.
  bool busy = false;
};

class MailboxLogins {
 public:
  struct Settings {
    FailureTracker::Settings lockout;
    std::chrono::steady_clock::duration failure_delay = std::chrono::seconds(2);
    unsigned threads = 1;      // concurrent verifications
    size_t max_waiting = 64;   // queued behind them; more are refused at once
    metrics::Metrics* metrics = nullptr;  // counts refusals when set
    static Settings from(const config::Config& config);
  };

  // `config` and `credentials` must outlive the object; each check reads
  // the [[mailbox]] list current then (`hikyaku reload` may replace it).
  MailboxLogins(const base::Live<config::Config>& config, const sasl::CredentialStore& credentials,
                Settings settings);
  ~MailboxLogins();
  MailboxLogins(const MailboxLogins&) = delete;
  MailboxLogins& operator=(const MailboxLogins&) = delete;

  // The mailbox the attempt logs in to; a refusal comes after the failure
  // delay.
  net::awaitable<LoginResult> check(const LoginSession& session, LoginAttempt attempt);

  // The storage quota of the [[mailbox]] `name` as configured now, in
  // bytes (0: none, or no such mailbox any more).
  uint64_t quota_of(std::string_view name) const;

  // Join the verification pool, skipping what is still queued (shutdown;
  // idempotent).
  void stop();

  FailureTracker& failures() { return failures_; }

 private:
  net::awaitable<void> delay();
  net::awaitable<LoginResult> refuse(const LoginSession& session, bool busy = false);

  const base::Live<config::Config>& config_;
  const sasl::CredentialStore& credentials_;
  const Settings settings_;
  FailureTracker failures_;
  boost::asio::thread_pool pool_;
  std::atomic<size_t> waiting_{0};
  std::atomic<bool> stopping_{false};  // stop(): queued verifications are skipped
};

}  // namespace hikyaku::login
