// Purpose:   TLS on a connected TCP socket, driven directly: one OpenSSL SSL
//            object per connection, reading and writing the socket through a
//            small BIO of ours, with Asio's readiness waits (async_wait)
//            raced against a deadline. It replaces Asio's ssl::stream inside
//            net::Stream because that one costs about 70 KiB per connection
//            even when idle (its two 17 KiB buffers, its BIO pair's two more,
//            issue 15 item 4); here an idle connection keeps only OpenSSL's
//            session state: SSL_MODE_RELEASE_BUFFERS frees the record buffers
//            whenever they are empty. Each operation is tried first and waits
//            only on SSL_ERROR_WANT_READ / WANT_WRITE.
// Standards: RFC 8446 / RFC 5246 through OpenSSL; RFC 8446 §6.1 close_notify
//            (sent best-effort by shutdown(); a peer's is reported as eof,
//            its absence as ssl::error::stream_truncated, as Asio does).
// Trust:     carries untrusted bytes; the trust decisions (verification,
//            server name, certificates) belong to the SSL_CTX and to the
//            caller (net::Stream::start_tls_client).
// Concurrency: one channel belongs to one session on one executor (a single
//            thread or a strand). One read and one write may be in progress
//            at once (IMAP IDLE reads while it writes updates), as OpenSSL
//            allows on one thread; never two reads or two writes.
// Errors:    error_code values, never exceptions: asio::error::eof for a
//            close_notify, ssl::error::stream_truncated for a TCP close
//            without one, asio::error::timed_out for a deadline, the
//            socket's error for a reset, OpenSSL's (ssl category, its reason
//            as the message) for a protocol or verification failure. The
//            thread's OpenSSL error queue is cleared before each call and
//            emptied after a failure, so one connection's errors never show
//            up in another's.
#pragma once

#include <chrono>
#include <cstddef>

#include "net/asio.hpp"

namespace hikyaku::net {

// Wait until `socket` is ready for `what`, or until `deadline`
// (asio::error::timed_out). The readiness half of every non-blocking
// operation here and in net::Stream.
awaitable<error_code> wait_ready(tcp::socket& socket, tcp::socket::wait_type what,
                                 std::chrono::steady_clock::time_point deadline);

class TlsChannel {
 public:
  enum class Role { server, client };
  // A TLS endpoint over `socket` (connected; it must outlive the channel and
  // is switched to non-blocking mode) with the settings of `context`.
  // SSL_new can fail (memory): valid() is then false and every operation
  // fails with asio::error::no_memory.
  TlsChannel(tcp::socket& socket, ssl::context& context, Role role);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  bool valid() const { return ssl_ != nullptr; }
  // For per-connection settings before the handshake (SNI, verification)
  // and for reading the negotiated parameters after it.
  SSL* native_handle() const { return ssl_; }

  // The handshake, complete by `deadline`.
  awaitable<error_code> handshake(std::chrono::steady_clock::time_point deadline);
  // At least one byte of application data into `buffer` by `deadline`.
  awaitable<std::size_t> read_some(asio::mutable_buffer buffer, std::chrono::steady_clock::time_point deadline,
                                   error_code& ec);
  // All of `data` by `deadline`; the count written so far on failure.
  awaitable<std::size_t> write(asio::const_buffer data, std::chrono::steady_clock::time_point deadline,
                               error_code& ec);

  // One non-blocking attempt: bytes moved, or the readiness it waits for,
  // or an error. read_some/write/handshake are these plus wait_ready.
  enum class Need { nothing, readable, writable };
  struct Attempt {
    std::size_t bytes = 0;
    Need need = Need::nothing;
    error_code error;
  };
  Attempt try_read(asio::mutable_buffer buffer);
  Attempt try_write(asio::const_buffer data);
  Attempt try_handshake();

  // Best-effort close: one non-blocking SSL_shutdown (our close_notify, if
  // the socket takes it now); never waits for the peer's.
  void shutdown();

 private:
  // One OpenSSL call (SSL_read, SSL_write, SSL_do_handshake) with the
  // thread's error state cleared first; a positive return is bytes moved,
  // anything else goes through outcome().
  template <class Call>
  Attempt attempt(Call call);
  Attempt outcome(int ret, int saved_errno);
  awaitable<error_code> wait(Need need, std::chrono::steady_clock::time_point deadline);
  // The BIO's callbacks reach the socket through these.
  friend struct ChannelBio;
  tcp::socket& socket_;
  SSL* ssl_ = nullptr;
  error_code transport_error_;  // the socket's last error seen by the BIO
  bool failed_ = false;         // a fatal error: no SSL_shutdown (OpenSSL's rule)
};

}  // namespace hikyaku::net
