// Purpose:   The status listener's session ([listen] http): read one
//            request head within a deadline, answer it with the sans-I/O
//            protocol::respond() (/, /metrics, /healthz) and close — one
//            request per connection (Connection: close), request bodies never
//            read. A scraper or a browser needs nothing more.
// Standards: RFC 9112 (HTTP/1.1 messages); see protocol/request.hpp.
// Trust:     the peer is untrusted but, by configuration, local: [listen]
//            http accepts loopback addresses only (config.cpp), since the
//            pages have no authentication. The head is bounded (431) and
//            must arrive within `timeout` (408), so a slow peer cannot hold
//            its connection slot.
// Concurrency: one coroutine per connection on the (single-threaded)
//            io_context; the Site callbacks run there too.
// Errors:    run_session never throws on I/O errors (they end the session);
//            anything thrown is a bug caught by net::start_accepting.
#pragma once

#include <chrono>

#include "http/protocol/request.hpp"
#include "net/asio.hpp"
#include "net/listener.hpp"

namespace hikyaku::http {

struct HttpContext {
  protocol::Site site;
  protocol::Limits limits;
  std::chrono::seconds timeout{10};  // the whole request head, and the response
};

// Serve one connection. No lease in `admission`: a connection limit (503)
// or [access] (closed at once).
net::awaitable<void> run_session(net::tcp::socket socket, net::Admission admission, const HttpContext& ctx);

}  // namespace hikyaku::http
