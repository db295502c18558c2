#include "net/tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace hikyaku::net {

using asio::as_tuple;

awaitable<error_code> wait_ready(tcp::socket& socket, tcp::socket::wait_type what,
                                 std::chrono::steady_clock::time_point deadline) {
  // The deadline cancels the wait through a cancellation slot rather than
  // the `||` operator, whose parallel group of two spawned coroutines every
  // waiting connection would hold (issue 15 item 4). The timer's handler is
  // cancelled, not awaited, and may run after this frame is gone: what it
  // touches is shared. Nobody cancels a Stream operation from outside, so
  // the slot bound here replaces nothing.
  struct Watch {
    asio::cancellation_signal signal;
    bool fired = false;
  };
  auto watch = std::make_shared<Watch>();
  asio::steady_timer timer(socket.get_executor(), deadline);
  timer.async_wait([watch](const error_code& ec) {
    if (ec) return;  // cancelled: the wait ended first
    watch->fired = true;
    watch->signal.emit(asio::cancellation_type::terminal);
  });
  auto [ec] = co_await socket.async_wait(
      what, asio::bind_cancellation_slot(watch->signal.slot(), as_tuple(use_awaitable)));
  timer.cancel();
  // Ready just as the deadline passed counts as ready.
  if (ec == asio::error::operation_aborted && watch->fired) co_return asio::error::timed_out;
  co_return ec;
}

// The channel's BIO: OpenSSL reads and writes the socket through Asio's
// synchronous calls on the non-blocking socket. Not OpenSSL's socket BIO
// (SSL_set_fd): that one writes with write(2), which raises SIGPIPE when the
// peer has gone (Asio sends with MSG_NOSIGNAL; only `serve` ignores
// SIGPIPE, not the tests nor other commands), and it would keep using the
// descriptor number after Stream::close(), when the kernel may already have
// given it to another connection; Asio's calls fail on a closed socket.
struct ChannelBio {
  static TlsChannel& channel(BIO* bio) { return *static_cast<TlsChannel*>(BIO_get_data(bio)); }

  static int read(BIO* bio, char* data, int size) {
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    error_code ec;
    const std::size_t n = channel(bio).socket_.read_some(asio::buffer(data, static_cast<std::size_t>(size)), ec);
    if (!ec) return static_cast<int>(n);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      BIO_set_retry_read(bio);
      return -1;
    }
    if (ec == asio::error::eof) {
      // As OpenSSL's socket BIO: BIO_eof() then tells OpenSSL the peer
      // closed (SSL_R_UNEXPECTED_EOF_WHILE_READING without close_notify).
      BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
      return 0;
    }
    channel(bio).transport_error_ = ec;
    return -1;
  }

  static int write(BIO* bio, const char* data, int size) {
    BIO_clear_retry_flags(bio);
    if (size <= 0) return 0;
    error_code ec;
    const std::size_t n = channel(bio).socket_.write_some(asio::buffer(data, static_cast<std::size_t>(size)), ec);
    if (!ec) return static_cast<int>(n);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      BIO_set_retry_write(bio);
      return -1;
    }
    channel(bio).transport_error_ = ec;
    return -1;
  }

  static long ctrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;  // nothing is buffered here
      case BIO_CTRL_EOF:
        return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
      default:
        return 0;
    }
  }

  // Made once and never changed afterwards (so not mutable state); it lives
  // as long as the process.
  static const BIO_METHOD* method() {
    static const BIO_METHOD* const made = [] {
      const int index = BIO_get_new_index();
      BIO_METHOD* m = BIO_meth_new((index > 0 ? index : 0) | BIO_TYPE_SOURCE_SINK, "hikyaku asio socket");
      if (m == nullptr) return static_cast<const BIO_METHOD*>(nullptr);
      BIO_meth_set_read(m, &ChannelBio::read);
      BIO_meth_set_write(m, &ChannelBio::write);
      BIO_meth_set_ctrl(m, &ChannelBio::ctrl);
      return static_cast<const BIO_METHOD*>(m);
    }();
    return made;
  }
};

TlsChannel::TlsChannel(tcp::socket& socket, ssl::context& context, Role role) : socket_(socket) {
  error_code ec;
  socket_.non_blocking(true, ec);
  ERR_clear_error();
  const BIO_METHOD* method = ChannelBio::method();
  SSL* ssl = method != nullptr ? SSL_new(context.native_handle()) : nullptr;
  BIO* bio = ssl != nullptr ? BIO_new(method) : nullptr;
  if (ec || bio == nullptr) {  // (a socket already closed cannot be made non-blocking)
    if (bio != nullptr) BIO_free(bio);
    if (ssl != nullptr) SSL_free(ssl);
    ERR_clear_error();
    return;
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO (one reference for both directions)
  // Partial writes and a moving buffer: write() retries from where the last
  // record ended. RELEASE_BUFFERS: an idle connection keeps no record
  // buffers (about 2 × 17 KiB otherwise).
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (role == Role::server) SSL_set_accept_state(ssl);
  else SSL_set_connect_state(ssl);
  ssl_ = ssl;
}

TlsChannel::~TlsChannel() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

// What a failed (ret <= 0) SSL call means; the error queue is left empty.
TlsChannel::Attempt TlsChannel::outcome(int ret, int saved_errno) {
  Attempt a;
  const int kind = SSL_get_error(ssl_, ret);
  switch (kind) {
    case SSL_ERROR_WANT_READ:
      a.need = Need::readable;
      break;
    case SSL_ERROR_WANT_WRITE:
      a.need = Need::writable;
      break;
    case SSL_ERROR_ZERO_RETURN:
      a.error = asio::error::eof;  // the peer's close_notify (RFC 8446 §6.1)
      break;
    case SSL_ERROR_SYSCALL:
      // The transport failed: the socket's own error, or the peer closed
      // without close_notify (a truncation attack or a careless client).
      failed_ = true;
      if (transport_error_) a.error = transport_error_;
      else if (const unsigned long e = ERR_peek_error(); e != 0)
        a.error = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      else if (saved_errno != 0) a.error = error_code(saved_errno, asio::error::get_system_category());
      else a.error = ssl::error::stream_truncated;
      break;
    case SSL_ERROR_SSL:
    default: {
      failed_ = true;
      const unsigned long e = ERR_peek_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        a.error = ssl::error::stream_truncated;
      else if (transport_error_) a.error = transport_error_;
      else if (e != 0) a.error = error_code(static_cast<int>(e), asio::error::get_ssl_category());
      else a.error = ssl::error::unspecified_system_error;
      break;
    }
  }
  ERR_clear_error();
  return a;
}

template <class Call>
TlsChannel::Attempt TlsChannel::attempt(Call call) {
  if (ssl_ == nullptr) return {0, Need::nothing, asio::error::no_memory};  // SSL_new failed
  ERR_clear_error();
  transport_error_.clear();
  errno = 0;
  const int ret = call();
  const int saved_errno = errno;
  if (ret > 0) return {static_cast<std::size_t>(ret), Need::nothing, {}};
  return outcome(ret, saved_errno);
}

TlsChannel::Attempt TlsChannel::try_read(asio::mutable_buffer buffer) {
  if (ssl_ != nullptr && buffer.size() == 0) return {};
  const int size = static_cast<int>(std::min<std::size_t>(buffer.size(), INT_MAX));
  return attempt([&] { return SSL_read(ssl_, buffer.data(), size); });
}

TlsChannel::Attempt TlsChannel::try_write(asio::const_buffer data) {
  if (ssl_ != nullptr && data.size() == 0) return {};
  const int size = static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX));
  return attempt([&] { return SSL_write(ssl_, data.data(), size); });
}

TlsChannel::Attempt TlsChannel::try_handshake() {
  Attempt a = attempt([&] { return SSL_do_handshake(ssl_); });
  a.bytes = 0;  // 1 is success, not a count: a handshake moves no application data
  return a;
}

awaitable<error_code> TlsChannel::wait(Need need, std::chrono::steady_clock::time_point deadline) {
  error_code ec = co_await wait_ready(
      socket_, need == Need::readable ? tcp::socket::wait_read : tcp::socket::wait_write, deadline);
  co_return ec;
}

awaitable<error_code> TlsChannel::handshake(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const Attempt a = try_handshake();
    if (a.need == Need::nothing) co_return a.error;
    error_code ec = co_await wait(a.need, deadline);
    if (ec) co_return ec;
  }
}

awaitable<std::size_t> TlsChannel::read_some(asio::mutable_buffer buffer,
                                             std::chrono::steady_clock::time_point deadline, error_code& ec) {
  for (;;) {
    const Attempt a = try_read(buffer);
    if (a.need == Need::nothing) {
      ec = a.error;
      co_return a.bytes;
    }
    ec = co_await wait(a.need, deadline);
    if (ec) co_return 0;
  }
}

awaitable<std::size_t> TlsChannel::write(asio::const_buffer data, std::chrono::steady_clock::time_point deadline,
                                         error_code& ec) {
  // With SSL_MODE_ENABLE_PARTIAL_WRITE each call takes at least one record;
  // after WANT_WRITE the same remaining bytes are offered again, as OpenSSL
  // requires.
  std::size_t done = 0;
  ec.clear();
  while (done < data.size()) {
    const Attempt a = try_write(data + done);
    if (a.error) {
      ec = a.error;
      co_return done;
    }
    if (a.need == Need::nothing) {
      done += a.bytes;
      continue;
    }
    ec = co_await wait(a.need, deadline);
    if (ec) co_return done;
  }
  co_return done;
}

void TlsChannel::shutdown() {
  // Not after a fatal error (OpenSSL forbids it), not before the handshake
  // completed, not on a closed socket.
  if (ssl_ == nullptr || failed_ || !socket_.is_open() || SSL_is_init_finished(ssl_) != 1) return;
  ERR_clear_error();
  transport_error_.clear();
  (void)SSL_shutdown(ssl_);  // 0: our close_notify went (or is queued); we do not wait for the peer's
  ERR_clear_error();
}

}  // namespace hikyaku::net
