// Purpose:   Accept loops for the configured endpoints, with the access lists
//            of [access] and the connection limits of [limits] (total and per
//            client IP), and the one exception boundary per session (STYLE
//            R7): a session that throws is logged as a bug and only that
//            connection dies.
// Trust:     accepts connections from anywhere the endpoint is bound; the
//            access list decides, before any byte is read, who is answered
//            with the protocol's refusal instead of a session.
// Concurrency: runs on the io_context's executor (single-threaded).
// Errors:    bind() returns a Result so a port conflict fails start-up loudly.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/access_list.hpp"
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
    // The pool this slot belongs to is nearly full (below).
    bool under_stress() const { return owner_ != nullptr && owner_->under_stress(); }

   private:
    ConnectionLimiter* owner_;
    std::string ip_;
  };
  // nullptr when a limit is reached.
  std::unique_ptr<Lease> try_acquire(const std::string& ip);
  unsigned open() const { return open_; }
  // Postfix's stress mode: at least 80% of the pool is in use. The
  // sessions then wait at most [limits] stress_timeout for a peer, so idle
  // connections cannot keep the last slots from those that send mail.
  bool under_stress() const { return open_ * 5 >= total_ * 4; }

 private:
  unsigned total_;
  unsigned per_ip_;
  unsigned open_ = 0;
  std::map<std::string, unsigned> by_ip_;
};

// Why the listener refused a connection; the protocol session words it.
enum class Refusal {
  none,    // admitted: `lease` is set
  limit,   // a [limits] connection limit: a temporary "too many connections"
  access,  // the [access] list denies the client address: a permanent refusal
};

// What the listener decided for one accepted connection. A denied client
// takes no connection slot (it is answered and closed at once).
struct Admission {
  std::unique_ptr<ConnectionLimiter::Lease> lease;  // null when refused
  Refusal refusal = Refusal::none;
};

// A session handler gets the accepted socket and the listener's decision;
// when `admission.lease` is null the protocol writes its own refusal for
// `admission.refusal` and closes.
using SessionHandler = std::function<awaitable<void>(tcp::socket socket, Admission admission)>;

// Bind "host:port" and, unless `listen_now` is false, listen. Binding is
// what needs root (ports below 1024); `serve` binds as root and listens with
// listen() once it has dropped privileges and is ready, so that a client
// that can connect finds the server ready.
base::Result<std::shared_ptr<tcp::acceptor>> bind(asio::io_context& io, const std::string& host,
                                                 uint16_t port, bool listen_now = true);
// listen(2) on an acceptor bind() left unlistened; `where` names it in errors.
base::Status listen(tcp::acceptor& acceptor, const std::string& where);

// Run the accept loop forever (until the acceptor is closed), spawning each
// session with an exception boundary. `name` labels log lines ("smtp"); a
// client `access` denies is logged (info) with `name` and its address.
void start_accepting(std::shared_ptr<tcp::acceptor> acceptor, std::string name, base::AccessList access,
                     std::shared_ptr<ConnectionLimiter> limiter, SessionHandler handler);

}  // namespace hikyaku::net
