// Purpose:   One client connection: a TCP socket that can switch to TLS
//            (STARTTLS/STLS, RFC 3207 / RFC 2595) or start in TLS (465, 995,
//            993), with line reading, a per-read deadline and writes. Errors
//            are values (STYLE R7): EOF, reset and timeouts come back as
//            error codes, never exceptions.
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

namespace hikyaku::net {

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

  // Read one line, waiting at most `timeout`.
  awaitable<Line> read_line(std::chrono::steady_clock::duration timeout);
  // Read whatever is available (at least one byte), appending to `out`;
  // returns false on EOF, error or timeout. Buffered bytes come first.
  awaitable<bool> read_some(std::string& out, std::chrono::steady_clock::duration timeout);
  // Write everything; false on error.
  awaitable<bool> write(std::string_view data);
  // Server-side TLS handshake. Buffered plaintext is discarded first
  // (RFC 3207 §4.2: no command injection across STARTTLS).
  awaitable<bool> start_tls(std::chrono::steady_clock::duration timeout);

  bool tls_available() const { return tls_ctx_ != nullptr; }
  bool tls_active() const { return tls_active_; }
  std::string tls_description() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"
  bool timed_out() const { return timed_out_; }
  bool has_buffered_input() const { return !buffer_.empty(); }
  const std::string& remote_ip() const { return remote_ip_; }
  uint16_t remote_port() const { return remote_port_; }
  const std::string& local_ip() const { return local_ip_; }
  tcp::socket& socket();
  void close();

 private:
  awaitable<std::size_t> read_raw(asio::mutable_buffer buf, std::chrono::steady_clock::duration timeout,
                                  error_code& ec);
  std::shared_ptr<ssl::context> tls_ctx_;            // null: no TLS offered
  std::optional<tcp::socket> socket_;                // until TLS starts
  std::unique_ptr<ssl::stream<tcp::socket>> ssl_;    // from start_tls() on: owns the socket
  LineBuffer buffer_;
  bool tls_active_ = false;
  bool timed_out_ = false;
  std::string remote_ip_;
  uint16_t remote_port_ = 0;
  std::string local_ip_;
};

}  // namespace hikyaku::net
