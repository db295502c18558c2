#include "dns/asio/unbound_watch.hpp"

#include "base/log.hpp"

namespace hikyaku::dns::asio {

struct UnboundWatch::State {
  State(boost::asio::io_context& io, UnboundResolver& r) : resolver(r), descriptor(io, r.fd()) {}
  ~State() {
    // libunbound owns the fd: release it so the descriptor does not close it.
    if (descriptor.is_open()) (void)descriptor.release();
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  UnboundResolver& resolver;
  boost::asio::posix::stream_descriptor descriptor;
  bool stopped = false;
};

UnboundWatch::UnboundWatch(boost::asio::io_context& io, UnboundResolver& resolver)
    : state_(std::make_shared<State>(io, resolver)) {
  wait(state_);
}

UnboundWatch::~UnboundWatch() { stop(); }

void UnboundWatch::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  // release() cancels the pending wait (its handler sees operation_aborted)
  // and hands the fd back without closing it.
  (void)state_->descriptor.release();
}

bool UnboundWatch::running() const { return !state_->stopped; }

void UnboundWatch::wait(const std::shared_ptr<State>& state) {
  state->descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                               [state](const net::error_code& ec) {
                                 if (state->stopped || ec == boost::asio::error::operation_aborted) return;
                                 if (ec) {
                                   base::logger("dns")->error("waiting on libunbound's fd: {}", ec.message());
                                   state->stopped = true;
                                   return;
                                 }
                                 // Runs the callbacks; they may ask again.
                                 state->resolver.process();
                                 if (!state->stopped) wait(state);
                               });
}

}  // namespace hikyaku::dns::asio
