// Purpose:   Remote delivery of forward targets (queue::DeliveryAgent for
//            mail::Target::Kind::forward): read the spooled message, let
//            the MessageTransform hook change it (ARC seal + DKIM signature,
//            later), rewrite the envelope sender with SRS when [srs] is
//            configured, find the recipient domain's MX hosts, and send the
//            message with the smtp::client over a pooled connection. Per
//            destination domain it bounds concurrency and slows down after a
//            rate-limit deferral; that state is kept in
//            DATA_DIR/state/destinations across restarts (destination_store.hpp).
// Standards: RFC 5321 §5.1 (MX routing, implicit MX), RFC 7505 (null MX),
//            §4.5.4.1 (retries are the scheduler's), SRS (srs/srs.hpp),
//            RFC 3463 (statuses in the outcome).
// Trust:     sends to the forward address only (target.value), which may be
//            a hidden address: it is never put into anything sent to a third
//            party. The SRS secret is read once and never logged. Replies and
//            DNS answers are untrusted (see smtp/client).
// Concurrency: deliver() is called on a scheduler worker thread, which
//            may block: it reads and transforms the message and resolves the
//            route there (DNS through `resolver`, cached), then posts the SMTP
//            conversation to the io_context given (single-threaded, the
//            app's); nothing blocking runs on the io_context thread.
//            deliver_now() is the same on the io_context thread itself, for
//            a message in memory whose transform is cheap and whose route is
//            cached (a dns::CacheOnlyResolver); it declines anything else. `done`
//            is called exactly once: on the io_context thread, or within
//            deliver() when nothing was sent, or by stop(). create() reads
//            the rate-limit state file (blocking, at start-up); its writes
//            run on the thread pool given.
// Errors:    every failure is a DeliveryOutcome; a coroutine that throws
//            (a bug) is logged and reported as temporary 4.3.0. create()
//            returns a Result (an unreadable SRS secret fails start-up; a
//            damaged rate-limit state file is logged and ignored).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "queue/delivery_agent.hpp"
#include "smtp/client/outcome.hpp"
#include "smtp/client/route.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace hikyaku::dns {
class Resolver;
}

namespace hikyaku::smtp::client {
struct ClientOptions;
}

namespace hikyaku::delivery {

// What happens to a message before it is sent (the app plugs in the loop
// headers, ARC sealing and DKIM signing: ForwardTransform). Default: identity.
struct MessageTransform {
  // Called with the request and the spooled message bytes (CRLF, not
  // dot-stuffed); returns the message to send, or an error (the delivery is
  // then temporary 4.3.0). DNS through `dns`: the agent's resolver on a
  // worker, a cache-only view on the event loop.
  std::function<base::Result<std::string>(const queue::DeliveryRequest& request, std::string message,
                                          dns::Resolver& dns)>
      apply;
  // Whether apply() is cheap for this request (no signature to make), so
  // that deliver_now() may run it on the event loop. Unset: never.
  std::function<bool(const queue::DeliveryRequest& request)> cheap;
};

struct SmtpAgentOptions {
  // Client timeouts etc.; unset: smtp::client::ClientOptions::from_config.
  std::shared_ptr<const smtp::client::ClientOptions> client;
  MessageTransform transform;  // empty: identity
  // Rate-limit back-off per destination domain: after a deferral
  // (smtp::client::is_rate_limit) at most `limited_concurrency` connections
  // and `spacing_initial` between message starts, doubled on every further
  // deferral up to `spacing_max`, halved on each success until it falls
  // below `spacing_initial` (then the destination is back to normal).
  // The first start after a deferral also waits `spacing`.
  unsigned limited_concurrency = 1;
  std::chrono::milliseconds spacing_initial{2000};
  std::chrono::milliseconds spacing_max{std::chrono::minutes(5)};
  // A limited destination is forgotten (back to normal, in memory and in the
  // state file) when no deferral or success has refreshed it for this long
  // (at least spacing_max).
  std::chrono::seconds state_lifetime{std::chrono::hours(1)};
};

class SmtpAgent final : public queue::DeliveryAgent {
 public:
  // `io` runs the client coroutines (single-threaded); `resolver` serves
  // the route lookups; `pool` writes the rate-limit state file. All must
  // outlive the agent. Fails when [srs] is set and its secret unreadable.
  static base::Result<std::unique_ptr<SmtpAgent>> create(const config::Config& config,
                                                          boost::asio::io_context& io,
                                                          boost::asio::thread_pool& pool,
                                                          dns::Resolver& resolver,
                                                          SmtpAgentOptions options = {});
  ~SmtpAgent() override;
  SmtpAgent(const SmtpAgent&) = delete;
  SmtpAgent& operator=(const SmtpAgent&) = delete;

  void deliver(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) override;
  bool deliver_now(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) override;

  // Replace the transform hook (before the first delivery).
  void set_transform(MessageTransform transform);

  // Shutdown, after the io_context has stopped and before Scheduler::stop():
  // every delivery still in flight is reported as temporary 4.3.2, so the
  // scheduler does not wait for coroutines that will never resume.
  void stop();

  struct Impl;

 private:
  explicit SmtpAgent(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// RFC 5321 §5.1 routing with an injected resolver (blocking; call it on a
// worker thread): MX hosts in order with their A then AAAA addresses, or
// the domain itself as implicit MX when it has no MX records. `failure` is
// set instead when the domain does not exist (5.1.2), has a null MX
// (5.1.10), routes only to ourselves (5.4.6), has no usable address (5.4.4)
// or DNS failed temporarily (4.4.3).
struct ResolvedRoute {
  std::vector<smtp::client::RouteHost> hosts;
  std::optional<smtp::client::Outcome> failure;
};
ResolvedRoute resolve_route(dns::Resolver& resolver, std::string_view domain, std::string_view own_hostname,
                            std::mt19937& rng);

// The SRS secrets file: one secret per non-empty line, the first signs.
base::Result<std::vector<std::string>> read_srs_secrets(const std::filesystem::path& file);

}  // namespace hikyaku::delivery
