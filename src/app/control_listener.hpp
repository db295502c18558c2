// Purpose:   The server side of the control channel (admin/control.hpp):
//            DATA_DIR/control, a Unix stream socket with mode 0600 in the
//            owner-only data directory. Each connection sends one request
//            line and gets one reply line; the handler runs on the event
//            loop and must not block (Scheduler::flush only takes a lock).
// Trust:     only the server's user (and root) can connect; the line is
//            still parsed as untrusted input (bounded, one line, 10 s).
// Errors:    open() fails when the path exists and is not a socket, or when
//            bind fails (too long a path: 107 octets; start-up logs it and
//            serves mail without the channel); a malformed request gets an
//            "error ..." reply; a slow or silent client is closed.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "admin/control.hpp"
#include "base/result.hpp"
#include "net/asio.hpp"

namespace hikyaku::app {

class ControlListener {
 public:
  using Handler = std::function<admin::ControlReply(const admin::ControlRequest&)>;

  // Binds `path` (a stale socket from a crash is replaced) and accepts.
  static base::Result<std::unique_ptr<ControlListener>> open(net::asio::io_context& io, std::filesystem::path path,
                                                              Handler handler);
  // Stops accepting and removes the socket.
  ~ControlListener();
  ControlListener(const ControlListener&) = delete;
  ControlListener& operator=(const ControlListener&) = delete;

 private:
  using Protocol = net::asio::local::stream_protocol;
  ControlListener(net::asio::io_context& io, std::filesystem::path path, Handler handler);
  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(Protocol::socket socket);

  std::filesystem::path path_;
  Handler handler_;
  Protocol::acceptor acceptor_;
};

}  // namespace hikyaku::app
