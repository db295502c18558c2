// Purpose:   Drives an UnboundResolver's asynchronous role from an Asio event
//            loop: waits for libunbound's result fd (ub_fd) to be readable
//            and calls process(), which runs the answered questions'
//            callbacks on the loop's thread; then waits again. No thread of
//            ours blocks on DNS: libunbound's own background thread does the
//            network work.
// Trust:     no input of its own; answers are parsed by UnboundResolver.
// Concurrency: run the io_context on one thread (the resolver's contract:
//            resolve() and the callbacks on one thread; it also means no
//            readiness edge is missed, since the wait is re-armed before the
//            reactor polls again). Construct, stop and destroy on that
//            thread, before the io_context and the resolver are destroyed.
// Errors:    a failed wait (other than stop()) is logged and ends the watch;
//            nothing is thrown.
#pragma once

#include <memory>

#include "dns/unbound_resolver.hpp"
#include "net/asio.hpp"

namespace hikyaku::dns::asio {

class UnboundWatch {
 public:
  // Starts watching at once. The fd stays libunbound's: the descriptor
  // object is released, never closed, when the watch stops.
  UnboundWatch(boost::asio::io_context& io, UnboundResolver& resolver);
  ~UnboundWatch();
  UnboundWatch(const UnboundWatch&) = delete;
  UnboundWatch& operator=(const UnboundWatch&) = delete;

  // Stop waiting (idempotent). Answers arriving later stay in libunbound's
  // pipe until someone calls process() again.
  void stop();
  bool running() const;

 private:
  struct State;
  static void wait(const std::shared_ptr<State>& state);

  // Shared with the pending wait's handler, which may outlive this object.
  std::shared_ptr<State> state_;
};

}  // namespace hikyaku::dns::asio
