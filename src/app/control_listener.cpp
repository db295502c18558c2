#include "app/control_listener.hpp"

#include <sys/stat.h>

#include <chrono>
#include <string>

#include <boost/asio/experimental/awaitable_operators.hpp>

namespace hikyaku::app {

namespace asio = net::asio;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

ControlListener::ControlListener(asio::io_context& io, std::filesystem::path path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)), acceptor_(io) {}

base::Result<std::unique_ptr<ControlListener>> ControlListener::open(asio::io_context& io, std::filesystem::path path,
                                                                       Handler handler) {
  std::error_code ec;
  const auto status = std::filesystem::symlink_status(path, ec);
  if (!ec && std::filesystem::exists(status)) {
    if (!std::filesystem::is_socket(status))
      return base::make_error(path.string() + " exists and is not a socket; move it away");
    std::filesystem::remove(path, ec);  // a crashed server's; nobody listens (one server per data_dir: the pid file)
  }
  std::unique_ptr<ControlListener> listener(new ControlListener(io, std::move(path), std::move(handler)));
  net::error_code error;
  listener->acceptor_.open(Protocol(), error);
  const std::filesystem::path& bound = listener->path_;
  if (!error) listener->acceptor_.bind(Protocol::endpoint(bound.string()), error);
  if (!error && ::chmod(bound.c_str(), 0600) != 0) error = net::error_code(errno, boost::system::system_category());
  if (!error) listener->acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) return base::make_error("control socket " + bound.string() + ": " + error.message());
  asio::co_spawn(io, listener->accept_loop(), asio::detached);
  return listener;
}

ControlListener::~ControlListener() {
  net::error_code ignored;
  acceptor_.close(ignored);
  std::error_code gone;
  std::filesystem::remove(path_, gone);
}

net::awaitable<void> ControlListener::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(net::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

net::awaitable<void> ControlListener::serve(Protocol::socket socket) {
  // A client that does not finish its line in time is closed unanswered.
  asio::steady_timer deadline(socket.get_executor(), 10s);
  std::string line;
  auto buffer = asio::dynamic_buffer(line, admin::kMaxControlLine + 2);
  auto read = co_await (asio::async_read_until(socket, buffer, '\n', asio::as_tuple(net::use_awaitable)) ||
                        deadline.async_wait(asio::as_tuple(net::use_awaitable)));
  if (read.index() == 1) co_return;  // the socket closes with the frame
  auto [read_ec, n] = std::get<0>(read);
  admin::ControlReply reply;
  if (read_ec) {
    reply = {false, read_ec == asio::error::not_found ? "request line too long" : "no complete request line"};
  } else {
    auto request = admin::parse_control_request(std::string_view(line).substr(0, n));
    reply = request ? handler_(*request) : admin::ControlReply{false, request.error().message};
  }
  const std::string text = admin::format_control_reply(reply);
  const auto out = asio::buffer(text);
  deadline.expires_after(10s);
  (void)co_await (asio::async_write(socket, out, asio::as_tuple(net::use_awaitable)) ||
                  deadline.async_wait(asio::as_tuple(net::use_awaitable)));
}

}  // namespace hikyaku::app
