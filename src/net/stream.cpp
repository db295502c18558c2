#include "net/stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace hikyaku::net {

using namespace boost::asio::experimental::awaitable_operators;
using asio::as_tuple;

Stream::Stream(tcp::socket socket, std::shared_ptr<ssl::context> tls, size_t max_line)
    : socket_(std::move(socket)), tls_ctx_(std::move(tls)), buffer_(max_line) {
  error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) {
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    remote_ip_ = addr.to_string();
    remote_port_ = remote.port();
  }
  auto local = socket_.local_endpoint(ec);
  if (!ec) local_ip_ = local.address().to_string();
  socket_.set_option(tcp::no_delay(true), ec);
  // Reads try first and wait for readiness only when nothing is there
  // (read_now); Asio's asynchronous writes work on a non-blocking socket
  // as before. The TLS channel (an SSL object) is built only when TLS
  // starts: most connections never use it.
  socket_.non_blocking(true, ec);
}

tcp::socket& Stream::socket() { return socket_; }

void Stream::acknowledge_now() {
#ifdef TCP_QUICKACK
  // A pending delayed ACK goes out at once (tcp(7)); the kernel may enter
  // its delayed mode again later, so this is asked for each time.
  const int one = 1;
  (void)::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
}

Stream::~Stream() = default;

TlsChannel::Attempt Stream::read_now(std::string& out, std::size_t max) {
  // On the thread's stack, not in a coroutine frame: a connection waiting
  // for input holds no buffer (issue 15 item 4).
  char buf[65536];
  const auto size = std::min(max, sizeof buf);
  if (tls_active_) {
    auto attempt = tls_->try_read(asio::buffer(buf, size));
    out.append(buf, attempt.bytes);
    return attempt;
  }
  TlsChannel::Attempt attempt;
  attempt.bytes = socket_.read_some(asio::buffer(buf, size), attempt.error);
  if (attempt.error == asio::error::would_block || attempt.error == asio::error::try_again) {
    attempt.error.clear();
    attempt.need = TlsChannel::Need::readable;
  }
  out.append(buf, attempt.bytes);
  return attempt;
}

awaitable<bool> Stream::read_into(std::string& out, std::size_t max, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto attempt = read_now(out, max);
    if (attempt.need == TlsChannel::Need::nothing) {
      if (attempt.error) {
        last_error_ = attempt.error;
        co_return false;
      }
      co_return true;
    }
    // TLS may need to write (a TLS 1.2 renegotiation is refused, but a
    // KeyUpdate is answered) before it can read.
    const bool ready = co_await wait(attempt.need, deadline);
    if (!ready) co_return false;
  }
}

TlsChannel::Attempt Stream::try_read(std::string& out) {
  if (!buffer_.empty()) {
    const std::string taken = buffer_.take();
    out += taken;
    return {taken.size(), TlsChannel::Need::nothing, {}};
  }
  auto attempt = read_now(out, 65536);
  if (attempt.error) last_error_ = attempt.error;
  return attempt;
}

awaitable<bool> Stream::wait(TlsChannel::Need need, std::chrono::steady_clock::time_point deadline) {
  const auto what = need == TlsChannel::Need::writable ? tcp::socket::wait_write : tcp::socket::wait_read;
  const error_code ec = co_await wait_ready(socket_, what, deadline);
  if (ec) {
    if (ec == asio::error::timed_out) timed_out_ = true;
    last_error_ = ec;
    co_return false;
  }
  co_return true;
}

awaitable<Stream::Line> Stream::read_line_until(std::chrono::steady_clock::time_point deadline) {
  Line line;
  std::string chunk;
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
    chunk.clear();
    const bool ok = co_await read_into(chunk, 16384, deadline);
    if (!ok) {
      line.status = timed_out_ ? ReadStatus::timeout
                   : (last_error_ == asio::error::eof || last_error_ == ssl::error::stream_truncated)
                       ? ReadStatus::closed
                       : ReadStatus::error;
      co_return line;
    }
    buffer_.append(chunk);
  }
}

awaitable<bool> Stream::read_some(std::string& out, std::chrono::steady_clock::time_point deadline) {
  if (!buffer_.empty()) {
    out += buffer_.take();
    co_return true;
  }
  const bool ok = co_await read_into(out, 65536, deadline);
  co_return ok;
}

awaitable<bool> Stream::write(std::string_view data, std::chrono::steady_clock::duration timeout) {
  constexpr size_t kBlock = 64 * 1024;
  if (tls_active_) {
    for (size_t done = 0; done < data.size();) {
      const auto block = asio::buffer(data.substr(done, kBlock));
      error_code ec;
      const std::size_t n = co_await tls_->write(block, std::chrono::steady_clock::now() + timeout, ec);
      if (ec) {
        if (ec == asio::error::timed_out) timed_out_ = true;
        last_error_ = ec;
        co_return false;
      }
      done += n;
    }
    co_return true;
  }
  asio::steady_timer timer(socket_.get_executor());
  for (size_t done = 0; done < data.size();) {
    const auto block = asio::buffer(data.substr(done, kBlock));
    timer.expires_after(timeout);
    auto result = co_await (asio::async_write(socket_, block, as_tuple(use_awaitable)) ||
                            timer.async_wait(as_tuple(use_awaitable)));
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
  if (!tls_available() || tls_) co_return false;
  buffer_.clear();  // RFC 3207 §4.2 / RFC 2595 §4: discard pre-TLS pipelined input
  tls_.emplace(socket_, *tls_ctx_, TlsChannel::Role::server);
  // (A channel whose SSL_new failed answers asio::error::no_memory.)
  const error_code ec = co_await tls_->handshake(std::chrono::steady_clock::now() + timeout);
  co_return handshake_done(ec);
}

awaitable<bool> Stream::start_tls_client(const std::string& server_name, std::chrono::steady_clock::duration timeout,
                                         bool verify) {
  if (!tls_available() || tls_) co_return false;
  error_code not_ip;
  (void)asio::ip::make_address(server_name, not_ip);
  const bool named = !server_name.empty() && not_ip;
  tls_.emplace(socket_, *tls_ctx_, TlsChannel::Role::client);
  SSL* handle = tls_->native_handle();
  if (handle == nullptr) {
    last_error_ = asio::error::no_memory;
    co_return false;
  }
  if (named) SSL_set_tlsext_host_name(handle, server_name.c_str());  // SNI
  if (verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    const bool pinned = named ? X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), server_name.size()) == 1
                              : X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1;
    if (!pinned) {
      ERR_clear_error();
      last_error_ = asio::error::invalid_argument;
      co_return false;
    }
    SSL_set_verify(handle, SSL_VERIFY_PEER, nullptr);
  }
  const error_code ec = co_await tls_->handshake(std::chrono::steady_clock::now() + timeout);
  co_return handshake_done(ec);
}

bool Stream::handshake_done(const error_code& ec) {
  if (ec) {
    if (ec == asio::error::timed_out) timed_out_ = true;
    last_error_ = ec;
    return false;
  }
  tls_active_ = true;
  return true;
}

std::string Stream::tls_description() const {
  if (!tls_active_) return "";
  SSL* handle = tls_->native_handle();
  std::string out = SSL_get_version(handle);
  if (const char* cipher = SSL_get_cipher_name(handle)) out += std::string(" ") + cipher;
  return out;
}

std::optional<Stream::TlsParameters> Stream::tls_parameters() const {
  if (!tls_active_) return std::nullopt;
  SSL* handle = tls_->native_handle();
  TlsParameters out;
  out.version = SSL_get_version(handle);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(handle)) {
    out.cipher = SSL_CIPHER_get_name(cipher);
    out.secret_bits = SSL_CIPHER_get_bits(cipher, &out.algorithm_bits);
  }
  return out;
}

void Stream::close() {
  if (tls_active_) tls_->shutdown();  // best effort: our close_notify, no wait
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace hikyaku::net
