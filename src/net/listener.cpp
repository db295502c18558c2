#include "net/listener.hpp"

#include "base/log.hpp"

namespace hikyaku::net {

ConnectionLimiter::Lease::~Lease() {
  if (owner_ == nullptr) return;
  --owner_->open_;
  auto it = owner_->by_ip_.find(ip_);
  if (it != owner_->by_ip_.end() && --it->second == 0) owner_->by_ip_.erase(it);
}

std::unique_ptr<ConnectionLimiter::Lease> ConnectionLimiter::try_acquire(const std::string& ip) {
  if (open_ >= total_) return nullptr;
  auto& count = by_ip_[ip];
  if (count >= per_ip_) {
    if (count == 0) by_ip_.erase(ip);
    return nullptr;
  }
  ++count;
  ++open_;
  return std::make_unique<Lease>(this, ip);
}

base::Result<std::shared_ptr<tcp::acceptor>> bind(asio::io_context& io, const std::string& host,
                                                 uint16_t port, bool listen_now) {
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return base::make_error("bad listen address " + host + ": " + ec.message());
  tcp::endpoint endpoint(address, port);
  auto acceptor = std::make_shared<tcp::acceptor>(io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec && listen_now) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return base::make_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  return acceptor;
}

base::Status listen(tcp::acceptor& acceptor, const std::string& where) {
  error_code ec;
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return base::make_error("cannot listen on " + where + ": " + ec.message());
  return {};
}

namespace {

awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor, std::string name, base::AccessList access,
                            std::shared_ptr<ConnectionLimiter> limiter, SessionHandler handler) {
  auto log = base::logger("net");
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      // EMFILE and friends: log, back off briefly, keep serving.
      log->warn("{}: accept failed: {}", name, ec.message());
      asio::steady_timer backoff(acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    error_code peer_ec;
    auto peer = socket.remote_endpoint(peer_ec);
    std::string ip = peer_ec ? std::string("?") : peer.address().to_string();
    // [access] first: a denied client takes no connection slot.
    Admission admission;
    if (!access.permits(ip)) {
      admission.refusal = Refusal::access;
      log->info("{}: access denied for [{}]", name, ip);
    } else {
      admission.lease = limiter->try_acquire(ip);
      if (!admission.lease) admission.refusal = Refusal::limit;
    }
    asio::co_spawn(acceptor->get_executor(), handler(std::move(socket), std::move(admission)),
                   [log, name, ip](const std::exception_ptr& e) {
                     if (!e) return;
                     // STYLE R7: the single exception boundary of a session.
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       log->error("{}: BUG: session from {} threw: {}", name, ip, ex.what());
                     } catch (...) {
                       log->error("{}: BUG: session from {} threw a non-exception", name, ip);
                     }
                   });
  }
}

}  // namespace

void start_accepting(std::shared_ptr<tcp::acceptor> acceptor, std::string name, base::AccessList access,
                     std::shared_ptr<ConnectionLimiter> limiter, SessionHandler handler) {
  auto ex = acceptor->get_executor();
  asio::co_spawn(ex,
                 accept_loop(std::move(acceptor), std::move(name), std::move(access), std::move(limiter),
                             std::move(handler)),
                 asio::detached);
}

}  // namespace hikyaku::net
