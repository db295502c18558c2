// Purpose:   Accept loops for the configured endpoints, with the connection
//            limits of [limits] (total and per client IP), and the one
//            exception boundary per session (STYLE R7): a session that throws
//            is logged as a bug and only that connection dies.
// Trust:     accepts connections from anywhere the endpoint is bound.
// Concurrency: runs on the io_context's executor (single-threaded).
// Errors:    bind() returns a Result so a port conflict fails start-up loudly.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/result.hpp"
#include "net/asio.hpp"

namespace hikyaku::net {

// Counts open connections; a Lease releases its slot when destroyed.
class ConnectionLimiter {
 public:
  ConnectionLimiter(unsigned total, unsigned per_ip) : total_(total), per_ip_(per_ip) {}
  class Lease {
   public:
    Lease(ConnectionLimiter* owner, std::string ip) : owner_(owner), ip_(std::move(ip)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

   private:
    ConnectionLimiter* owner_;
    std::string ip_;
  };
  // nullptr when a limit is reached.
  std::unique_ptr<Lease> try_acquire(const std::string& ip);
  unsigned open() const { return open_; }

 private:
  unsigned total_;
  unsigned per_ip_;
  unsigned open_ = 0;
  std::map<std::string, unsigned> by_ip_;
};

// A session handler gets the accepted socket and its lease; `lease` is null
// when a limit refused the connection, and the protocol then writes its own
// "too many connections" reply and closes.
using SessionHandler =
    std::function<awaitable<void>(tcp::socket socket, std::unique_ptr<ConnectionLimiter::Lease> lease)>;

// Bind and listen on "host:port".
base::Result<std::shared_ptr<tcp::acceptor>> bind(asio::io_context& io, const std::string& host,
                                                 uint16_t port);

// Run the accept loop forever (until the acceptor is closed), spawning each
// session with an exception boundary. `name` labels log lines ("smtp").
void start_accepting(std::shared_ptr<tcp::acceptor> acceptor, std::string name,
                     std::shared_ptr<ConnectionLimiter> limiter, SessionHandler handler);

}  // namespace hikyaku::net
