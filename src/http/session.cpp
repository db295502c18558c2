#include "http/session.hpp"

#include "base/log.hpp"
#include "base/strings.hpp"
#include "net/stream.hpp"

namespace hikyaku::http {

net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, const HttpContext& ctx) {
  net::Stream stream(std::move(socket), nullptr, ctx.limits.head);
  if (admission.refusal == net::Refusal::access) {
    stream.close();
    co_return;
  }
  protocol::Response response;
  bool head_only = false;
  if (!admission.lease) {
    response = protocol::error_response(503);
  } else {
    // Read until the head is complete, malformed or too large, all of it
    // by one deadline.
    const auto deadline = std::chrono::steady_clock::now() + ctx.timeout;
    std::string received;
    protocol::ParseResult parsed;
    for (;;) {
      parsed = protocol::parse_request(received, ctx.limits);
      if (parsed.kind != protocol::ParseResult::Kind::incomplete) break;
      if (!co_await stream.read_some(received, deadline)) break;
    }
    if (parsed.kind == protocol::ParseResult::Kind::complete) {
      response = protocol::respond(parsed.request, ctx.site);
      head_only = parsed.request.method == "HEAD";
    } else if (parsed.kind == protocol::ParseResult::Kind::error) {
      response = protocol::error_response(parsed.status);
    } else if (stream.timed_out()) {
      response = protocol::error_response(408);
    } else {
      stream.close();  // the peer went away before a whole request
      co_return;
    }
    base::logger("httpd")->debug("{}:{} {} {} {}", stream.remote_ip(), stream.remote_port(),
                                 parsed.kind == protocol::ParseResult::Kind::complete
                                     ? base::log_printable(parsed.request.method)
                                     : std::string("-"),
                                 parsed.kind == protocol::ParseResult::Kind::complete
                                     ? base::log_printable(parsed.request.path)
                                     : std::string("-"),
                                 response.status);
  }
  const std::string bytes = protocol::render(response, head_only);
  if (co_await stream.write(bytes, ctx.timeout)) {
    // A lingering close: unread bytes (a POST's body) at close() would make
    // the kernel reset the connection, and the peer could lose the response
    // it has not read yet. Send FIN, then drain briefly.
    net::error_code ec;
    stream.socket().shutdown(net::tcp::socket::shutdown_send, ec);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    std::string discard;
    while (!ec && discard.size() < 65536 && co_await stream.read_some(discard, deadline)) {
    }
  }
  stream.close();
}

}  // namespace hikyaku::http
