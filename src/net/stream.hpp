// Purpose:   One connection, either side: a TCP socket that can switch to
//            TLS (STARTTLS/STLS, RFC 3207 / RFC 2595; server or client
//            handshake) or start in TLS (465, 995, 993), with line reading,
//            deadlines and writes. The servers' sessions and the SMTP
//            client share it. Errors are values (STYLE R7): EOF, reset and
//            timeouts come back as statuses, never exceptions. TLS is
//            net/tls_channel.hpp (OpenSSL on the socket, no Asio ssl::stream).
//            Memory while waiting (issue 15 item 4: 10,000 idle IMAPS
//            connections): the socket is non-blocking, and a read first
//            waits for readiness and only then reads into a buffer on the
//            thread's stack, so a waiting connection holds no read buffer.
// Trust:     carries untrusted bytes; lines are bounded by `max_line`.
// Concurrency: one Stream belongs to one session coroutine on one executor.
// Errors:    read_line returns a status; `timed_out()` tells a deadline hit
//            from a peer error.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/asio.hpp"
#include "net/line_buffer.hpp"
#include "net/tls_channel.hpp"

namespace hikyaku::net {

// How long a server waits for a peer, as Postfix's smtpd_per_record_deadline
// (issue 13 item 4): the time runs from when the session starts waiting
// and moves on only with progress — a complete line — so a peer sending a
// byte at a time cannot hold its connection slot past `timeout`.
class ProgressDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  // Start waiting (a no-op while already waiting).
  void start(Clock::duration timeout) {
    if (!at_) at_ = Clock::now() + timeout;
  }
  // Bytes arrived: a complete line (an LF among them) earns a new `timeout`.
  void progress(std::string_view chunk, Clock::duration timeout) {
    if (chunk.find('\n') != std::string_view::npos) at_ = Clock::now() + timeout;
  }
  // A command was taken: the next wait starts afresh.
  void reset() { at_.reset(); }
  Clock::time_point at() const { return at_.value_or(Clock::now()); }

 private:
  std::optional<Clock::time_point> at_;
};

class Stream {
 public:
  // `tls` may be null: TLS is then unavailable on this connection.
  Stream(tcp::socket socket, std::shared_ptr<ssl::context> tls, size_t max_line);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  enum class ReadStatus { line, too_long, closed, timeout, error };
  struct Line {
    ReadStatus status;
    std::string text;      // without the line ending
    bool bare_lf = false;  // the line ended in LF without CR
  };

  // Read one line, all of it by `deadline`: a peer trickling bytes cannot
  // stretch it (a server's command line; a client waiting for a multi-line
  // reply: RFC 5321 §4.5.3.2 bounds the whole reply).
  awaitable<Line> read_line_until(std::chrono::steady_clock::time_point deadline);
  // Read whatever is available (at least one byte) by `deadline`, appending
  // to `out`; returns false on EOF, error or timeout. Buffered bytes come
  // first.
  awaitable<bool> read_some(std::string& out, std::chrono::steady_clock::time_point deadline);
  // Write everything, in blocks of 64 KiB, each within `timeout`: a peer
  // that stops reading cannot hold the session (and its connection slot)
  // forever, and a slow one that keeps reading is not cut off by the size
  // of what it asked for (RFC 5321 §4.5.3.2.5 measures DATA the same way).
  // False on error or timeout (timed_out() tells which).
  awaitable<bool> write(std::string_view data, std::chrono::steady_clock::duration timeout);
  // Server-side TLS handshake. Buffered plaintext is discarded first
  // (RFC 3207 §4.2: no command injection across STARTTLS).
  awaitable<bool> start_tls(std::chrono::steady_clock::duration timeout);
  // Client-side TLS handshake (the SMTP client's STARTTLS). `server_name`
  // goes out as SNI unless it is empty or an IP literal (RFC 6066 §3). The
  // caller checks has_buffered_input() first: bytes that arrived before the
  // handshake must not be read as if they came over TLS. `verify`: the
  // certificate must chain to the context's trust anchors and name
  // `server_name` (a host name, or an IP literal as an IP address SAN;
  // RFC 6125); otherwise the handshake fails.
  awaitable<bool> start_tls_client(const std::string& server_name, std::chrono::steady_clock::duration timeout,
                                   bool verify = false);

  bool tls_available() const { return tls_ctx_ != nullptr; }
  bool tls_active() const { return tls_active_; }
  std::string tls_description() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"
  // The negotiated protocol and cipher, for Received: fields; nullopt
  // without TLS.
  struct TlsParameters {
    std::string version;     // "TLSv1.3"
    std::string cipher;      // "TLS_AES_256_GCM_SHA384"
    int secret_bits = 0;     // effective key bits (SSL_CIPHER_get_bits)
    int algorithm_bits = 0;  // the algorithm's key bits
  };
  std::optional<TlsParameters> tls_parameters() const;
  bool timed_out() const { return timed_out_; }
  // The last transport error (connect, read, write, handshake), for logs.
  const error_code& last_error() const { return last_error_; }
  bool has_buffered_input() const { return !buffer_.empty(); }
  // The non-blocking halves of read_some, for a session that waits for
  // input and for something else at once (IMAP IDLE) with one readiness
  // wait of its own instead of a reading coroutine. try_read appends what
  // is here now (buffered bytes first) to `out` and reports the bytes, or
  // the readiness it needs (TLS may need to write to read), or the error
  // (EOF: asio::error::eof or ssl::error::stream_truncated), which
  // last_error() keeps. wait() waits for that readiness by `deadline`;
  // false on timeout (timed_out()) or error.
  TlsChannel::Attempt try_read(std::string& out);
  awaitable<bool> wait(TlsChannel::Need need, std::chrono::steady_clock::time_point deadline);
  // Acknowledge what has arrived now rather than after the kernel's
  // delayed-ACK timer (Linux TCP_QUICKACK; nothing elsewhere). For a
  // command that is still incomplete: a client with Nagle's algorithm on
  // sends the rest of it (Python's imaplib: an APPEND's final CRLF, written
  // apart from its literal) only once what it sent is acknowledged, and the
  // delayed ACK costs it 40 ms.
  void acknowledge_now();
  const std::string& remote_ip() const { return remote_ip_; }
  uint16_t remote_port() const { return remote_port_; }
  const std::string& local_ip() const { return local_ip_; }
  tcp::socket& socket();
  void close();

 private:
  // Up to `max` bytes from the socket (through TLS once it is on) that are
  // there now, appended to `out`, without waiting.
  TlsChannel::Attempt read_now(std::string& out, std::size_t max);
  // At least one byte from the socket appended to `out` by `deadline`;
  // false (and last_error_, timed_out_) otherwise.
  awaitable<bool> read_into(std::string& out, std::size_t max, std::chrono::steady_clock::time_point deadline);
  // After a handshake: tls_active_, or timed_out_/last_error_; true if it succeeded.
  bool handshake_done(const error_code& ec);
  tcp::socket socket_;                      // non-blocking; outlives tls_
  std::shared_ptr<ssl::context> tls_ctx_;   // null: no TLS offered
  std::optional<TlsChannel> tls_;           // from start_tls() on
  LineBuffer buffer_;
  bool tls_active_ = false;
  bool timed_out_ = false;
  error_code last_error_;
  std::string remote_ip_;
  uint16_t remote_port_ = 0;
  std::string local_ip_;
};

}  // namespace hikyaku::net
