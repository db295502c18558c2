#include "login/mailbox_login.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "base/strings.hpp"

namespace hikyaku::login {

namespace asio = boost::asio;

MailboxLogins::Settings MailboxLogins::Settings::from(const config::Config& config) {
  Settings s;
  s.lockout.limit = config.auth.failure_limit;
  s.lockout.window = config.auth.failure_window;
  s.lockout.lockout = config.auth.lockout;
  s.failure_delay = config.auth.failure_delay;
  // One verification per two cores, at least one: the rest stays for mail.
  s.threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  return s;
}

MailboxLogins::MailboxLogins(const base::Live<config::Config>& config, const sasl::CredentialStore& credentials,
                             Settings settings)
    : config_(config),
      credentials_(credentials),
      settings_(settings),
      failures_(settings.lockout),
      pool_(std::max(1u, settings.threads)) {}

MailboxLogins::~MailboxLogins() { stop(); }

void MailboxLogins::stop() {
  // The verifications still queued (up to max_waiting, ≈0.1 s of CPU each)
  // are skipped: no session waits for their answers any more.
  stopping_ = true;
  pool_.join();
}

net::awaitable<void> MailboxLogins::delay() {
  // Slows down password guessing without blocking anyone else.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(settings_.failure_delay);
  co_await timer.async_wait(asio::as_tuple(net::use_awaitable));
}

// Every refusal: counted by protocol, answered after failure_delay.
net::awaitable<LoginResult> MailboxLogins::refuse(const LoginSession& session, bool busy) {
  if (settings_.metrics != nullptr) settings_.metrics->auth_failure(session.protocol);
  co_await delay();
  co_return LoginResult{std::nullopt, busy};
}

uint64_t MailboxLogins::quota_of(std::string_view name) const {
  const auto config = config_.get();
  const config::Mailbox* m = config->find_mailbox(name);
  return m == nullptr ? 0 : m->quota;
}

net::awaitable<LoginResult> MailboxLogins::check(const LoginSession& session, LoginAttempt attempt) {
  const std::string user = base::log_printable(attempt.user);
  const auto now = FailureTracker::Clock::now();
  if (failures_.locked_until(session.client_ip, now)) {
    base::wipe(attempt.password);
    session.log.warn("{} login refused: user={} mechanism={}: [{}] is locked out after too many failed logins",
                     session.session_id, user, attempt.mechanism, session.client_ip);
    co_return co_await refuse(session);
  }
  if (waiting_.load() >= settings_.max_waiting) {
    base::wipe(attempt.password);
    session.log.warn("{} login refused: user={} mechanism={}: {} logins already wait for verification",
                     session.session_id, user, attempt.mechanism, waiting_.load());
    co_return co_await refuse(session, /*busy=*/true);
  }

  const auto config = config_.get();  // held across the verification
  const config::Mailbox* mailbox = config->find_mailbox(attempt.user);
  bool verified = false;
  if (!attempt.refused) {
    const std::string& name = mailbox != nullptr ? mailbox->name : attempt.user;
    ++waiting_;
    auto verify = [&]() -> net::awaitable<bool> {
      // Below mail's priority (Linux: per thread): a storm of guesses
      // never delays an SMTP reply.
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
      if (stopping_) co_return false;  // shutting down: nobody reads the answer
      co_return credentials_.verify(name, attempt.password);
    };
    verified = co_await asio::co_spawn(pool_, verify, net::use_awaitable);
    --waiting_;
    verified = verified && mailbox != nullptr;
  }
  base::wipe(attempt.password);
  if (verified) co_return LoginResult{mailbox->name};

  session.log.warn("{} login failed: user={} mechanism={} tls={}", session.session_id, user, attempt.mechanism,
                   session.tls ? "yes" : "no");
  if (failures_.failed(session.client_ip, FailureTracker::Clock::now()))
    session.log.warn("{} [{}] locked out for {} s after {} failed logins within {} s", session.session_id,
                     session.client_ip, settings_.lockout.lockout.count(), settings_.lockout.limit,
                     settings_.lockout.window.count());
  co_return co_await refuse(session);
}

}  // namespace hikyaku::login
