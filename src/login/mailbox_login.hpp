// Purpose:   The password check behind POP3 USER/PASS, AUTH PLAIN and IMAP
//            LOGIN/AUTHENTICATE, one way for both: the login name is a
//            [[mailbox]] name (config.find_mailbox) whose argon2id hash is in
//            the CredentialStore. The hash is verified on the worker pool
//            (slow on purpose, never on the event loop), an unknown name
//            costs the same verification, the password is wiped afterwards,
//            and a failure is logged and answered only after
//            config.auth.failure_delay (a timer: the event loop stays free).
// Standards: RFC 1939 §7 / RFC 3501 §6.2.3 (a failed login says nothing
//            about which part was wrong), RFC 4616 (PLAIN's authcid).
// Trust:     the name and password come from an unauthenticated peer; the
//            password is never logged, the name only through
//            base::log_printable().
// Concurrency: a coroutine on the session's executor; resumes there.
// Errors:    a refusal is nullptr, never an exception.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "net/asio.hpp"
#include "sasl/credential_store.hpp"

namespace spdlog {
class logger;
}

namespace hikyaku::login {

struct LoginAttempt {
  std::string user;
  std::string password;  // wiped by check_mailbox_login
  std::string_view mechanism;  // for the log: "USER", "PLAIN", "LOGIN", ...
  bool refused = false;        // the protocol already refused it (e.g. no TLS): no check, same delay
};

struct LoginContext {
  const config::Config& config;
  const sasl::CredentialStore& credentials;
  boost::asio::thread_pool& blocking;  // the blocking pool (filesystem, argon2id)
  spdlog::logger& log;
  std::string_view session_id;  // log prefix
  bool tls = false;             // for the log
};

// The mailbox the attempt logs in to, or nullptr (after the failure delay).
net::awaitable<const config::Mailbox*> check_mailbox_login(const LoginContext& context, LoginAttempt attempt);

}  // namespace hikyaku::login
