// Purpose:   Remote delivery (queue::DeliveryAgent for mail::Target::Kind::
//            forward — a forward, a DSN, or a submitted message's remote
//            recipient — and ::relay, a gateway recipient, issue 14), the way
//            one copy leaves (a relay: target skips 2's DMARC verdict, 3 and
//            4: relayed unchanged):
//            1. the message from memory or the spool file;
//            2. the loop check (policy/loop.hpp: 5.4.6, cause loop) and the
//               DMARC "divert" decision (ForwardTransform: 5.7.26, cause
//               dmarc_divert), reported before anything is sent;
//            3. X-Forwarded-To / X-Forwarded-For / X-Hikyaku-Diverted (on
//               this copy only: the spooled message is not changed), then the
//               ForwardTransform (ARC set, DMARC-aware From rewrite, DKIM);
//            4. the envelope sender of received mail rewritten with SRS
//               when [srs] is set (hidden forwards with their own derived
//               key); submitted mail (an authenticated user's) keeps it;
//            5. the first [[route]] that matches the address: a host (A,
//               AAAA) or an address with the rule's port, HELO name, TLS
//               requirement and login (its password read once by create(),
//               from a file that must not be world-readable); else the
//               recipient domain's route (MX, A, AAAA; RFC 5321 §5.1),
//               only its IPv4 or IPv6 addresses when [delivery]
//               address_family says so; the source address and EHLO name
//               from the [[forward]] or [delivery] (issue 17);
//            6. the SMTP conversation over a pooled connection, at most
//               concurrency_per_domain at a time per destination (a routed
//               copy's destination is its next hop), pausing a
//               destination after a rate-limit reply and resuming it one
//               connection at a time (state kept in
//               DATA_DIR/state/destinations across restarts).
//            What the result means (retry, divert, DSN) is decided by
//            policy::DeliveryPolicy, not here.
// Standards: RFC 5321 §5.1 (MX routing, implicit MX), RFC 7505 (null MX),
//            SRS (srs/srs.hpp), RFC 3463 (statuses in the result).
// Trust:     sends to the forward address only (target.value), which may be
//            a hidden address: it is never put into anything sent to a third
//            party, and logs name it redacted. The SRS secret is read once
//            and never logged. Replies and DNS answers are untrusted (see
//            smtp/client).
// Concurrency: deliver() may be called on any thread and never waits: it
//            reads the message (from memory on the event loop; a queue
//            thread may read the file), then steps 2-6 run on the io_context
//            given (single-threaded, the app's, which drives `resolver`),
//            except the transform when it signs: that runs on `pool`. `done`
//            is called exactly once: on the io_context thread, on `pool`
//            for a transform that failed, within deliver() when the loop
//            check stops it, or by stop(). create() reads the rate-limit
//            state file (blocking, at start-up); its writes run on `pool`.
// Errors:    every failure is a policy::AttemptResult; a coroutine that
//            throws (a bug) is logged and reported as temporary 4.3.0.
//            create() returns a Result (an unreadable SRS secret or route
//            password file fails start-up; a damaged rate-limit state file
//            is logged and ignored).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/live.hpp"
#include "base/result.hpp"
#include "delivery/forward_transform.hpp"
#include "config/config.hpp"
#include "policy/rules.hpp"
#include "queue/delivery_agent.hpp"
#include "smtp/client/outcome.hpp"
#include "smtp/client/route.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace hikyaku::dns {
class AsyncResolver;
}

namespace hikyaku::smtp::client {
struct ClientOptions;
}

namespace hikyaku::delivery {

struct SmtpAgentOptions {
  // Client timeouts etc.; unset: smtp::client::ClientOptions::from_config.
  std::shared_ptr<const smtp::client::ClientOptions> client;
  // Rate limits per destination (delivery/state/destination_pace.hpp):
  // after a rate-limit reply (smtp::client::is_rate_limit) no connection
  // for [delivery] rate_limit_pause, then one, one more after each success
  // up to concurrency_per_domain; a repeat during that ramp doubles the
  // pause (up to 8 times). A limited destination without news for
  // `state_lifetime` after its pause is forgotten (back to normal, in
  // memory and in the state file).
  std::chrono::seconds state_lifetime{std::chrono::hours(1)};
};

class SmtpAgent final : public queue::DeliveryAgent {
 public:
  // `io` runs the client coroutines and drives `resolver` (single-
  // threaded); `pool` makes signatures and writes the rate-limit state
  // file. All must outlive the agent. Fails when [srs] is set and its secret unreadable.
  // `transform` may be null (forwarded unchanged: tests).
  // Every attempt reads the rules current when it begins (`rules` must
  // outlive the agent); the SRS secrets, client timeouts and concurrency
  // are those of the rules current at create().
  static base::Result<std::unique_ptr<SmtpAgent>> create(const base::Live<policy::Rules>& rules,
                                                          boost::asio::io_context& io,
                                                          boost::asio::thread_pool& pool,
                                                          dns::AsyncResolver& resolver,
                                                          std::shared_ptr<const ForwardTransform> transform,
                                                          SmtpAgentOptions options = {});
  ~SmtpAgent() override;
  SmtpAgent(const SmtpAgent&) = delete;
  SmtpAgent& operator=(const SmtpAgent&) = delete;

  void deliver(const queue::DeliveryRequest& request, std::function<void(policy::AttemptResult)> done) override;

  // Before new rules are installed (`hikyaku reload`): reads the password
  // files and trust anchors their [[route]]s name. An Error (a missing or
  // world-readable password file) means the new rules must not be used.
  base::Status prepare(const config::Config& config);

  // The session options for mail from `sender` through `rule` (its HELO
  // name, TLS requirement and trust anchors, login): what the gateway's
  // recipient check (callout_verifier.hpp) uses too.
  std::shared_ptr<const smtp::client::ClientOptions> options_for(const config::Route& rule,
                                                                 const std::string& sender) const;

  // The destinations slowed down after a rate-limit reply, now: paused (no
  // connection before `paused_until`) or ramping up (`allowed` connections
  // at once). On the io_context thread only (the status page runs there).
  struct SlowDown {
    std::string domain;
    bool paused = false;
    std::chrono::system_clock::time_point paused_until{};
    unsigned allowed = 0;
  };
  std::vector<SlowDown> slowed_down() const;

  // Shutdown, after the io_context has stopped and before Scheduler::stop():
  // every delivery still in flight is reported as temporary 4.3.2, so the
  // scheduler does not wait for coroutines that will never resume; a
  // deliver() after it is answered so at once.
  void stop();

  struct Impl;

 private:
  explicit SmtpAgent(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace hikyaku::delivery
