#include "net/stream.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace hikyaku::net {

using namespace boost::asio::experimental::awaitable_operators;
using asio::as_tuple;

Stream::Stream(tcp::socket socket, std::shared_ptr<ssl::context> tls, size_t max_line)
    : tls_ctx_(std::move(tls)), buffer_(max_line) {
  error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (!ec) {
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    remote_ip_ = addr.to_string();
    remote_port_ = remote.port();
  }
  auto local = socket.local_endpoint(ec);
  if (!ec) local_ip_ = local.address().to_string();
  socket.set_option(tcp::no_delay(true), ec);
  // The TLS stream (an SSL object) is built only when TLS starts: most
  // connections never use it, and its construction is not free.
  socket_ = std::move(socket);
}

tcp::socket& Stream::socket() { return ssl_ ? ssl_->next_layer() : *socket_; }

Stream::~Stream() = default;

awaitable<std::size_t> Stream::read_raw(asio::mutable_buffer buf, std::chrono::steady_clock::time_point deadline,
                                        error_code& ec) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  std::variant<std::tuple<error_code, std::size_t>, std::tuple<error_code>> result;
  if (tls_active_) {
    result = co_await (ssl_->async_read_some(buf, as_tuple(use_awaitable)) ||
                       timer.async_wait(as_tuple(use_awaitable)));
  } else {
    result = co_await (socket().async_read_some(buf, as_tuple(use_awaitable)) ||
                       timer.async_wait(as_tuple(use_awaitable)));
  }
  if (result.index() == 1) {
    timed_out_ = true;
    ec = asio::error::timed_out;
    last_error_ = ec;
    co_return 0;
  }
  auto [e, n] = std::get<0>(result);
  ec = e;
  if (ec) last_error_ = ec;
  co_return n;
}

awaitable<Stream::Line> Stream::read_line_until(std::chrono::steady_clock::time_point deadline) {
  Line line;
  char buf[16384];
  for (;;) {
    auto st = buffer_.next(line.text, line.bare_lf);
    if (st == LineBuffer::Status::line) {
      line.status = ReadStatus::line;
      co_return line;
    }
    if (st == LineBuffer::Status::too_long) {
      line.status = ReadStatus::too_long;
      co_return line;
    }
    error_code ec;
    std::size_t n = co_await read_raw(asio::buffer(buf), deadline, ec);
    if (ec) {
      line.status = timed_out_ ? ReadStatus::timeout
                   : (ec == asio::error::eof || ec == ssl::error::stream_truncated) ? ReadStatus::closed
                                                                                    : ReadStatus::error;
      co_return line;
    }
    buffer_.append(std::string_view(buf, n));
  }
}

awaitable<bool> Stream::read_some(std::string& out, std::chrono::steady_clock::time_point deadline) {
  if (!buffer_.empty()) {
    out += buffer_.take();
    co_return true;
  }
  char buf[65536];
  error_code ec;
  std::size_t n = co_await read_raw(asio::buffer(buf), deadline, ec);
  if (ec) co_return false;
  out.append(buf, n);
  co_return true;
}

awaitable<bool> Stream::write(std::string_view data, std::chrono::steady_clock::duration timeout) {
  constexpr size_t kBlock = 64 * 1024;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (size_t done = 0; done < data.size();) {
    const auto block = asio::buffer(data.substr(done, kBlock));
    timer.expires_after(timeout);
    std::variant<std::tuple<error_code, std::size_t>, std::tuple<error_code>> result;
    if (tls_active_) {
      result = co_await (asio::async_write(*ssl_, block, as_tuple(use_awaitable)) ||
                         timer.async_wait(as_tuple(use_awaitable)));
    } else {
      result = co_await (asio::async_write(socket(), block, as_tuple(use_awaitable)) ||
                         timer.async_wait(as_tuple(use_awaitable)));
    }
    if (result.index() == 1) {
      timed_out_ = true;
      last_error_ = asio::error::timed_out;
      co_return false;
    }
    auto [ec, n] = std::get<0>(result);
    if (ec) {
      last_error_ = ec;
      co_return false;
    }
    done += n;
  }
  co_return true;
}

awaitable<bool> Stream::start_tls(std::chrono::steady_clock::duration timeout) {
  if (!tls_available() || tls_active_) co_return false;
  buffer_.clear();  // RFC 3207 §4.2 / RFC 2595 §4: discard pre-TLS pipelined input
  co_return co_await handshake(ssl::stream_base::server, timeout);
}

awaitable<bool> Stream::start_tls_client(const std::string& server_name, std::chrono::steady_clock::duration timeout,
                                         bool verify) {
  if (!tls_available() || tls_active_) co_return false;
  error_code not_ip;
  (void)asio::ip::make_address(server_name, not_ip);
  const bool named = !server_name.empty() && not_ip;
  ssl_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(*socket_), *tls_ctx_);
  socket_.reset();
  if (named) SSL_set_tlsext_host_name(ssl_->native_handle(), server_name.c_str());  // SNI
  if (verify) {
    SSL* handle = ssl_->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    const bool pinned = named ? X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), server_name.size()) == 1
                              : X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1;
    if (!pinned) {
      last_error_ = asio::error::invalid_argument;
      co_return false;
    }
    SSL_set_verify(handle, SSL_VERIFY_PEER, nullptr);
  }
  co_return co_await handshake(ssl::stream_base::client, timeout);
}

awaitable<bool> Stream::handshake(ssl::stream_base::handshake_type role, std::chrono::steady_clock::duration timeout) {
  if (!ssl_) {
    ssl_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(*socket_), *tls_ctx_);
    socket_.reset();
  }
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(timeout);
  auto result = co_await (ssl_->async_handshake(role, as_tuple(use_awaitable)) ||
                          timer.async_wait(as_tuple(use_awaitable)));
  if (result.index() == 1) {
    timed_out_ = true;
    last_error_ = asio::error::timed_out;
    co_return false;
  }
  auto [ec] = std::get<0>(result);
  if (ec) {
    last_error_ = ec;
    co_return false;
  }
  tls_active_ = true;
  co_return true;
}

std::string Stream::tls_description() const {
  if (!tls_active_) return "";
  auto* handle = const_cast<ssl::stream<tcp::socket>&>(*ssl_).native_handle();
  std::string out = SSL_get_version(handle);
  if (const char* cipher = SSL_get_cipher_name(handle)) out += std::string(" ") + cipher;
  return out;
}

std::optional<Stream::TlsParameters> Stream::tls_parameters() const {
  if (!tls_active_) return std::nullopt;
  auto* handle = const_cast<ssl::stream<tcp::socket>&>(*ssl_).native_handle();
  TlsParameters out;
  out.version = SSL_get_version(handle);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(handle)) {
    out.cipher = SSL_CIPHER_get_name(cipher);
    out.secret_bits = SSL_CIPHER_get_bits(cipher, &out.algorithm_bits);
  }
  return out;
}

void Stream::close() {
  error_code ec;
  socket().shutdown(tcp::socket::shutdown_both, ec);
  socket().close(ec);
}

}  // namespace hikyaku::net
