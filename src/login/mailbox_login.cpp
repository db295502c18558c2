#include "login/mailbox_login.hpp"

#include <spdlog/spdlog.h>

#include "base/strings.hpp"

namespace hikyaku::login {

namespace asio = boost::asio;

net::awaitable<const config::Mailbox*> check_mailbox_login(const LoginContext& context, LoginAttempt attempt) {
  const std::string& user = attempt.user;
  const config::Mailbox* mailbox = context.config.find_mailbox(user);

  bool verified = false;
  if (!attempt.refused) {
    const std::string& name = mailbox != nullptr ? mailbox->name : user;
    auto check = [&]() -> net::awaitable<bool> { co_return context.credentials.verify(name, attempt.password); };
    verified = co_await asio::co_spawn(context.blocking, check, net::use_awaitable);
    verified = verified && mailbox != nullptr;
  }
  base::wipe(attempt.password);
  if (verified) co_return mailbox;

  context.log.warn("{} login failed: user={} mechanism={} tls={}", context.session_id, base::log_printable(user),
                   attempt.mechanism, context.tls ? "yes" : "no");
  // Slows down password guessing without blocking anyone else.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(context.config.auth.failure_delay);
  co_await timer.async_wait(asio::as_tuple(net::use_awaitable));
  co_return nullptr;
}

}  // namespace hikyaku::login
